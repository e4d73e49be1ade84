"""Local multi-process networks: ``bazaar net up|down|status|kill|start`` (README.md, "Running nodes by hand").

``net up`` creates a network folder::

    DIR/net.json              what was started (names, roles, pids, ports, keys)
    DIR/genesis.json          the network's genesis (every node's account, stake and BLS key)
    DIR/nodes/<name>/         node.key (0600), node.toml, chain.sqlite3, node.log, ready.json, ...

Nodes are separate OS processes bound to 127.0.0.1 on free ports. Only processes this launcher started are
ever signalled, by the PID it recorded and after checking that PID still runs our node command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bazaar.ledger.amounts import to_units
from bazaar.ledger.genesis import Genesis, make_genesis
from bazaar.protocol import KeyPair
from bazaar.protocol.dial_set import DIAL_HUBS, sparse
from bazaar.protocol.keys import load_or_create_seed

from .config import NodeConfig, PeerEntry
from .hosts import Hosts, HostsError
from .hosts.base import free_port  # noqa: F401 - re-exported (tests, older callers)
from .httpapi import TOKEN_FILE, load_or_create_token, read_token
from .markets.registry import get_spec
from .markets.spec import GenesisPlan
from .params import ParamError
from .readiness import ReadyPipe
from .scenario import Scenario, load_scenario
from .scrape import write_scrape_config
from .waiting import WaitTimeout, wait_until

Progress = Callable[[str], None]
OnProgress = Callable[[dict[str, Any]], None]
"""Structured start-up events for a progress display: ``{"event": "starting"|"ready"|"connecting"|"connected",
"node", "done", "total"}`` (``bazaar net up`` renders them)."""


class LaunchError(RuntimeError):
    """A network could not be started or reached; the message says which node and why."""


class NoNetwork(LaunchError):
    """The folder holds no network (no ``net.json``): a usage error, not a failure of a network."""


def _quiet(_: str) -> None:
    return None


@dataclass
class NetDir:
    """The files of one local network."""

    root: Path

    @property
    def net_json(self) -> Path:
        return self.root / "net.json"

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.json"

    @property
    def token(self) -> Path:
        """The control token (mode 0600) ``POST /round`` and ``POST /stop`` need (docs/adr/0083)."""
        return self.root / TOKEN_FILE

    def control_token(self) -> str | None:
        """The network's control token, or None when there is none."""
        return read_token(self.token)

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    def load(self) -> dict[str, Any]:
        """The recorded network (raises LaunchError if there is none)."""
        try:
            return dict(json.loads(self.net_json.read_text()))
        except (FileNotFoundError, NotADirectoryError) as err:
            raise NoNetwork(f"no network in {self.root} (start one: bazaar net up --scenario NAME --dir "
                            f"{self.root})") from err
        except json.JSONDecodeError as err:
            raise LaunchError(f"{self.net_json} is corrupt: {err}") from err

    def save(self, info: dict[str, Any]) -> None:
        tmp = self.net_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(self.net_json)


def pid_alive(pid: int, config_path: str | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``config_path``, is our node process for that config)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.split(") ", 1)[-1].startswith("Z"):
        return False
    return config_path is None or config_path.encode() in cmdline


def pid_state(pid: int, config_path: str | None = None) -> str:
    """``"running"``, ``"stopped"`` (SIGSTOPped or traced: it holds its port but answers nothing) or
    ``"down"`` — from ``/proc/PID/stat`` as :func:`pid_alive` reads it (Linux, no psutil needed)."""
    if not pid_alive(pid, config_path):
        return "down"
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[-1][:1]
    except OSError:
        return "down"
    return "stopped" if state in ("T", "t") else "running"


def _spawn(config_path: Path, log_path: Path, pipe: ReadyPipe | None = None,
           prefix: Sequence[str] = ()) -> int:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "bazaar.node.cli", "node", "--config", str(config_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(pipe.env() if pipe else {})},
            pass_fds=pipe.pass_fds if pipe else (),
        )
    finally:
        log.close()
    return proc.pid


