"""A restarted node neither proposes nor attests until it holds the certified head its peers report (issue 12,
defect 3: a consumer restarted at height 19 while 20 was final won the next PoL race and proposed a competing
block 20)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.ledger.errors import InvalidBlock
from bazaar.node.launcher import NetDir, prepare_network
from bazaar.node.runtime import open_node
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until_async
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.memory import MemoryNetwork

from .harness import small_scenario


async def test_a_restarted_node_waits_for_the_certified_head(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=4)
    configs = prepare_network(load_scenario(small_scenario(tmp_path)), NetDir(tmp_path / "net"), log_json=False)

    def factory(key, cfg, topics):  # type: ignore[no-untyped-def]
        return net.join(key)

    async with AsyncExitStack() as stack:
        nodes = {name: await stack.enter_async_context(open_node(cfg, transport_factory=factory))
                 for name, cfg in configs.items() if name != "consumer-2"}
        async with open_node(configs["consumer-2"], transport_factory=factory) as late:
            await wait_until_async(lambda: all(n.chain.synced for n in [*nodes.values(), late]), timeout=10,
                                   interval=0.001, what="the nodes to sync")
            with trio.fail_after(60):
                first = await nodes["cpp"].engine.play()
            assert first["final"]
            await wait_until_async(lambda: late.chain.finalized_height >= first["height"], timeout=20,
                                   interval=0.001, what="consumer-2 to finalize")
        old_height = late.chain.finalized_height
        with trio.fail_after(60):  # consumer-2 is down: the network moves on without it
            second = await nodes["cpp"].engine.play()
        assert second["final"] and second["height"] > old_height
        for node in nodes.values():  # it comes back cut off from everyone: it may not act on its old head
            net.disconnect(node.key.public, late.key.public)
        async with open_node(configs["consumer-2"], transport_factory=factory) as restarted:
            svc = restarted.chain
            assert svc.height == old_height and not svc.synced
            with pytest.raises(InvalidBlock) as err:
                await svc.propose({"rule": "pol"}, timestamp_ms=now_ms())
            assert err.value.reason == "not-synced"
            published: list[str] = []

            async def publish(mtype: str, body: dict[str, Any]) -> None:
                published.append(mtype)

            svc.publish = publish
            block = svc.block(old_height)
            assert block is not None
            await svc.finality.attest(block)
            assert published == []  # no vote on the old head either
            net.heal()
            with trio.fail_after(30):
                await svc.wait_for(lambda: svc.synced, timeout=30)
            assert svc.finalized_height >= second["height"]
            assert svc.block(second["height"]).hash == nodes["cpp"].chain.block(second["height"]).hash
