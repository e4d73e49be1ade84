"""The ai-bazaar market end to end on in-memory nodes: the same runtime and role code as the processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio

from bazaar.mechanisms.ai_bazaar import solve_stackelberg
from bazaar.node.runtime import Node
from bazaar.protocol.memory import MemoryNetwork

from .harness import memory_net, small_scenario


async def _settled(nodes: dict[str, Node], height: int) -> None:
    """Wait until every node has finalized ``height`` on the same block."""
    with trio.fail_after(10):
        for node in nodes.values():
            await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=10)
    heads = {n.chain.chain.block(height).hash for n in nodes.values()}
    assert len(heads) == 1


async def test_rounds_settle_at_the_equilibrium_and_every_node_agrees(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        cpp = nodes["cpp"].app
        summaries = []
        for _ in range(4):
            with trio.fail_after(30):
                summaries.append(await nodes["cpp"].engine.play())
        eq = solve_stackelberg(cpp.cfg.param_sets["p3"])
        for s in summaries[:2]:  # equilibrium phase: exactly the Stackelberg outcome
            assert s["final"] and s["left_out"] == [] and s["winner"].startswith("consumer-")
            assert s["price"] == pytest.approx(eq.price)
            assert list(s["demand"].values()) == pytest.approx(list(eq.demand), rel=1e-6)
        for s in summaries[2:]:  # learning phase: prices from the WoLF-PHC grid
            assert s["final"] and s["mode"] == "learning"
            assert np.isclose(np.linspace(10, 20, 11), s["price"]).any()
        await _settled(nodes, 4)
        for node in nodes.values():
            state = node.chain.chain.state
            assert state.conserved()
            assert state.nonce(node.key.public) > 0  # every node transacted
        minted = nodes["cpp"].chain.chain.state.supply.minted
        assert minted > 0  # block rewards R + lambda B went to the PoL winners


async def test_unreachable_consumer_is_left_out_and_the_round_settles(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=3)
    async with memory_net(small_scenario(tmp_path), tmp_path / "net", network=net) as nodes:
        cut = nodes["consumer-2"]
        for node in nodes.values():
            if node is not cut:
                net.disconnect(node.key.public, cut.key.public)
        with trio.fail_after(30):
            summary = await nodes["cpp"].engine.play()
        assert summary["final"]
        assert "consumer-2" not in summary["participants"] and "consumer-2" not in summary["demand"]
        live = {k: v for k, v in nodes.items() if v is not cut}
        await _settled(live, summary["height"])
        net.heal()
        with trio.fail_after(30):
            await cut.chain.sync_from(nodes["cpp"].key.public)  # returns at once when its sync loop is pulling
            await cut.chain.wait_for(lambda: cut.chain.chain.height >= summary["height"], timeout=30)
        assert cut.chain.chain.block(summary["height"]).hash == nodes["cpp"].chain.chain.block(summary["height"]).hash


async def test_a_false_loss_claim_never_wins(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        liar = nodes["consumer-0"].app
        honest_loss = liar.pol.task.loss
        liar.pol.task = type(liar.pol.task)(**{**liar.pol.task.__dict__})
        object.__setattr__(liar.pol.task, "loss", lambda w: honest_loss(w) * 0.1)  # claims 10x better
        with trio.fail_after(30):
            summary = await nodes["cpp"].engine.play()
        assert summary["final"], summary
        assert summary["winner"] != "consumer-0"
        honest = {k: v for k, v in nodes.items() if k != "consumer-0"}
        await _settled(honest, summary["height"])
        for node in honest.values():
            assert (1, liar.ctx.key.public) in node.app.pol.cheaters


async def test_a_wrong_proposer_is_outvoted_and_rewinds_to_the_certified_block(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        stray = nodes["consumer-0"]
        own_only = stray.app.pol.ranked

        def ranked(round_no: int):  # type: ignore[no-untyped-def]
            return [s for s in own_only(round_no) if s.submitter == stray.key.public]  # it "misses" the others

        stray.app.pol.ranked = ranked
        with trio.fail_after(30):
            summary = await nodes["cpp"].engine.play()
        assert summary["final"] and summary["winner"] != "consumer-0", summary
        height = summary["height"]
        # the stray node proposed its own block at that height, then saw 2/3 of the stake certify another
        with trio.fail_after(30):
            await stray.chain.changes.wait_for(lambda: stray.chain.finalized_height >= height, timeout=30)
        assert stray.chain.chain.block(height).hash == nodes["cpp"].chain.chain.block(height).hash
        assert stray.chain.rewinds == 1  # it had built on its own block and dropped it
        stray.app.pol.ranked = own_only
        with trio.fail_after(30):
            again = await nodes["cpp"].engine.play()
        await _settled(nodes, again["height"])


async def test_pretrained_agents_start_near_the_equilibrium_and_keep_learning(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path, phases="""
[[phases]]
name = "learn"
params = "p3"
mode = "learning"
rounds = 3
""")
    scenario.write_text(scenario.read_text().replace("max_steps = 50", "max_steps = 50\npretrain_episodes = 6000"))
    async with memory_net(scenario, tmp_path / "net") as nodes:
        cpp = nodes["cpp"].app
        before = cpp.agent.state_dict()
        assert any(any(abs(q) > 0 for q in row) for row in before["q"])  # pre-trained, not a blank table
        eq = solve_stackelberg(cpp.cfg.param_sets["p3"])
        step = 1.0  # the price grid step on [10, 20] with 11 levels
        greedy = np.linspace(10, 20, 11)[cpp.agent.greedy_action(cpp.last_bucket)]
        assert abs(greedy - eq.price) <= 2 * step
        for _ in range(3):
            with trio.fail_after(30):
                summary = await nodes["cpp"].engine.play()
            assert summary["final"] and summary["mode"] == "learning"
        assert cpp.agent.state_dict()["q"] != before["q"]  # online updates continued from the pre-trained table