def _spawn_forked(root: Path, market: str, config_paths: Sequence[Path], pipe: ReadyPipe,
                  deadline: float) -> list[int]:
    """Start one node per config from one fork server that imports the node code once (docs/adr/0120); returns
    the node PIDs in order. The fork server's own failure (an import error) is in ``ROOT/forkserver.log``.

    Raises:
        LaunchError: the fork server failed or did not report every node in time.
    """
    log_path = root / "forkserver.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bazaar.node.forkserver", "--market", market, *map(str, config_paths)],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **pipe.env()}, pass_fds=pipe.pass_fds,
        )
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as err:
        proc.kill()
        proc.communicate()
        raise LaunchError(f"the fork server did not start the nodes in time (see {log_path})") from err
    pids = {}
    for line in out.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            doc = json.loads(line)
            pids[str(doc["config"])] = int(doc["pid"])
    missing = [str(p) for p in config_paths if str(p) not in pids]
    if proc.returncode != 0 or missing:
        for pid in pids.values():  # the children it did start
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        raise LaunchError(f"the fork server failed (exit {proc.returncode}): {_last_line(log_path)}")
    return [pids[str(p)] for p in config_paths]


def _last_line(log: Path) -> str:
    """The last line a node wrote (its one-line start-up error), or a pointer to the log."""
    try:
        lines = [ln for ln in log.read_text(errors="replace")[-4000:].splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:500] if lines else f"see {log}"


def _await_ready(net: NetDir, info: dict[str, Any], pipe: ReadyPipe, deadline: float,
                 on_ready: Callable[[dict[str, Any]], None]) -> None:
    """Block on the ready pipe until every node of ``info`` reported ready (docs/adr/0120).

    Raises:
        LaunchError: a node exited during start-up (with its log's last line) or was not ready in time.
    """
    nodes = info["nodes"]

    def check(pending: set[str]) -> None:
        for name in sorted(pending):
            v = nodes[name]
            if not pid_alive(v["pid"], v["config"]):
                raise LaunchError(f"node {name} exited during start-up: "
                                  f"{_last_line(net.node_dir(name) / 'node.log')}")

    try:
        pipe.wait(set(nodes), deadline, check, on_ready=on_ready)
    except TimeoutError as err:
        raise LaunchError(f"nodes were not ready in time ({err})") from err


def build_genesis(scenario: Scenario, keys: dict[str, KeyPair]) -> Genesis:
    """The genesis of a fresh network: every account funded, the validators its market's spec names staked
    (each role's own stake or the economy's), BLS keys registered for the spec's lottery proposers, and the
    spec's genesis params (e.g. who may publish the lottery weights)."""
    spec = get_spec(scenario.market_name)
    econ = scenario.economy
    plan = spec.genesis(scenario) if spec.genesis is not None else GenesisPlan()
    validators = [(name, spec.role(role)) for name, role in scenario.nodes if spec.role(role).validates]
    authority = {"weights_authority": keys[plan.weights_authority].public.hex()} if plan.weights_authority else {}
    stakes = {keys[name].public: to_units(econ["stake"] if r.stake is None else r.stake) for name, r in validators}
    genesis = make_genesis(
        scenario.network_id, scenario.consensus,
        balances={k.public: to_units(econ["initial_balance"]) for k in keys.values()},
        validator_keys=[keys[name] for name, _ in validators], stake=0,
        bls_keys=[keys[name] for name in plan.bls_accounts if name in keys],
        block_reward=to_units(econ["block_reward"]), reward_per_tx=to_units(econ["reward_per_tx"]),
        timestamp_ms=int(time.time() * 1000), params={"scenario": scenario.name, **plan.params, **authority},
    )
    return Genesis(**{**genesis.__dict__, "stakes": stakes,
                      "balances": {a: b for a, b in genesis.balances.items()}})


