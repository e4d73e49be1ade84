"""Nodes in containers (deploy/compose.yaml, deploy/k8s/): the network bundle, the node entrypoint, the rounds.

``python -m bazaar.node.hosts.container COMMAND`` (docs/deploy.md, docs/adr/0110-containers.md):

``init --scenario S --dir OUT --layout compose|k8s``
    A network bundle: every node's key and ``node.toml``, the genesis, the control token and the scenario,
    laid out as ``net up`` lays a network folder. The address book uses the layout's stable addresses:
    ``/ip4/<subnet>.<10+i>/tcp/4001`` (compose, static addresses on its own network) or
    ``/dns4/<pod>.<service>/tcp/4001`` (Kubernetes: StatefulSet pods behind a headless Service).
``node --net BUNDLE --data DATA [--name NAME]``
    Runs one node of the bundle (NAME defaults from the host name: ``consumer-1``, or ``cpp-0`` for the one
    ``cpp``): copies its key into DATA on first start (persistent), writes DATA/node.toml, runs
    ``bazaar node`` listening on 0.0.0.0:4001, and relays the container's port 8080 to the node's HTTP API
    (which binds 127.0.0.1 inside the container); control routes still need the network's control token.
``rounds --net BUNDLE --rounds N``
    Waits for the network to connect, runs N scripted rounds at the leader, waits until each round's block is
    final on every node, and checks agreement (one finalized hash everywhere); one JSON line per round and a
    last line ``{"agreement": ...}``; exit 1 when a round fails or the nodes disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

LIBP2P_PORT = 4001
HTTP_PORT = 8080  # the container's port, relayed to the node's own HTTP API
NODE_HTTP_PORT = 8081  # the node's HTTP API, on 127.0.0.1 inside the container
SUBNET = "10.78.0"
SERVICE = "bazaar-peers"


class StaticHosts:
    """The launcher's hosts strategy for containers: fixed, layout-given addresses (nothing to set up)."""

    kind = "static"

    def __init__(self, layout: str, names: list[str], *, subnet: str = SUBNET, service: str = SERVICE) -> None:
        if layout not in ("compose", "k8s"):
            raise ValueError(f"layout {layout!r}: expected compose or k8s")
        self.layout, self.subnet, self.service = layout, subnet, service
        self.index = {name: i for i, name in enumerate(names)}

    def setup(self, root: Path, names: list[str]) -> dict[str, Any]:
        """Nothing to make: the container runtime gives the addresses."""
        return {"kind": self.kind, "layout": self.layout}

    def listen_addr(self, name: str) -> str:
        """The node's stable address in the layout."""
        if self.layout == "compose":
            return f"/ip4/{self.address(name)}/tcp/{LIBP2P_PORT}"
        return f"/dns4/{pod_name(name)}.{self.service}/tcp/{LIBP2P_PORT}"

    def address(self, name: str) -> str:
        """compose: the node's static IPv4 address on the compose network."""
        return f"{self.subnet}.{10 + self.index[name]}"

    def prefix(self, name: str) -> list[str]:
        return []

    def control_port(self, name: str, ready_port: int) -> int:
        return ready_port


def pod_name(node: str) -> str:
    """The StatefulSet pod of a node: ``consumer-1`` is pod 1 of StatefulSet ``consumer``; a node named after its
    role alone (``cpp``) is pod ``cpp-0``."""
    head, _, tail = node.rpartition("-")
    return node if head and tail.isdigit() else f"{node}-0"


def node_of_host(hostname: str, names: list[str]) -> str:
    """The node a container or pod runs, from its host name (the inverse of :func:`pod_name`).

    Raises:
        ValueError: no node of the bundle has that name or pod name.
    """
    for name in names:
        if hostname in (name, pod_name(name)):
            return name
    raise ValueError(f"host {hostname!r} runs no node of this network (nodes: {', '.join(names)})")


def _names(net: Path) -> list[str]:
    return sorted(p.name for p in (net / "nodes").iterdir() if (p / "node.toml").is_file())


