"""Only miners that leased compute may claim in a PoL round, and a claim whose model is not served in time is
dropped under one deadline, never waited on claim after claim (issue 12, defect 7)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.node.consensus import pol
from bazaar.node.waiting import wait_until_async
from bazaar.protocol import ProtocolError
from bazaar.protocol.chainmsg import PROTO_MODEL
from bazaar.protocol.markets.ai_bazaar import MSG_MINED
from bazaar.protocol.memory import MemoryNetwork

from .harness import memory_net, small_scenario


async def test_a_claim_from_a_key_that_leased_nothing_is_refused(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=7)
    async with memory_net(small_scenario(tmp_path), tmp_path / "net", network=net) as nodes:
        cpp, attacker = nodes["cpp"], nodes["consumer-2"]
        honest = [nodes["consumer-0"], nodes["consumer-1"]]
        net.disconnect(cpp.key.public, attacker.key.public)  # it never leases

        async def stall(peer: bytes, request: bytes) -> bytes:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        attacker.transport.set_handler(PROTO_MODEL, stall)  # and its model fetch stalls
        summary: dict[str, Any] = {}

        async def play() -> None:
            summary.update(await cpp.engine.play())

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play)
                await wait_until_async(lambda: all(1 in n.app.pol.leased for n in honest), timeout=30,
                                       interval=0.01, what="the lease")
                assert all(attacker.key.public not in n.app.pol.leased[1] for n in honest)
                commit = attacker.chain.sign_tx("model_commit", {"hash": os.urandom(32), "size": 8,
                                                                 "pointer": "p2p:x", "loss": 0.0}, round=1)
                await attacker.publish(MSG_MINED, {"model_hash": commit.body["hash"], "loss": 0.0, "steps": 1,
                                                   "txs": [commit.wire]}, round=1)
        assert summary["final"], summary
        assert summary["winner"] != "consumer-2"
        for node in honest:
            assert attacker.key.public not in node.app.pol.submissions.get(1, {})
            assert all(s.submitter != attacker.key.public for s in node.app.pol.ranked(1))
        with pytest.raises(ProtocolError) as err:
            honest[0].app.pol.add_submission(1, commit.wire)
        assert err.value.reason == "not-leased"


async def test_claims_whose_models_stall_are_dropped_under_one_deadline(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pol, "FETCH_TIMEOUT", 1.0)
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        judge = nodes["cpp"].app.pol
        miners = [nodes["consumer-0"], nodes["consumer-1"], nodes["consumer-2"]]

        async def stall(peer: bytes, request: bytes) -> bytes:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        judge.expect(99, miners=[m.key.public for m in miners])
        for i, miner in enumerate(miners):
            miner.transport.set_handler(PROTO_MODEL, stall)
            commit = miner.chain.sign_tx("model_commit", {"hash": os.urandom(32), "size": 8, "pointer": "p2p:x",
                                                          "loss": 0.1 * i}, round=99)
            judge.add_submission(99, commit.wire)
        t0 = time.monotonic()
        with trio.fail_after(10):
            assert await judge.decide(99) is None
        assert time.monotonic() - t0 < 2.5  # one deadline for all three, not three in a row
        assert {(99, m.key.public) for m in miners} <= judge.cheaters


async def test_each_claim_is_checked_as_it_arrives_and_the_ranking_fetches_nothing_again(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        judge = nodes["cpp"].app.pol
        miners = [nodes["consumer-0"], nodes["consumer-1"], nodes["consumer-2"]]
        served: list[bytes] = []
        judge.expect(99, miners=[m.key.public for m in miners])
        claims = []
        for i, miner in enumerate(miners):
            store = miner.app.pol.models

            async def counted(peer: bytes, request: bytes, store: pol.ModelStore = store,
                              me: bytes = miner.key.public) -> bytes:
                served.append(me)
                return await store.serve(peer, request)

            miner.transport.set_handler(PROTO_MODEL, counted)
            w = judge.task.train(judge.task.init, steps=3 * (i + 1), seed=i)
            h = store.put(w)
            loss = judge.task.loss(w) + (0.5 if i == 0 else 0.0)  # consumer-0 claims a loss its model does not have
            commit = miner.chain.sign_tx("model_commit", {"hash": h, "size": judge.task.n_params,
                                                          "pointer": "p2p:x", "loss": loss}, round=99)
            claims.append((miner.key.public, h))
            judge.add_submission(99, commit.wire)
        # the checks run in the background (the ranking has not been asked for yet)
        await wait_until_async(lambda: all(k in judge.checks and judge.checks[k].done.is_set() for k in claims),
                               timeout=30, interval=0.01, what="the background checks")
        assert sorted(served) == sorted(m.key.public for m in miners)
        with trio.fail_after(30):
            best = await judge.decide(99)
        assert len(served) == len(miners)  # the ranking used the checks: no model fetched twice
        assert best is not None and best.submitter != miners[0].key.public
        assert (99, miners[0].key.public) in judge.cheaters
        assert {s.submitter for s in judge.verified[99]} == {m.key.public for m in miners[1:]}
