"""A node pushes its market messages to every subscriber of their topic when it is connected to all of them, and
gossips them otherwise, or as well when a push fails (docs/adr/0194)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from bazaar.node.runtime import Node
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.transport import PeerUnavailable

from .harness import memory_net, small_scenario


async def _round(nodes: dict[str, Node]) -> dict[str, Any]:
    with trio.fail_after(60):
        summary = await nodes["cpp"].engine.play()  # type: ignore[union-attr]
        for node in nodes.values():
            await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= summary["height"],
                                              timeout=20)
    assert summary["final"], summary
    return summary


async def test_every_market_message_is_pushed_on_a_fully_connected_network(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        topic = nodes["cpp"].topics[1]  # the market's topic, every node subscribes to it
        assert nodes["cpp"].spread.subscribers(topic) == {n.key.public for n in nodes.values()} - {
            nodes["cpp"].key.public}
        await _round(nodes)
        assert nodes["cpp"].spread.counts["pushed"] >= 1  # its price
        assert all(n.spread.counts["gossiped"] == 0 and n.spread.counts["made_up"] == 0 for n in nodes.values())
        assert nodes["cpp"].router.received["ai-bazaar/demand"] >= 1  # the consumers' demands came pushed


async def test_a_node_not_connected_to_every_subscriber_gossips(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=1)
    async with memory_net(small_scenario(tmp_path), tmp_path / "net", network=net) as nodes:
        a, b = nodes["consumer-0"], nodes["consumer-1"]
        net.disconnect(a.key.public, b.key.public)
        await _round(nodes)
        assert a.spread.counts["gossiped"] >= 1 and a.spread.counts["pushed"] == 0
        assert nodes["cpp"].spread.counts["gossiped"] == 0  # still connected to everyone


async def test_a_failed_push_is_made_up_by_gossip(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        cpp, deaf = nodes["cpp"], nodes["consumer-2"]
        push = cpp.transport.push

        async def failing(peer: bytes, topic: str, data: bytes, *, timeout: float) -> None:
            if peer == deaf.key.public:
                raise PeerUnavailable("refused for the test")
            await push(peer, topic, data, timeout=timeout)

        cpp.transport.push = failing  # type: ignore[method-assign]
        before = deaf.router.received["ai-bazaar/price"]
        await _round(nodes)
        assert cpp.spread.counts["made_up"] >= 1
        assert deaf.router.received["ai-bazaar/price"] > before  # it got the price by gossip


async def test_messages_are_gossiped_when_the_scenario_says_so(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    scenario.write_text(scenario.read_text() + "\n[chain]\nmessages = \"gossip\"\n")
    async with memory_net(scenario, tmp_path / "net") as nodes:
        await _round(nodes)
        assert all(n.spread.counts["pushed"] == 0 for n in nodes.values())
        assert nodes["cpp"].spread.counts["gossiped"] >= 1
