"""Multi-process libp2p tests on loopback (issue #2): 9 node processes, faults, a hostile peer.

One network (module fixture) of separate OS processes bound to 127.0.0.1; every wait is bounded; only the
processes the launcher started are ever signalled (by PID, after checking their command line).
"""

from __future__ import annotations

import json
import struct
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.network.stream.exceptions import StreamEOF, StreamReset

from bazaar.deploy import scenario_file
from bazaar.node import launcher
from bazaar.node.httpapi import http_json
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.waiting import wait_until, wait_until_async
from bazaar.protocol import KeyPair, seal
from bazaar.protocol.chainmsg import MSG_TXS, PROTO_SYNC, chain_topic
from bazaar.protocol.p2p import open_libp2p_transport, peer_id_for

pytestmark = pytest.mark.network

PARAMS = scenario_file("ai-bazaar").parent / "params"


def _scenario(folder: Path) -> Path:
    path = folder / "net-test.toml"
    path.write_text(textwrap.dedent(f"""
        name = "net-test"
        market = "ai-bazaar"
        network_id = "bazaar-nettest"
        consensus = "pol"

        [roles]
        cpp = 1
        consumer = 8

        [economy]
        initial_balance = 1000000.0
        stake = 1000.0
        block_reward = 4000.0
        reward_per_tx = 5.0

        [deadlines]
        demand_s = 4.0
        mining_s = 2.5
        block_s = 10.0
        final_s = 10.0

        [mechanism]
        steps_per_unit = 1.0
        max_steps = 100

        [mechanism.param_sets]
        calibrated = "{PARAMS / 'ai-bazaar-calibrated.toml'}"

        [[phases]]
        name = "eq"
        params = "calibrated"
        mode = "equilibrium"
        rounds = 100
        """))
    return path


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("net")
    launcher.net_up(_scenario(root), root / "net", timeout=180)
    try:
        yield root / "net"
    finally:
        stopped = launcher.net_down(root / "net")
        assert stopped  # every node was still ours to stop


def _statuses(root: Path) -> list[dict[str, Any]]:
    return launcher.net_status(root)["nodes"]


def _agree(root: Path, height: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        rows = [r for r in _statuses(root) if r["alive"]]
        return rows if all(r["finalized"] is not None and r["finalized"] >= height for r in rows) else None

    return wait_until(probe, timeout=timeout, what=f"every live node to finalize {height}")


def test_nine_processes_settle_rounds_on_one_finalized_head(net: Path) -> None:
    rows = _statuses(net)
    assert len(rows) == 9 and all(r["alive"] for r in rows)
    assert len({r["pid"] for r in rows}) == 9
    summaries = list(run_rounds(net, 2))
    for s in summaries:
        assert s["final"] and s["final_everywhere"], s
        assert s["left_out"] == []
        assert abs(s["price"] - s["equilibrium"]["price"]) < 1e-9
    top = summaries[-1]["height"]
    rows = _agree(net, top)
    hashes = {(r["finalized"], r["finalized_hash"]) for r in rows}
    assert len(hashes) == 1, hashes


def test_killed_consumer_is_left_out_and_resyncs_after_restart(net: Path) -> None:
    info = launcher.NetDir(net).load()
    cpp = info["nodes"]["cpp"]
    before = launcher.node_status(cpp)
    assert before is not None
    next_round = before["rounds"]["round"] + 1
    results: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: results.extend(run_rounds(net, 1)), daemon=True)
    worker.start()
    wait_until(lambda: (launcher.node_status(cpp) or {}).get("rounds", {}).get("round", 0) >= next_round,
               timeout=20, interval=0.02, what="the round to start")
    launcher.net_kill(net, "consumer-3")  # mid-round: the price is out
    worker.join(timeout=60)
    assert not worker.is_alive() and results, "the round did not settle"
    summary = results[0]
    assert summary["final"] and summary["final_everywhere"], summary
    assert summary["winner"] != "consumer-3"
    killed = next(r for r in _statuses(net) if r["name"] == "consumer-3")
    assert not killed["alive"]

    launcher.net_start(net, "consumer-3")
    after = next(iter(run_rounds(net, 1)))
    assert after["final"] and "consumer-3" in after["participants"], after
    rows = _agree(net, after["height"])
    assert len({(r["finalized"], r["finalized_hash"]) for r in rows}) == 1
    assert all(r["alive"] for r in rows)


async def test_hostile_peer_is_rejected_and_nobody_crashes(net: Path) -> None:
    info = launcher.NetDir(net).load()
    cpp = info["nodes"]["cpp"]
    cpp_key = bytes.fromhex(cpp["key"])
    network_id = json.loads((net / "genesis.json").read_text())["network_id"]
    topic = chain_topic(network_id)

    async def status() -> dict[str, Any]:
        return dict(await http_json(cpp["http_port"], "GET", "/status", timeout=5))

    before = await status()
    rogue = KeyPair.generate()
    async with open_libp2p_transport(rogue, peers=[(cpp_key, cpp["listen"])], topics=[topic]) as t:
        await wait_until_async(lambda: t.mesh_peers(topic), timeout=30, what="a gossip mesh peer")
        await t.publish(topic, b"\xc1\xff not msgpack")  # malformed
        forged = seal(rogue, network_id, MSG_TXS, {"txs": [b"x"]}, seq=1)
        tampered = forged.wire.replace(forged.signature, bytes(64))
        await t.publish(topic, tampered)  # bad signature
        valid = seal(rogue, network_id, MSG_TXS, {"txs": [b"not a tx"]}, seq=2)
        await t.publish(topic, valid.wire)
        await t.publish(topic, valid.wire)  # replayed
        host: Any = t._host  # a raw stream, to send a frame header over the cap
        with trio.fail_after(10):
            stream = await host.new_stream(peer_id_for(cpp_key), [PROTO_SYNC])
            await stream.write(struct.pack(">I", 0xFFFFFFF0))
            with trio.move_on_after(5), pytest.raises((StreamEOF, StreamReset)):
                await stream.read(1)  # the node resets the stream instead of reading 4 GiB
        with trio.fail_after(30):
            while True:
                now = await status()
                rej = now.get("rejected", {})
                failed = now.get("transport", {}).get("requests_failed", 0)
                replayed = now["transport"].get("gossip_replayed", 0)  # the pubsub validator refuses the copy
                if (rej.get("malformed", 0) > before["rejected"].get("malformed", 0)
                        and rej.get("bad-signature", 0) > before["rejected"].get("bad-signature", 0)
                        and replayed > before["transport"].get("gossip_replayed", 0)
                        and failed > before["transport"].get("requests_failed", 0)):
                    break
                await trio.sleep(0.1)
    log = (net / "nodes" / "cpp" / "node.log").read_text()
    for reason in ("reason=malformed", "reason=bad-signature", "OversizeError"):
        assert reason in log, reason
    rows = await trio.to_thread.run_sync(_statuses, net)
    assert all(r["alive"] for r in rows), rows
    after = (await trio.to_thread.run_sync(lambda: list(run_rounds(net, 1))))[0]
    assert after["final"] and after["final_everywhere"], after
