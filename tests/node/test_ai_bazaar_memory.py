"""The ai-bazaar market end to end on in-memory nodes: the same runtime and role code as the processes."""

from __future__ import annotations

from pathlib import Path

import trio

from .harness import memory_net, small_scenario


async def test_rounds_settle_and_every_node_agrees(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    async with memory_net(scenario, tmp_path / "net") as nodes:
        cpp = nodes["cpp"].app
        summaries = []
        for _ in range(4):
            with trio.fail_after(30):
                summaries.append(await cpp.play_round())
        for s in summaries:
            assert s["final"], s
            assert s["left_out"] == []
            assert s["winner"].startswith("consumer-")
        heights = {n.chain.finalized_height for n in nodes.values()}
        with trio.fail_after(10):
            while len({(n.chain.finalized_height, n.chain.chain.head_hash) for n in nodes.values()}) != 1:
                await nodes["cpp"].chain.changes.wait_for(lambda: False, 0.05) if False else trio.sleep(0.01)
        assert heights == {4} or max(heights) == 4
        state = nodes["cpp"].chain.chain.state
        assert state.conserved()
