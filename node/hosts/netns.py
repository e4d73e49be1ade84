"""Each node in its own Linux network namespace, joined over veth pairs to a bridge (``net up --hosts netns``).

Layout of one network (docs/adr/0111-netns-runner.md)::

    bz-<id>-sw          a namespace holding only the bridge br0 (so nothing touches the host's own network)
    bz-<id>-<i>         node i: lo up, eth0 = 10.77.0.(i+2)/24, libp2p on 10.77.0.(i+2):4001,
                        HTTP API on 127.0.0.1 inside the namespace; optional netem on eth0's egress
    v<i> (in -sw)       the bridge side of node i's veth pair

``<id>`` is derived from the absolute path of the network folder, so two folders never share a namespace
name. The addresses exist only inside these namespaces: no address, route or interface is added to the host.
The host reaches each node's HTTP API through a relay process (:mod:`bazaar.node.hosts.relay`) listening on
the host's 127.0.0.1. Everything made is recorded in ``DIR/hosts.json`` *before* it is made, so
:func:`teardown` removes it even after a failed start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..waiting import WaitTimeout, wait_until
from .base import Hosts, HostsError, free_port

SUBNET = "10.77.0"
PORT = 4001
HOSTS_FILE = "hosts.json"
_TIME = re.compile(r"^\d+(\.\d+)?(us|ms|s)$")
_LOSS = re.compile(r"^\d+(\.\d+)?%$")


@dataclass(frozen=True)
class LinkShape:
    """Per-link impairment (``tc netem`` on every node's egress, so each one-way hop between two nodes gets it
    once). Empty strings mean none. Values are tc's syntax: ``20ms``, ``5ms``, ``0.1%``."""

    delay: str = ""
    jitter: str = ""
    loss: str = ""

    def __post_init__(self) -> None:
        for what, value, pattern in (("delay", self.delay, _TIME), ("jitter", self.jitter, _TIME),
                                     ("loss", self.loss, _LOSS)):
            if value and not pattern.match(value):
                raise ValueError(f"link {what} {value!r}: expected e.g. "
                                 f"{'0.1%' if what == 'loss' else '20ms'}")
        if self.jitter and not self.delay:
            raise ValueError("a link jitter needs a link delay")

    @property
    def netem(self) -> list[str]:
        """The ``tc qdisc ... netem`` arguments (empty: no impairment)."""
        args = (["delay", self.delay] + ([self.jitter] if self.jitter else [])) if self.delay else []
        return args + (["loss", self.loss] if self.loss else [])


def network_id(root: Path) -> str:
    """8 hex characters naming a network folder's namespaces (from its absolute path)."""
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]