def prepare_network(scenario: Scenario, net: NetDir, log_json: bool, *,
                    byzantine: Mapping[str, Sequence[str]] | None = None,
                    clock_skew_ms: Mapping[str, int] | None = None,
                    hosts: Hosts | None = None) -> dict[str, NodeConfig]:
    """Keys, genesis, ports and every node's ``node.toml`` of a fresh (or existing) network folder, and the
    market's one-off preparation; returns the node configs by name.

    Args:
        byzantine: node name -> the misbehaviours it starts with (a testnet's Byzantine nodes).
        clock_skew_ms: node name -> the skew of its wall clock at start.
        hosts: where the nodes run (their listen addresses); default loopback with free ports.

    Raises:
        ParamError: a key file is unsafe or malformed, or ``byzantine``/``clock_skew_ms`` names no node.
    """
    byzantine, clock_skew_ms = dict(byzantine or {}), dict(clock_skew_ms or {})
    names = {name for name, _ in scenario.nodes}
    for key, table in (("byzantine", byzantine), ("clock_skew_ms", clock_skew_ms)):
        unknown = sorted(set(table) - names)
        if unknown:
            raise ParamError(key, f"no node named {', '.join(map(repr, unknown))} in scenario {scenario.name}")
    keys = {}
    for name, _ in scenario.nodes:
        ndir = net.node_dir(name)
        ndir.mkdir(parents=True, exist_ok=True)
        try:
            keys[name] = KeyPair(load_or_create_seed(ndir / "node.key"))
        except ValueError as err:  # group/world-readable or malformed: one line, no traceback
            raise ParamError("key", str(err)) from err
    load_or_create_token(net.token)
    if not net.genesis.exists():
        net.genesis.write_text(json.dumps(build_genesis(scenario, keys).to_dict(json=True), indent=1))
    hosts = hosts or Hosts()
    entries = [PeerEntry(name, role, keys[name].public, hosts.listen_addr(name)) for name, role in scenario.nodes]
    configs = {}
    for i, entry in enumerate(entries):
        cfg = NodeConfig(
            name=entry.name, role=entry.role, data_dir=net.node_dir(entry.name).resolve(),
            genesis=net.genesis.resolve(), scenario=scenario.source, listen=entry.addr, http_port=0,
            peers=tuple(e for e in entries if e.name != entry.name), log_json=log_json,
            byzantine=tuple(byzantine.get(entry.name, ())), clock_skew_ms=int(clock_skew_ms.get(entry.name, 0)),
            nice=leaf_nice(i, len(entries)),
        )
        (net.node_dir(entry.name) / "node.toml").write_text(cfg.to_toml())
        configs[entry.name] = cfg
    spec = get_spec(scenario.market_name)
    if spec.prepare is not None:  # market-specific set-up of a fresh network
        spec.prepare(scenario, {name: net.node_dir(name) for name, _ in scenario.nodes})
    return configs


LEAF_NICE = 5
"""The nice value of a leaf of a sparse network: a CFS weight of 335 against a hub's 1024. 10 (a weight of 110)
starved ai-bazaar's consumers at 50 processes (docs/adr/0198)."""


def leaf_nice(index: int, nodes: int) -> int:
    """The CPU priority a node of a one-machine network gives up at start: :data:`LEAF_NICE` for every node but
    the hubs (the scenario's first ``DIAL_HUBS``) once the network is sparse (more than ``DIAL_ALL_UP_TO`` + 1
    nodes, ``protocol.dial_set``), else 0. Every node keeps the hubs connected, so on 2 cores shared by 50
    processes a hub's equal share was too little for its 49 connections: its gossip queued for 90 s, its stream
    negotiations timed out, and the network never formed (docs/adr/0198)."""
    return LEAF_NICE if sparse(nodes) and index >= DIAL_HUBS else 0


