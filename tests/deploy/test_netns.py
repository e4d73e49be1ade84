"""``net up --hosts netns``: nodes in their own network namespaces, rounds and agreement across them.

The live test needs root and ``ip netns`` (skipped with the reason otherwise); it always removes what it made:
``net_down`` in ``finally`` stops only the PIDs this network recorded and deletes its namespaces.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.node import launcher
from bazaar.node.cli import main
from bazaar.node.hosts import Loopback
from bazaar.node.hosts.netns import LinkShape, Netns, available, network_id, teardown_dir
from bazaar.node.params import ParamError
from bazaar.node.rounds.driver import run_rounds


def test_link_shape_is_checked_and_spelled_for_tc() -> None:
    assert LinkShape().netem == []
    assert LinkShape("20ms", "5ms", "0.1%").netem == ["delay", "20ms", "5ms", "loss", "0.1%"]
    assert LinkShape(loss="1%").netem == ["loss", "1%"]
    for bad in (dict(delay="20"), dict(delay="fast"), dict(loss="0.1"), dict(jitter="5ms")):
        with pytest.raises(ValueError):
            LinkShape(**bad)


def test_namespace_names_differ_per_folder(tmp_path: Path) -> None:
    a, b = network_id(tmp_path / "a"), network_id(tmp_path / "b")
    assert a != b and len(a) == 8
    assert network_id(tmp_path / "a") == network_id(tmp_path / "x" / ".." / "a")


def test_loopback_hosts_is_the_default_layout() -> None:
    hosts = Loopback()
    assert hosts.listen_addr("n").startswith("/ip4/127.0.0.1/tcp/")
    assert hosts.prefix("n") == [] and hosts.control_port("n", 1234) == 1234


@pytest.mark.parametrize("argv", [
    ["--link-delay", "20ms"],  # shaping without namespaces
    ["--hosts", "netns", "--link-delay", "20"],  # no unit
    ["--hosts", "netns", "--link-jitter", "5ms"],  # jitter without delay
    ["--hosts", "netns", "--link-loss", "lots"],
])
def test_bad_link_options_are_usage_errors(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["net", "up", "--scenario", "ai-bazaar-small", "--dir", str(tmp_path / "net"), *argv])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: parameter '--link-")
    assert not (tmp_path / "net" / "net.json").exists()


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.mark.network
def test_rounds_agree_across_namespaces(tmp_path: Path) -> None:
    reason = available()
    if reason is not None:
        pytest.skip(f"no network namespaces here: {reason}")
    root = tmp_path / "net"
    nid = network_id(root)
    try:
        info = launcher.net_up("ai-bazaar-small", root, hosts=Netns(), timeout=120)
        ours = {ns for ns in _namespaces() if ns.startswith(f"bz-{nid}-")}
        assert len(ours) == len(info["nodes"]) + 1  # one per node and the switch
        assert all(n["listen"].startswith("/ip4/10.77.0.") for n in info["nodes"].values())
        summaries = list(run_rounds(root, 2))
        assert [s["final_everywhere"] for s in summaries] == [True, True]
        status = launcher.net_status(root)["nodes"]
        assert {r["finalized"] for r in status} == {summaries[-1]["height"]}
        assert len({r["finalized_hash"] for r in status}) == 1
        # the peers talk over the veth links (10.77.0.x), not over a loopback
        ns0 = info["hosts"]["nodes"]["cpp"]["netns"]
        ss = subprocess.run(["ip", "netns", "exec", ns0, "ss", "-tnH", "state", "established"],
                            capture_output=True, text=True, timeout=10, check=True).stdout
        assert sum(":4001" in line and "10.77.0." in line for line in ss.splitlines()) >= len(info["nodes"]) - 1
    finally:
        launcher.net_down(root)
        teardown_dir(root)
    assert not {ns for ns in _namespaces() if ns.startswith(f"bz-{nid}-")}
    assert not (root / "hosts.json").exists()
    relay = json.loads((root / "net.json").read_text())["hosts"]["relay_pid"]
    assert not launcher.pid_alive(relay)


@pytest.mark.network
def test_a_failed_start_leaves_no_namespace(tmp_path: Path) -> None:
    reason = available()
    if reason is not None:
        pytest.skip(f"no network namespaces here: {reason}")
    root = tmp_path / "net"
    nid = network_id(root)
    key = root / "nodes" / "cpp" / "node.key"  # unsafe key file: the start fails after the namespaces exist
    key.parent.mkdir(parents=True)
    key.write_bytes(b"\0" * 32)
    key.chmod(0o644)
    with pytest.raises(ParamError, match="key"):
        launcher.net_up("ai-bazaar-small", root, hosts=Netns(), timeout=30)
    assert not {ns for ns in _namespaces() if ns.startswith(f"bz-{nid}-")}
    assert not (root / "hosts.json").exists()
    assert (root / "relay.log").exists()  # the namespaces and the relay had been made


async def test_the_switch_learns_floods_delays_and_keeps_pair_order() -> None:
    import trio

    from bazaar.node.hosts.switch import Switch, seconds

    assert seconds("20ms") == 0.02 and seconds("500us") == 0.0005 and seconds("") == 0.0
    sw = Switch([1, 2, 3], delay=0.02, jitter=0.005, loss=0.0, seed=1)
    a, b, bcast = b"\x02" + b"\xaa" * 5, b"\x02" + b"\xbb" * 5, b"\xff" * 6
    now = trio.current_time()
    sw.receive(1, bcast + a + b"\x08\x06" + b"arp")  # unknown: flooded to 2 and 3
    assert sorted(dst for _, _, dst, _ in sw.queue) == [2, 3]
    sw.receive(2, a + b + b"\x08\x00" + b"reply")  # b learnt on port 2; a known on port 1
    assert [dst for _, _, dst, _ in sw.queue].count(1) == 1
    for i in range(50):
        sw.receive(1, b + a + b"\x08\x00" + bytes([i]))
    to_b = sorted((at, seq, frame) for at, seq, dst, frame in sw.queue if dst == 2 and frame[:6] == b)
    assert [f[-1] for _, _, f in to_b] == list(range(50))  # no overtaking between one pair
    assert all(now + 0.015 <= at <= now + 0.025 + 1 for at, _, _ in to_b)
    lossy = Switch([1, 2], delay=0.0, jitter=0.0, loss=0.5, seed=2)
    for _ in range(400):
        lossy.receive(1, bcast + a + b"\x08\x00")
    assert 120 < len(lossy.queue) < 280


@pytest.mark.network
def test_shaped_links_delay_every_hop_and_rounds_still_agree(tmp_path: Path) -> None:
    reason = available()
    if reason is not None:
        pytest.skip(f"no network namespaces here: {reason}")
    root = tmp_path / "net"
    nid = network_id(root)
    try:
        info = launcher.net_up("ai-bazaar-small", root, hosts=Netns(LinkShape("20ms", "5ms")), timeout=120)
        nodes = info["hosts"]["nodes"]
        first, second = nodes["cpp"], nodes["consumer-0"]
        probe = ("import socket, time; t = time.perf_counter(); "
                 f"socket.create_connection(('{second['ip']}', 4001), timeout=10).close(); "
                 "print((time.perf_counter() - t) * 1000)")
        rtt = float(subprocess.run(["ip", "netns", "exec", first["netns"], sys.executable, "-c", probe],
                                   capture_output=True, text=True, timeout=30, check=True).stdout)
        assert rtt >= 30.0  # SYN and SYN-ACK each held at least 20 - 5 ms: a lower bound, not a speed target
        (summary,) = run_rounds(root, 1)
        assert summary["final_everywhere"]
        assert len({r["finalized_hash"] for r in launcher.net_status(root)["nodes"]}) == 1
    finally:
        launcher.net_down(root)
        teardown_dir(root)
    assert not {ns for ns in _namespaces() if ns.startswith(f"bz-{nid}-")}