def _ip(*args: str, timeout: float = 15.0) -> None:
    cmd = [*args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise HostsError(f"{' '.join(cmd)}: {err}") from err
    if done.returncode != 0:
        raise HostsError(f"{' '.join(cmd)}: {done.stderr.strip() or f'exit {done.returncode}'}")


def available() -> str | None:
    """None when this machine can run namespaced networks, else the reason it cannot."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"bz-probe-{os.getpid()}"
    try:
        _ip("ip", "netns", "add", probe)
    except HostsError as err:
        return f"ip netns add failed: {err}"
    with contextlib.suppress(HostsError):
        _ip("ip", "netns", "del", probe)
    return None


def netem_available() -> str | None:
    """None when ``tc netem`` works here, else the reason (e.g. a kernel built without sch_netem)."""
    if (reason := available()) is not None:
        return reason
    probe = f"bz-probe-{os.getpid()}"
    _ip("ip", "netns", "add", probe)
    try:
        _ip("ip", "-n", probe, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        _ip("tc", "-n", probe, "qdisc", "add", "dev", "d0", "root", "netem", "delay", "1ms")
    except HostsError as err:
        return f"tc netem does not work here (kernel without sch_netem?): {err}"
    finally:
        with contextlib.suppress(HostsError):
            _ip("ip", "netns", "del", probe)
    return None


def _record_path(root: Path) -> Path:
    return root / HOSTS_FILE


def _save(root: Path, record: dict[str, Any]) -> None:
    tmp = _record_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(_record_path(root))


class Netns(Hosts):
    """Nodes in network namespaces (see the module docstring)."""

    kind = "netns"

    def __init__(self, link: LinkShape | None = None, *, timeout: float = 20.0) -> None:
        self.link = link or LinkShape()
        self.timeout = timeout
        self.record: dict[str, Any] = {}

    def setup(self, root: Path, names: list[str]) -> dict[str, Any]:
        """Create the switch namespace, one namespace per node with its veth and address, and the relay.

        Raises:
            HostsError: a command failed or the machine cannot (everything made so far is removed again).
        """
        if (reason := available()) is not None:
            raise HostsError(reason)
        if len(names) > 250:
            raise HostsError(f"{len(names)} nodes: the namespace runner has addresses for 250")
        nid = network_id(root)
        root = root.resolve()
        teardown_dir(root)  # leftovers of an earlier run of this folder that was never brought down
        self.record = {"kind": self.kind, "root": str(root), "id": nid, "switch": f"bz-{nid}-sw",
                       "namespaces": [], "relay_pid": None, "switch_pid": None, "link": self.link.__dict__,
                       "nodes": {}}
        for i, name in enumerate(names):
            self.record["nodes"][name] = {"netns": f"bz-{nid}-{i}", "veth": f"v{i}", "ip": f"{SUBNET}.{i + 2}",
                                          "relay_port": free_port()}
        try:
            self._make(root)
        except BaseException:
            teardown(self.record)
            raise
        return self.record

    def _make(self, root: Path) -> None:
        rec = self.record
        rec["links"] = "tap" if self.link.netem and netem_available() is not None else "veth"
        if rec["links"] == "veth":  # a kernel bridge in its own namespace, a veth pair per node, netem if shaped
            sw = rec["switch"]
            self._new_namespace(root, sw)
            _ip("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
            _ip("ip", "-n", sw, "link", "set", "br0", "up")
        for node in rec["nodes"].values():
            self._new_namespace(root, node["netns"])
            if rec["links"] == "veth":
                _ip("ip", "-n", rec["switch"], "link", "add", node["veth"], "type", "veth", "peer", "name", "eth0",
                    "netns", node["netns"])
                _ip("ip", "-n", rec["switch"], "link", "set", node["veth"], "master", "br0", "up")
        if rec["links"] == "tap":  # no sch_netem here: TAP interfaces joined by the user-space switch
            self._start_helper(root, "switch")
        for node in rec["nodes"].values():
            ns = node["netns"]
            _ip("ip", "-n", ns, "addr", "add", f"{node['ip']}/24", "dev", "eth0")
            _ip("ip", "-n", ns, "link", "set", "eth0", "up")
            if rec["links"] == "veth" and self.link.netem:
                _ip("tc", "-n", ns, "qdisc", "add", "dev", "eth0", "root", "netem", *self.link.netem)
        self._start_helper(root, "relay")

    def _new_namespace(self, root: Path, ns: str) -> None:
        self.record["namespaces"].append(ns)
        _save(root, self.record)  # recorded before it exists: teardown never misses one
        _ip("ip", "netns", "add", ns)
        _ip("ip", "-n", ns, "link", "set", "lo", "up")

    def _start_helper(self, root: Path, what: str) -> None:
        """Start ``bazaar.node.hosts.<what>`` (the relay or the switch) for this network; wait until it is ready."""
        ready_file = root / f"{what}.ready"
        ready_file.unlink(missing_ok=True)
        log = open(root / f"{what}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            proc = subprocess.Popen([sys.executable, "-m", f"bazaar.node.hosts.{what}", str(root)], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.record[f"{what}_pid"] = proc.pid
        _save(root, self.record)

        def ready() -> bool:
            if proc.poll() is not None:
                raise HostsError(f"the {what} exited at start (see {root / f'{what}.log'})")
            return ready_file.exists()

        try:
            wait_until(ready, timeout=self.timeout, interval=0.02, what=f"the {what} to start")
        except WaitTimeout as err:
            raise HostsError(f"the {what} did not start in time") from err

    def listen_addr(self, name: str) -> str:
        """``/ip4/10.77.0.N/tcp/4001``: the node's own address in its namespace."""
        return f"/ip4/{self.record['nodes'][name]['ip']}/tcp/{PORT}"

    def prefix(self, name: str) -> list[str]:
        """``ip netns exec bz-<id>-<i>``."""
        return ["ip", "netns", "exec", self.record["nodes"][name]["netns"]]

    def control_port(self, name: str, ready_port: int) -> int:
        """The relay's port for this node on the host's 127.0.0.1."""
        return int(self.record["nodes"][name]["relay_port"])


def _helper_alive(pid: int, what: str, root: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"bazaar.node.hosts.{what}".encode() in cmdline and root.encode() in cmdline


def _stop_helper(record: dict[str, Any], what: str) -> None:
    """SIGTERM (then SIGKILL) the relay or switch this network started, by its recorded PID."""
    pid, root = record.get(f"{what}_pid"), str(record["root"])
    if not pid or not _helper_alive(int(pid), what, root):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not _helper_alive(int(pid), what, root), timeout=5, interval=0.02,
                   what=f"the {what} to exit")
    if _helper_alive(int(pid), what, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def teardown(record: dict[str, Any]) -> list[str]:
    """Stop the relay and switch this network started (by their recorded PIDs) and delete every namespace it
    recorded (deleting a namespace removes its interfaces, the bridge and any netem); returns the deleted names.

    Call it once the nodes are stopped: a process still inside a namespace keeps it alive unnamed.
    """
    for what in ("relay", "switch"):
        _stop_helper(record, what)
    existing = set(Path("/run/netns").iterdir()) if Path("/run/netns").is_dir() else set()
    existing_names = {p.name for p in existing}
    removed = []
    for ns in reversed(record.get("namespaces", [])):
        if ns in existing_names:
            _ip("ip", "netns", "del", ns)
            removed.append(ns)
    root = Path(record["root"])
    if root.is_dir():
        _record_path(root).unlink(missing_ok=True)
        for what in ("relay", "switch"):
            (root / f"{what}.ready").unlink(missing_ok=True)
    return removed


def teardown_dir(root: Path) -> list[str]:
    """:func:`teardown` from the record a network folder keeps (nothing when it has none)."""
    try:
        record = json.loads(_record_path(root).read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return teardown(record) if isinstance(record, dict) and record.get("kind") == "netns" else []


def hosts_for(kind: str, delay: str | None = None, jitter: str | None = None, loss: str | None = None) -> Hosts:
    """The hosts strategy of ``net up --hosts KIND [--link-delay ...]`` (docs/deploy.md).

    Raises:
        ParamError: shaping without namespaces, or a malformed delay, jitter or loss.
    """
    from ..params import ParamError

    if kind != "netns":
        if delay or jitter or loss:
            raise ParamError("--link-delay", "link shaping needs --hosts netns")
        return Hosts()
    try:
        return Netns(LinkShape(delay or "", jitter or "", loss or ""))
    except ValueError as err:
        raise ParamError("--link-delay", str(err)) from err
