"""The controls a testnet drives, in one trio run over the in-memory mesh: ``POST /partition`` (the transport's
peer filter: a partition and its heal), ``POST /clock`` (the node's one wall clock: what it stamps and how it
judges others), both behind the control token (docs/testnets.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bazaar.node.httpapi import HttpError, http_json
from bazaar.node.launcher import NetDir
from bazaar.protocol.chainmsg import MSG_TXS
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.transport import PeerUnavailable

from .harness import memory_net, small_scenario


async def test_partition_cuts_the_listed_peers_and_heal_restores_them(tmp_path: Path) -> None:
    root, network = tmp_path / "net", MemoryNetwork()
    async with memory_net(small_scenario(tmp_path), root, network=network) as nodes:
        token = NetDir(root).control_token()
        c0, cpp = nodes["consumer-0"], nodes["cpp"]
        with pytest.raises(HttpError) as err:
            await http_json(c0.http_port, "POST", "/partition", {"peers": ["cpp"]})
        assert err.value.status == 401
        with pytest.raises(HttpError) as err:
            await http_json(c0.http_port, "POST", "/partition", {"peers": ["nobody"]}, token=token)
        assert err.value.status == 400 and "nobody" in str(err.value)
        answer = await http_json(c0.http_port, "POST", "/partition", {"peers": ["cpp", "consumer-1"]}, token=token)
        assert answer == {"blocked": ["consumer-1", "cpp"]}
        assert not network.connected(c0.key.public, cpp.key.public)
        assert network.connected(c0.key.public, nodes["consumer-2"].key.public)
        with pytest.raises(PeerUnavailable):
            await c0.transport.request(cpp.key.public, "/bazaar/sync/1", b"x", timeout=5)
        status = await http_json(c0.http_port, "GET", "/status")
        assert sorted(status["blocked"]) == ["consumer-1", "cpp"]
        assert await http_json(c0.http_port, "POST", "/partition", {"peers": []}, token=token) == {"blocked": []}
        assert network.connected(c0.key.public, cpp.key.public)


async def test_clock_skew_moves_what_a_node_stamps_and_a_far_skew_is_refused_with_a_code(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with memory_net(small_scenario(tmp_path), root) as nodes:
        token = NetDir(root).control_token()
        c0, cpp = nodes["consumer-0"], nodes["cpp"]
        with pytest.raises(HttpError) as err:
            await http_json(c0.http_port, "POST", "/clock", {"skew_ms": 5000})
        assert err.value.status == 401
        with pytest.raises(HttpError) as err:
            await http_json(c0.http_port, "POST", "/clock", {"skew_ms": "soon"}, token=token)
        assert err.value.status == 400
        assert await http_json(c0.http_port, "POST", "/clock", {"skew_ms": 120_000}, token=token) == {
            "clock_skew_ms": 120_000}
        body = {"txs": [b"\x00"]}
        honest = cpp.seal(MSG_TXS, body)
        skewed = c0.seal(MSG_TXS, body)
        assert skewed.ts - honest.ts >= 119_000  # the node stamps by its own (skewed) clock
        assert c0.chain.clock.now_ms() - cpp.chain.clock.now_ms() >= 119_000  # and proposes blocks by it
        before = cpp.router.rejected[ProtocolReason.STALE]
        assert cpp.router.check(skewed.wire, origin="test") is None  # two minutes ahead: refused, with its code
        assert cpp.router.rejected[ProtocolReason.STALE] == before + 1
        status = await http_json(c0.http_port, "GET", "/status")
        assert status["clock_skew_ms"] == 120_000
        with trio.fail_after(5):
            await http_json(c0.http_port, "POST", "/clock", {"skew_ms": 0}, token=token)
        cpp.router.check(c0.seal(MSG_TXS, body).wire, origin="test")
        assert cpp.router.rejected[ProtocolReason.STALE] == before + 1  # back on time: not stale
