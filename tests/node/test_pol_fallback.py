"""A PoL round whose winner never proposes is settled by the next-best verified claim after ``block_s``
(attempt 1), and an attempt-1 block that arrives before its wait is refused (issue 12, ADR 0095)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from bazaar.ledger.consensus import pol_consensus
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.txs import decode_tx
from bazaar.node.byzantine import WITHHOLD_BLOCK
from bazaar.node.consensus.factory import make_driver
from bazaar.node.consensus.pol import PolDriver
from bazaar.node.runtime import Node
from bazaar.node.waiting import wait_until_async
from bazaar.protocol.envelope import now_ms

from .harness import memory_net, small_scenario


def _driver(node: Node) -> PolDriver:
    assert isinstance(node.consensus, PolDriver)
    return node.consensus


async def test_a_round_whose_winner_withholds_its_block_is_settled_by_the_second_best_claim(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path, mining_s=4.0), tmp_path / "net") as nodes:
        cpp = nodes["cpp"]
        judge = _driver(cpp)
        by_key = {n.key.public: n for n in nodes.values()}
        summary: dict[str, Any] = {}

        async def play() -> None:
            summary.update(await cpp.engine.play())

        # every miner withholds until the ranking is known: the round's window closes on the last claim and the
        # best claimant may propose at once, before this test could single it out (a race it lost under load)
        miners = [n for n in nodes.values() if n is not cpp]
        for node in miners:
            _driver(node).byzantine = frozenset({WITHHOLD_BLOCK})

        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play)

                def all_claimed() -> bool:  # every leased miner's claim reached the CPP (before the mining deadline)
                    leased = judge.leased.get(1)
                    return leased is not None and len(judge.submissions.get(1, {})) == len(leased) >= 2

                await wait_until_async(all_claimed, timeout=30, interval=0.01, what="every claim of round 1")
                ranked = judge.ranked(1)
                best, second = by_key[ranked[0].submitter], by_key[ranked[1].submitter]
                for node in miners:  # the winner keeps its block to itself; the others are honest again
                    if node is not best:
                        _driver(node).byzantine = frozenset()
        assert summary["final"], summary
        assert summary["winner"] == second.name
        block = cpp.chain.block(summary["height"])
        assert block is not None
        assert block.header.proposer == second.key.public
        assert block.header.consensus["attempt"] == 1
        assert _driver(best).withheld == 1 and _driver(best).proposed == 0
        assert _driver(second).fallbacks == 1 and _driver(second).proposed == 1
        for node in nodes.values():  # every node ranked the withholding winner first and still took the fallback
            assert _driver(node).winners[1] == best.key.public
            await node.chain.wait_for(lambda n=node: n.chain.height >= summary["height"], timeout=10)
            assert node.chain.block(summary["height"]).hash == block.hash
            assert node.chain.state.conserved()


async def test_an_attempt_1_block_that_arrives_before_its_wait_is_refused(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        cpp = nodes["cpp"]
        judge = _driver(cpp)
        miners = [nodes["consumer-0"], nodes["consumer-1"], nodes["consumer-2"]]
        judge.expect(99, miners=[m.key.public for m in miners])
        raws = []
        for i, miner in enumerate(miners):  # three real models with the losses they claim, served by their miners
            pol = _driver(miner)
            w = pol.task.init + 0.01 * (i + 1) * np.ones(pol.task.n_params)
            h = pol.models.put(w)
            commit = miner.chain.sign_tx("model_commit", {"hash": h, "size": w.size * 8, "pointer": "p2p:x",
                                                          "loss": pol.task.loss(w)}, round=99)
            raws.append(commit.wire)
            judge.add_submission(99, commit.wire)
        with trio.fail_after(30):
            assert await judge.decide(99) is not None
        ranking = [s.submitter for s in judge.verified[99]]
        assert len(ranking) == 3
        by_key = {m.key.public: m for m in miners}
        second, third = by_key[ranking[1]], by_key[ranking[2]]
        height = cpp.chain.height + 1

        def block_by(node: Node, submissions: list[bytes], attempt: int) -> Any:
            proof = pol_consensus(submissions, node.network_id, node.bls_secret, height, attempt)
            return node.chain.dry_run(proof, timestamp_ms=now_ms())

        early = block_by(second, raws, 1)
        judge.fallback_s = 3600.0  # the wait for attempt 1 is far from over
        check = await judge.prepare_block(early)
        assert check is not None
        with pytest.raises(InvalidBlock) as err:
            check(cpp.chain.state, early)
        assert err.value.reason == "pol-early"
        assert not await cpp.chain.import_block(early, announce=False)
        assert cpp.chain.height == height - 1

        judge.fallback_s = 0.0  # the wait is over: the second-best claim may take over
        # ... but not the third one passing itself off as the second by leaving the second's claim out
        skipping = block_by(third, [r for r in raws if decode_tx(r, cpp.network_id).sender != second.key.public], 1)
        assert not await cpp.chain.import_block(skipping, announce=False)
        assert await cpp.chain.import_block(early, announce=False)
        assert cpp.chain.height == height and cpp.chain.state.pol_round == 99
        assert cpp.chain.block(height).header.proposer == second.key.public



async def test_a_node_started_with_withhold_block_gets_a_withholding_driver(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        node = nodes["consumer-0"]
        assert _driver(node).byzantine == frozenset()
        started = dataclasses.replace(node, config=dataclasses.replace(node.config, byzantine=(WITHHOLD_BLOCK,)))
        driver = make_driver("pol", started, learning_task=_driver(node).task, data_dir=tmp_path / "byz")
        assert isinstance(driver, PolDriver)
        assert driver.byzantine == {WITHHOLD_BLOCK} and driver.fallback_s == node.deadline("block_s")