def net_up(scenario_ref: str | Path, root: Path, *, timeout: float = 120.0, log_json: bool = False,
           progress: Progress = _quiet, byzantine: Mapping[str, Sequence[str]] | None = None,
           clock_skew_ms: Mapping[str, int] | None = None, metrics: bool = False,
           on_progress: OnProgress | None = None, spawn: str = "fork",
           hosts: Hosts | None = None) -> dict[str, Any]:
    """Start every node of a scenario as its own process; return once all are ready and connected.

    ``metrics``: also write ``prometheus.yml`` (every node's ``/metrics``) into the folder (docs/metrics.md).

    ``hosts`` says where the nodes run (default: loopback; ``bazaar.node.hosts.netns.Netns``: a network
    namespace each, started with ``spawn='exec'`` under the hosts' command prefix); what it made is recorded in
    ``net.json`` (``hosts``) and removed by :func:`net_down`.

    ``byzantine`` and ``clock_skew_ms`` (by node name) go into the nodes' ``node.toml`` (a testnet's Byzantine
    nodes and skewed clocks, see :func:`prepare_network`); ``net.json`` records each node's behaviours.
    ``on_progress`` receives structured start-up events (see :data:`OnProgress`).
    ``spawn="fork"`` (the default) forks every node from one fork server that imported the node code once;
    ``"exec"`` starts each as ``python -m bazaar.node.cli node`` (its own imports; benchmarks/bench_scale.py
    measures both, docs/adr/0120).

    Raises:
        ParamError: bad scenario.
        LaunchError: a node failed to start or connect (every node started is stopped again).
    """
    net = NetDir(root)
    if net.net_json.exists():
        old = net.load()
        if any(pid_alive(n["pid"], n["config"]) for n in old["nodes"].values()):
            raise LaunchError(f"a network is already running in {root} (bazaar net down --dir {root})")
    t_prepare = time.monotonic()
    scenario = load_scenario(scenario_ref)
    root.mkdir(parents=True, exist_ok=True)
    hosts = hosts or Hosts()
    try:
        record = hosts.setup(root, [name for name, _ in scenario.nodes])
    except HostsError as err:
        raise LaunchError(f"could not set up the hosts ({hosts.kind}): {err}") from err
    try:
        configs = prepare_network(scenario, net, log_json, byzantine=byzantine, clock_skew_ms=clock_skew_ms,
                                  hosts=hosts)
    except BaseException:
        _teardown_hosts(root, record)
        raise
    info: dict[str, Any] = {"scenario": str(scenario.source), "name": scenario.name, "started": time.time(),
                            "nodes": {}, "hosts": record}
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    emit = on_progress or (lambda _: None)
    try:
        with ReadyPipe() as pipe:
            paths = [net.node_dir(name) / "node.toml" for name in configs]
            for name in configs:
                (net.node_dir(name) / "ready.json").unlink(missing_ok=True)
            if hosts.kind != "loopback":
                spawn = "exec"  # a forked node would stay in the fork server's network namespace
            if spawn == "fork":
                pids = _spawn_forked(root, scenario.market_name, paths, pipe, deadline)
            elif spawn == "exec":
                pids = [_spawn(path, path.parent / "node.log", pipe, hosts.prefix(name))
                        for name, path in zip(configs, paths, strict=True)]
            else:
                raise ParamError("spawn", f"expected 'fork' or 'exec', got {spawn!r}")
            pipe.started()
            for (name, cfg), pid, config_path in zip(configs.items(), pids, paths, strict=True):
                emit({"event": "starting", "node": name, "done": len(info["nodes"]), "total": len(configs)})
                info["nodes"][name] = {"role": cfg.role, "pid": pid, "config": str(config_path),
                                       "listen": cfg.listen, "key": None, "byzantine": list(cfg.byzantine),
                                       "prefix": hosts.prefix(name) if spawn == "exec" else []}
            net.save(info)

            def on_ready(doc: dict[str, Any]) -> None:
                node = info["nodes"][doc["name"]]
                node.update(http_port=hosts.control_port(doc["name"], doc["http_port"]), key=doc["key"],
                            peer_id=doc["peer_id"])
                progress(f"node {doc['name']} ready (pid {node['pid']})")
                emit({"event": "ready", "node": doc["name"], "total": len(configs),
                      "done": sum(1 for v in info["nodes"].values() if v["key"] is not None)})

            t_spawned = time.monotonic()
            _await_ready(net, info, pipe, deadline, on_ready)
        t_ready = time.monotonic()
        net.save(info)
        wait_connected(info, deadline, progress, on_progress=emit)
    except BaseException:
        net_down(root)
        raise
    info["up_seconds"] = round(time.monotonic() - t0, 2)
    if metrics:
        info["metrics"] = str(write_scrape_config(root, info))
    info["up_phases_s"] = {"prepare": round(t0 - t_prepare, 2), "spawn": round(t_spawned - t0, 2),
                           "ready": round(t_ready - t_spawned, 2), "connected": round(time.monotonic() - t_ready, 2)}
    net.save(info)
    return info


