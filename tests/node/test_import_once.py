"""A block's follow-ups (market hooks, the ``block.imported`` event, our vote) run once per block, also when the
same block reaches the chain service twice — a gossiped copy and a sync racing while a hook prepares."""

from __future__ import annotations

from pathlib import Path

import trio

from bazaar.ledger.block import Block
from bazaar.node.chain.hooks import BlockHooks
from bazaar.node.memnet import open_memory_network
from bazaar.protocol.memory import MemoryNetwork

from .test_draw_driver import _scenario


async def test_a_block_imported_twice_at_once_runs_its_follow_ups_once(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=3)
    async with open_memory_network(_scenario(tmp_path, "pos"), tmp_path / "net", network=net) as nodes:
        ccsp, late = nodes["ccsp"], nodes["miner-3"]
        for node in nodes.values():  # the miner misses the round's block
            if node is not late:
                net.disconnect(node.key.public, late.key.public)
        with trio.fail_after(60):
            summary = await ccsp.engine.play()
        assert summary["final"], summary
        block = ccsp.chain.block(summary["height"])
        assert isinstance(block, Block) and late.chain.chain.height == block.height - 1

        gate = trio.Event()
        seen: list[int] = []

        async def prepare(b: Block) -> None:  # a hook that awaits (as PoL and tbcim fetch models) while
            await gate.wait()                 # another path imports the same block
            return None

        late.chain.hooks.append(BlockHooks(prepare=prepare, imported=lambda b: seen.append(b.height)))
        results: list[bool] = []

        async def offer() -> None:
            results.append(await late.chain.import_block(block, announce=False))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(offer)
                nursery.start_soon(offer)
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
        assert results == [True, True]
        assert seen == [block.height]
        assert late.chain.chain.height == block.height
        assert await late.chain.import_block(block, announce=False)  # again, later: still once
        assert seen == [block.height]
