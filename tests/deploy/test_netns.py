"""``net up --hosts netns``: nodes in their own network namespaces, rounds and agreement across them.

The live test needs root and ``ip netns`` (skipped with the reason otherwise); it always removes what it made:
``net_down`` in ``finally`` stops only the PIDs this network recorded and deletes its namespaces.
"""

from __future__ import annotations

import json
import subprocess
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