def node_status(node: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
    """``GET /status`` of one node, or None when it does not answer."""
    import trio

    from .httpapi import HttpError, http_json

    async def get() -> Any:
        return await http_json(node["http_port"], "GET", "/status", timeout=timeout)

    try:
        return dict(trio.run(get))
    except (OSError, trio.TooSlowError, HttpError, ValueError, KeyError, TypeError):
        return None


def wait_connected(info: dict[str, Any], deadline: float, progress: Progress = _quiet, *,
                   on_progress: OnProgress | None = None) -> None:
    """Block until every live node reports at least one peer and a gossip mesh on each of its topics (a publish
    reaches someone: without it the first round's price can go to nobody), and the first node sees all others."""
    nodes = info["nodes"]
    first = next(iter(nodes))
    last: dict[str, dict[str, Any] | None] = {}

    def ready(s: dict[str, Any] | None) -> bool:
        return s is not None and s["peers"] >= 1 and (s.get("mesh_min") is None or s["mesh_min"] >= 1)

    def connected() -> bool:
        statuses = {n: node_status(v) for n, v in nodes.items() if pid_alive(v["pid"], v["config"])}
        last.clear()
        last.update(statuses)
        if on_progress is not None:
            on_progress({"event": "connecting", "node": first, "total": len(nodes),
                         "done": sum(1 for s in statuses.values() if ready(s))})
        if statuses and all(ready(s) for s in statuses.values()):
            hub = statuses.get(first)
            return hub is not None and hub["peers"] >= len(statuses) - 1
        return False

    try:
        wait_until(connected, deadline=deadline, interval=0.1, what="the nodes to connect")
    except WaitTimeout as err:
        raise LaunchError(f"nodes did not connect in time: {unconnected(last, first, len(nodes))}") from err
    progress(f"network connected ({len(nodes)} nodes)")
    if on_progress is not None:
        on_progress({"event": "connected", "node": first, "done": len(nodes), "total": len(nodes)})


def _with_empty_meshes(name: str, status: dict[str, Any] | None) -> str:
    """``provider-25 (market/cloudchain: 5 subscribers, 5 in prune backoff)``: a meshless node and, from its
    ``gossip`` report, each topic whose mesh is empty."""
    report = (status or {}).get("gossip") or {}
    empty = [f"{topic.split('/', 2)[-1]}: {r['subscribers']} subscribers, {r['backed_off']} in prune backoff"
             for topic, r in sorted(report.items()) if r.get("mesh", 0) < 1]
    return f"{name} ({'; '.join(empty)})" if empty else name


def unconnected(statuses: dict[str, dict[str, Any] | None], first: str, total: int, *, most: int = 6) -> str:
    """What kept the network from counting as connected at the last look, for the launcher's error: the nodes
    that had exited, did not answer ``GET /status``, had no peer or no gossip mesh on a topic, and how many peers
    the first node saw."""
    why = [f"{total - len(statuses)} exited"] if len(statuses) < total else []
    silent = sorted(n for n, s in statuses.items() if s is None)
    lonely = sorted(n for n, s in statuses.items() if s is not None and s["peers"] < 1)
    meshless = sorted(n for n, s in statuses.items() if s is not None and s["peers"] >= 1
                      and s.get("mesh_min") is not None and s["mesh_min"] < 1)
    for label, names in (("no status answer", silent), ("no peer", lonely), ("no gossip mesh on a topic", meshless)):
        if names:
            shown = ", ".join(_with_empty_meshes(n, statuses[n]) if names is meshless else n for n in names[:most])
            why.append(f"{label}: {shown}" + (f" and {len(names) - most} more" if len(names) > most else ""))
    hub = statuses.get(first)
    if hub is not None and hub["peers"] < len(statuses) - 1:
        why.append(f"{first} saw {hub['peers']} of {len(statuses) - 1} peers")
    return "; ".join(why) or "the last look found every node connected"


def net_down(root: Path, *, grace: float = 10.0) -> list[str]:
    """Stop every node this network started (SIGTERM, then SIGKILL after ``grace``); returns their names."""
    net = NetDir(root)
    try:
        info = net.load()
    except LaunchError:
        _teardown_hosts(root, None)
        return []
    live = {n: v for n, v in info["nodes"].items() if pid_alive(v["pid"], v["config"])}
    for v in live.values():
        os.kill(v["pid"], signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):  # the stragglers get SIGKILL below
        wait_until(lambda: not any(pid_alive(v["pid"], v["config"]) for v in live.values()), timeout=grace,
                   what="the nodes to exit")
    for v in live.values():
        if pid_alive(v["pid"], v["config"]):
            os.kill(v["pid"], signal.SIGKILL)
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not any(pid_alive(v["pid"], v["config"]) for v in live.values()), timeout=grace,
                   what="the nodes to be gone")
    _teardown_hosts(root, info.get("hosts"))
    return sorted(live)