def init_bundle(scenario_ref: str, out: Path, layout: str, *, subnet: str = SUBNET, service: str = SERVICE) -> Path:
    """Write a network bundle into ``out`` (see the module docstring); returns ``out``."""
    from ..launcher import NetDir, prepare_network
    from ..scenario import load_scenario

    scenario = load_scenario(scenario_ref)
    names = [name for name, _ in scenario.nodes]
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(scenario.source, out / "scenario.toml")
    hosts = StaticHosts(layout, names, subnet=subnet, service=service)
    prepare_network(scenario, NetDir(out), log_json=True, hosts=hosts)  # type: ignore[arg-type]
    return out


def prepare_node(net: Path, data: Path, name: str) -> Path:
    """Lay out one node's data folder from the bundle (key copied once, config rewritten); returns its node.toml.

    Raises:
        ParamError: the bundle's node.toml is malformed.
    """
    from ..config import load_node_config

    src = net / "nodes" / name
    cfg = load_node_config(src / "node.toml")
    data.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():  # the key and what the market's preparation left, never over a running node's
        dest = data / item.name
        if item.name in ("node.toml", "chain.sqlite3", "node.log", "ready.json") or dest.exists():
            continue
        if item.is_dir():
            shutil.copytree(item, dest)
        else:
            shutil.copyfile(item, dest)
            if item.name == "node.key":
                dest.chmod(0o600)
    cfg = replace(cfg, data_dir=data, genesis=net / "genesis.json", scenario=net / "scenario.toml",
                  listen=f"/ip4/0.0.0.0/tcp/{LIBP2P_PORT}", http_port=NODE_HTTP_PORT)
    (data / "node.toml").write_text(cfg.to_toml())
    return data / "node.toml"


async def _run_node(config: Path) -> int:
    import trio

    from .relay import forward_local

    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(HTTP_PORT, host="0.0.0.0")
        nursery.start_soon(trio.serve_listeners, forward_local(NODE_HTTP_PORT), listeners)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

            async def stop_on_signal(scope: trio.CancelScope) -> None:
                async for _ in signals:
                    scope.cancel()  # run_process terminates the node with SIGTERM, then waits for it
                    return

            with trio.CancelScope() as scope:
                nursery.start_soon(stop_on_signal, scope)
                proc = await trio.run_process([sys.executable, "-m", "bazaar.node.cli", "node", "--config",
                                               str(config)], check=False)
                code = proc.returncode
            if scope.cancelled_caught:
                code = 0
        nursery.cancel_scope.cancel()
    return int(code)


# ------------------------------------------------------------------ rounds, from any host that reaches the nodes


def _http(host: str, method: str, path: str, *, token: str | None = None, timeout: float = 10.0) -> Any:
    req = urllib.request.Request(f"http://{host}:{HTTP_PORT}{path}", method=method,
                                 data=b"{}" if method == "POST" else None,
                                 headers={"Content-Type": "application/json", "Host": "127.0.0.1",
                                          **({"X-Bazaar-Token": token} if token else {})})
    # Host 127.0.0.1: the node's API answers loopback names only (its DNS-rebinding guard); the relay in the
    # container forwards to that loopback API, and this client is no browser
    with urllib.request.urlopen(req, timeout=timeout) as answer:
        return json.loads(answer.read())


def _status(host: str) -> dict[str, Any] | None:
    try:
        return dict(_http(host, "GET", "/status", timeout=5))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def node_hosts(net: Path) -> dict[str, str]:
    """Node name -> the host (address or DNS name) of its container, from the bundle's address book."""
    from ..config import load_node_config

    out: dict[str, str] = {}
    for name in _names(net):
        peers = load_node_config(net / "nodes" / name / "node.toml").peers
        for p in peers:
            out.setdefault(p.name, p.addr.split("/")[2])
    return out


