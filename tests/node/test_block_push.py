"""A proposer pushes its block to every node (docs/adr/0192): straight to the peers it is connected to, through the
aggregator to the others, gossiped only when that falls short; a malformed push is refused with a reason and a
relay is honoured only for the block's own proposer."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.protocol import codec
from bazaar.protocol.chainmsg import MSG_BLOCK, PROTO_BLOCK
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.transport import RejectRequest, RemoteRejected

from .harness import memory_net, small_scenario


async def _play_until_final_everywhere(leader: Node, nodes: dict[str, Node]) -> int:
    summary = await leader.engine.play()  # type: ignore[union-attr]
    assert summary["final"], summary
    for node in nodes.values():
        await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= summary["height"], timeout=20)
    return int(summary["height"])


async def test_a_miner_s_block_reaches_the_miners_it_is_not_connected_to_through_the_aggregator(
        tmp_path: Path) -> None:
    net = MemoryNetwork(seed=1)
    async with open_memory_network("hierarchical-small", tmp_path / "net", network=net) as nodes:
        miners = [n for name, n in nodes.items() if name.startswith("miner-")]
        for i, a in enumerate(miners):  # a sparse topology: miners reach the CCSP and the MESPs only
            for b in miners[i + 1:]:
                net.disconnect(a.key.public, b.key.public)
        ccsp = nodes["ccsp"]
        assert ccsp.chain.aggregator == ccsp.key.public
        proposers: set[bytes] = set()
        with trio.fail_after(120):
            for _ in range(6):  # until a miner drawn by the lottery proposes one
                height = await _play_until_final_everywhere(ccsp, nodes)
                proposers.add(ccsp.chain.chain.block(height).header.proposer)
                if proposers & {m.key.public for m in miners}:
                    break
        assert proposers & {m.key.public for m in miners}, "no miner was drawn in six rounds"
        assert ccsp.chain.blockpush.counts["relayed"] >= len(miners) - 1  # the other miners got it from the hub
        assert all(n.chain.blockpush.counts["gossiped"] == 0 for n in nodes.values())
        assert all(n.router.received[MSG_BLOCK] == 0 for n in nodes.values())  # no block was gossiped
        assert len({n.chain.chain.block(height).hash for n in nodes.values()}) == 1


async def test_a_block_push_that_fails_is_made_up_by_gossip(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        deaf = nodes["consumer-2"]

        async def refuse(peer: bytes, request: bytes) -> bytes:
            raise RejectRequest("busy")

        deaf.transport.set_handler(PROTO_BLOCK, refuse)
        with trio.fail_after(60):
            height = await _play_until_final_everywhere(nodes["cpp"], nodes)
        proposer = next(n for n in nodes.values() if n.key.public == deaf.chain.chain.block(height).header.proposer)
        assert proposer.chain.blockpush.counts["gossiped"] >= 1  # the refused push was made up by gossip
        assert deaf.router.received[MSG_BLOCK] >= 1


async def test_a_malformed_push_is_refused_and_a_relay_is_done_for_the_block_s_proposer_only(
        tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        with trio.fail_after(60):
            height = await _play_until_final_everywhere(nodes["cpp"], nodes)
        hub, other = nodes["cpp"], nodes["consumer-1"]
        block = hub.chain.chain.block(height)
        assert block is not None
        for body, reason in ((b"\xc1", "malformed"), (codec.encode({"block": 7}), "malformed"),
                             (codec.encode({"block": block.encode(), "relay": [b"short"]}), "malformed"),
                             (codec.encode({"block": block.encode(), "x": 1}), "malformed"),
                             (codec.encode({"block": b"not a block"}), "malformed")):
            with pytest.raises(RemoteRejected) as err:
                await other.transport.request(hub.key.public, PROTO_BLOCK, body, timeout=5)
            assert err.value.reason == reason
        before = dict(hub.chain.blockpush.counts)
        # a block we hold, pushed again by a peer that did not propose it: taken (nothing new), never relayed
        proposer = block.header.proposer
        sender = next(n for n in nodes.values() if n.key.public not in (proposer, hub.key.public))
        relay = codec.encode({"block": block.encode(), "relay": []})
        assert await sender.transport.request(hub.key.public, PROTO_BLOCK, relay, timeout=5) == b""
        assert hub.chain.blockpush.counts == before
        assert hub.chain.chain.height == height


async def test_blocks_are_gossiped_when_the_scenario_says_so(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    scenario.write_text(scenario.read_text() + "\n[chain]\nblocks = \"gossip\"\n")
    async with memory_net(scenario, tmp_path / "net") as nodes:
        with trio.fail_after(60):
            await _play_until_final_everywhere(nodes["cpp"], nodes)
        assert all(n.chain.blockpush.counts == {"pushed": 0, "relayed": 0, "gossiped": 0} for n in nodes.values())
        assert sum(n.router.received[MSG_BLOCK] for n in nodes.values()) >= len(nodes) - 1