def _teardown_hosts(root: Path, record: dict[str, Any] | None) -> None:
    """Remove what the network's hosts made (namespaces, links, relay), from ``net.json`` or ``hosts.json``."""
    from .hosts.netns import teardown, teardown_dir

    try:
        if not (record and record.get("kind") == "netns" and teardown(record)):
            teardown_dir(root)
    except HostsError as err:
        raise LaunchError(f"could not remove the network's namespaces: {err}") from err


def net_status(root: Path) -> dict[str, Any]:
    """``{"nodes": [{"name", "role", "pid", "alive", "peer_id", "height", "finalized", ..., "synced", "mesh_min"}]}``
    (``synced``: the node holds the certified head its peers report; ``mesh_min``: its smallest gossip mesh)."""
    info = NetDir(root).load()
    rows = []
    for name, v in info["nodes"].items():
        state = pid_state(v["pid"], v["config"])
        alive = state == "running"
        st = node_status(v) if alive else None
        rows.append({
            "name": name, "role": v["role"], "pid": v["pid"], "alive": alive, "state": state,
            "peer_id": v.get("peer_id"),
            "height": st["height"] if st else None, "finalized": st["finalized"] if st else None,
            "head": st["head"] if st else None, "finalized_hash": st.get("finalized_hash") if st else None,
            "peers": st["peers"] if st else None, "rss_mb": st.get("rss_mb") if st else None,
            "synced": st.get("synced") if st else None, "mesh_min": st.get("mesh_min") if st else None,
        })
    return {"nodes": rows}


def net_kill(root: Path, name: str) -> int:
    """SIGKILL one node (fault injection); returns its PID."""
    net = NetDir(root)
    info = net.load()
    if name not in info["nodes"]:
        raise ParamError("node", f"no node {name!r} in {root} (nodes: {', '.join(info['nodes'])})")
    v = info["nodes"][name]
    if not pid_alive(v["pid"], v["config"]):
        raise LaunchError(f"node {name} is not running")
    os.kill(v["pid"], signal.SIGKILL)
    try:
        wait_until(lambda: not pid_alive(v["pid"], v["config"]), timeout=10, interval=0.05, what=f"{name} to die")
    except WaitTimeout as err:
        raise LaunchError(f"node {name} survived SIGKILL") from err
    return int(v["pid"])


def net_start(root: Path, name: str, *, timeout: float = 60.0) -> dict[str, Any]:
    """Restart one node with its data dir; returns once it is ready and has a peer."""
    net = NetDir(root)
    info = net.load()
    if name not in info["nodes"]:
        raise ParamError("node", f"no node {name!r} in {root} (nodes: {', '.join(info['nodes'])})")
    v = info["nodes"][name]
    if pid_alive(v["pid"], v["config"]):
        raise LaunchError(f"node {name} is already running (pid {v['pid']})")
    ndir = net.node_dir(name)
    (ndir / "ready.json").unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    with ReadyPipe() as pipe:
        v["pid"] = _spawn(Path(v["config"]), ndir / "node.log", pipe, v.get("prefix", ()))
        pipe.started()
        net.save(info)
        relay = (info.get("hosts") or {}).get("nodes", {}).get(name, {}).get("relay_port")
        _await_ready(net, {"nodes": {name: v}}, pipe, deadline,
                     lambda doc: v.update(http_port=relay or doc["http_port"], key=doc["key"], peer_id=doc["peer_id"]))
    net.save(info)
    if info.get("metrics"):
        write_scrape_config(root, info)  # the restarted node listens on a new port
    try:
        wait_until(lambda: (st := node_status(v)) is not None and st["peers"] >= 1, deadline=deadline,
                   interval=0.2, what=f"{name} to find a peer")
    except WaitTimeout as err:
        raise LaunchError(f"node {name} restarted but found no peer in time") from err
    return v