def run_rounds(net: Path, rounds: int, *, timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run ``rounds`` rounds at the leader and check agreement (see the module docstring); prints JSON lines.

    Raises:
        RuntimeError: the network did not connect, a round failed, or the nodes disagree.
    """
    from ..markets.registry import get_spec
    from ..scenario import load_scenario
    from ..waiting import WaitTimeout, wait_until

    scenario = load_scenario(net / "scenario.toml")
    spec = get_spec(scenario.market_name)
    roles = dict(scenario.nodes)
    hosts = node_hosts(net)
    leader = next((n for r in spec.leader_roles for n in hosts if roles.get(n) == r), None)
    if leader is None:
        raise RuntimeError("the bundle has no round leader")
    token = (net / "control.token").read_text().strip()

    def statuses() -> dict[str, dict[str, Any] | None]:
        return {n: _status(h) for n, h in hosts.items()}

    def connected() -> bool:
        st = statuses()
        return all(s is not None and s["peers"] >= 1 for s in st.values()) and \
            (st[leader] or {}).get("peers", 0) >= len(hosts) - 1

    try:
        wait_until(connected, timeout=timeout, interval=0.5, what="the containers to connect")
    except WaitTimeout as err:
        raise RuntimeError(f"the network did not connect: {statuses()}") from err
    summaries = []
    round_timeout = sum(scenario.deadlines.values()) + 60
    for _ in range(rounds):
        t0 = time.monotonic()
        summary = dict(_http(hosts[leader], "POST", "/round", token=token, timeout=round_timeout))
        height = int(summary.get("height") or 0)

        def final_everywhere(h: int = height) -> bool:
            return all(s is not None and s["finalized"] >= h for s in statuses().values())

        try:
            wait_until(final_everywhere,
                       timeout=scenario.deadlines["final_s"] + 30, interval=0.2, what="the round final everywhere")
        except (WaitTimeout, TypeError) as err:
            raise RuntimeError(f"round {summary.get('round')} not final everywhere: {summary}") from err
        summary["latency_all_ms"] = round((time.monotonic() - t0) * 1000, 1)
        print(json.dumps({k: summary.get(k) for k in ("round", "market", "height", "final", "latency_all_ms")}),
              flush=True)
        summaries.append(summary)
    # one finalized height everywhere (a block may be landing), then one hash at that height
    def settled() -> dict[str, dict[str, Any] | None] | None:
        st = statuses()
        answered = [s for s in st.values() if s is not None]
        return st if len(answered) == len(st) and len({s["finalized"] for s in answered}) == 1 else None

    try:
        final = wait_until(settled, timeout=60, interval=0.2, what="one finalized height on every node")
    except WaitTimeout as err:
        raise RuntimeError(f"the nodes did not settle on one finalized height: {statuses()}") from err
    heads = {n: (s["finalized"], s.get("finalized_hash")) for n, s in final.items() if s is not None}
    agreement = len({h for _, h in heads.values()}) == 1
    print(json.dumps({"agreement": agreement, "finalized": heads}), flush=True)
    if not agreement:
        raise RuntimeError(f"the nodes disagree on the finalized head: {heads}")
    return summaries


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bazaar.node.hosts.container`` (the container image's commands)."""
    from ..params import ParamError

    ap = argparse.ArgumentParser(prog="python -m bazaar.node.hosts.container", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="write a network bundle")
    p.add_argument("--scenario", required=True, help="shipped scenario name or TOML file")
    p.add_argument("--dir", required=True, help="the bundle folder")
    p.add_argument("--layout", choices=("compose", "k8s"), required=True, help="how nodes address each other")
    p.add_argument("--subnet", default=SUBNET, help=f"compose: first three octets of the network (default {SUBNET})")
    p.add_argument("--service", default=SERVICE, help=f"k8s: the headless Service (default {SERVICE})")
    p = sub.add_parser("node", help="run one node of a bundle")
    p.add_argument("--net", required=True, help="the bundle folder (read-only is fine)")
    p.add_argument("--data", required=True, help="this node's persistent data folder")
    p.add_argument("--name", help="node name (default: from the host name)")
    p = sub.add_parser("rounds", help="run scripted rounds and check agreement")
    p.add_argument("--net", required=True, help="the bundle folder")
    p.add_argument("--rounds", type=int, default=3, help="how many rounds (default 3)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the network to connect")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "init":
            init_bundle(args.scenario, Path(args.dir), args.layout, subnet=args.subnet, service=args.service)
            print(json.dumps({"bundle": args.dir, "nodes": _names(Path(args.dir))}))
            return 0
        net = Path(args.net)
        if args.cmd == "node":
            import trio

            name = args.name or node_of_host(socket.gethostname(), _names(net))
            config = prepare_node(net, Path(args.data), name)
            return int(trio.run(_run_node, config))
        if args.rounds < 1:
            raise ParamError("--rounds", "must be at least 1")
        run_rounds(net, args.rounds, timeout=args.timeout)
        return 0
    except (ParamError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, urllib.error.URLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