def _running(root: Path, name: str) -> dict[str, Any]:
    info = NetDir(root).load()
    if name not in info["nodes"]:
        raise ParamError("node", f"no node {name!r} in {root} (nodes: {', '.join(info['nodes'])})")
    v = info["nodes"][name]
    if not pid_alive(v["pid"], v["config"]):
        raise LaunchError(f"node {name} is not running")
    return dict(v)


def net_pause(root: Path, name: str) -> int:
    """SIGSTOP one node (it keeps its sockets but answers nothing); returns its PID."""
    v = _running(root, name)
    os.kill(v["pid"], signal.SIGSTOP)
    try:
        wait_until(lambda: pid_state(v["pid"], v["config"]) == "stopped", timeout=10, interval=0.02,
                   what=f"{name} to stop")
    except WaitTimeout as err:
        raise LaunchError(f"node {name} did not stop on SIGSTOP") from err
    return int(v["pid"])


def net_resume(root: Path, name: str) -> int:
    """SIGCONT one paused node; returns its PID."""
    v = _running(root, name)
    os.kill(v["pid"], signal.SIGCONT)
    return int(v["pid"])


def _control(node: dict[str, Any], path: str, body: dict[str, Any], token: str | None,
             timeout: float = 10.0) -> Any:
    import trio

    from .httpapi import http_json

    async def post() -> Any:
        return await http_json(node["http_port"], "POST", path, body, timeout=timeout, token=token)

    return trio.run(post)


def net_partition(root: Path, groups: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """Cut the network into ``groups`` (node names; nodes in no group form one more group) by each live node's
    peer filter (``POST /partition``); ``groups=[]`` heals. Returns node -> the peers it now blocks.

    Raises:
        ParamError: a group names no node of this network.
        LaunchError: a live node refused or did not answer.
    """
    import trio

    from .httpapi import HttpError

    net = NetDir(root)
    info = net.load()
    everyone = list(info["nodes"])
    listed = [n for g in groups for n in g]
    unknown = sorted(set(listed) - set(everyone))
    if unknown:
        raise ParamError("node", f"no node {', '.join(map(repr, unknown))} in {root}")
    rest = [n for n in everyone if n not in listed]
    sides = [list(g) for g in groups] + ([rest] if groups and rest else [])
    side_of = {n: i for i, g in enumerate(sides) for n in g}
    token = net.control_token()
    applied, failed = {}, []
    for name, v in info["nodes"].items():
        if pid_state(v["pid"], v["config"]) != "running":
            continue  # a dead or paused node gets its filter when it is partitioned again (or never needs it)
        blocked = [n for n in everyone if n != name and side_of.get(n) != side_of.get(name)] if groups else []
        try:
            applied[name] = list(_control(v, "/partition", {"peers": blocked}, token)["blocked"])
        except (OSError, HttpError, ValueError, KeyError, TypeError, trio.TooSlowError) as err:
            failed.append(f"{name}: {err!r}")  # the others still get theirs
    if failed:
        raise LaunchError(f"the partition did not reach every live node: {'; '.join(failed)}")
    return applied


def net_clock(root: Path, name: str, skew_ms: int) -> int:
    """Set one running node's clock skew (``POST /clock``); returns the skew now applied.

    Raises:
        LaunchError: the node is down or refused.
    """
    from .httpapi import HttpError

    v = _running(root, name)
    try:
        return int(_control(v, "/clock", {"skew_ms": int(skew_ms)}, NetDir(root).control_token())["clock_skew_ms"])
    except (OSError, HttpError, ValueError, KeyError, TypeError) as err:
        raise LaunchError(f"node {name} refused the clock skew: {err}") from err
