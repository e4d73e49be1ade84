"""Market tbcim on the in-memory network: the network settles exactly what the offline twin computes, the
FedAvg contract refuses a wrong global model, the filter rejects poisoned updates with evidence on the ledger,
and every bad input is refused with a coded reason."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.apply import build_block
from bazaar.ledger.consensus import pos_consensus, pos_proposer
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.tbcim import market as mk
from bazaar.node.markets.context import Refuse, RequestFailed
from bazaar.node.markets.tbcim.contract import check_report, escrow_id, parse_bid
from bazaar.node.memnet import open_memory_network
from bazaar.node.rounds.engine import RoundStart
from bazaar.node.runtime import Node
from bazaar.node.solve.tbcim_bcfl import solve
from bazaar.protocol.markets import tbcim as msg

SMALL = "tbcim-small"
POISON = "tbcim-poison"


async def _play(nodes: dict[str, Node]) -> dict[str, Any]:
    leader = nodes["requester"]
    assert leader.engine is not None
    with trio.fail_after(60):
        return await leader.engine.play()


async def _collect(nodes: dict[str, Node], out: list[dict[str, Any]]) -> None:
    out.append(await _play(nodes))


async def _task(nodes: dict[str, Node]) -> list[dict[str, Any]]:
    epochs = nodes["requester"].app.cfg.epochs  # type: ignore[union-attr]
    return [await _play(nodes) for _ in range(epochs)]


async def test_the_network_settles_what_the_offline_twin_computes(tmp_path: Path) -> None:
    offline = solve(SMALL)
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        start = {n.name: n.chain.state.balance(n.key.public) for n in nodes.values()}
        rounds = await _task(nodes)
        assert all(r["final"] and r["left_out"] == [] for r in rounds), rounds
        assert [r["epoch"] for r in rounds] == list(range(len(rounds)))
        outcome = rounds[-1]["outcome"]
        assert outcome == offline  # bit-identical global model, equal winners, payments, prices and accuracy
        assert outcome["winners"] and outcome["participants"]
        # the epochs so far, round by round, are a prefix of the offline accuracy curve
        for r in rounds:
            assert r["outcome"]["accuracy"] == offline["accuracy"][: r["epoch"] + 1]
        state = nodes["es-0"].chain.state
        assert state.conserved() and not state.escrows
        minted: dict[bytes, int] = {}
        for h in range(1, state.height + 1):
            block = nodes["es-0"].chain.block(h)
            minted[block.header.proposer] = minted.get(block.header.proposer, 0) + block.header.reward
        fees = {ed: to_units(v) for ed, v in offline["fees"].items()}
        for name, node in nodes.items():
            key = node.key.public
            got = state.balance(key) - start[name] - minted.get(key, 0)
            if node.role == "ed":
                assert got == fees.get(name, 0), name
            elif node.role == "es":
                assert got == to_units(offline["payments"].get(name, 0.0)) - sum(
                    fees[ed] for ed in offline["participants"].get(name, [])), name
        requester = nodes["requester"].key.public
        assert start["requester"] - state.balance(requester) + minted.get(requester, 0) == sum(
            to_units(v) for v in offline["payments"].values())
        # proposers were drawn among the winners by revenue share
        weights = state.proposer_weights()
        assert {nodes[n].key.public for n in offline["winners"]} == set(weights)
        for r in rounds[1:]:
            assert r["proposer"] in offline["winners"]


async def test_a_block_with_a_wrong_global_model_is_refused_by_every_honest_es(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        await _play(nodes)  # the auction and epoch 0
        requester = nodes["requester"]
        app: Any = requester.app
        real = app.reexecute

        def corrupt(book: Any, updates: Any) -> Any:
            result = real(book, updates)
            result.model_hash = bytes(32)
            return result

        app.reexecute = corrupt
        book = app.books[1]
        with trio.fail_after(30):
            await app.run_epoch(RoundStart(2, "task", "bcfl", "", time.monotonic()), book, 1)
        ess = [n for n in nodes.values() if n.role == "es"]
        # honest proposers refuse to build it: the record waits in every mempool, the chain does not move
        height = ess[0].chain.height
        record = next(raw for raw in requester.chain.mempool.ordered()
                      if decode_tx(raw, requester.network_id).body.get("kind") == msg.EPOCH_RECORD)
        with trio.move_on_after(2 * requester.deadline("block_s")):
            await ess[0].chain.wait_for(lambda: ess[0].chain.height > height, timeout=60)
        assert ess[0].chain.height == height
        # a Byzantine proposer builds it anyway: every honest ES refuses it, and says why
        state = ess[0].chain.state
        drawn = pos_proposer(state, state.height + 1)
        byz = next(n for n in ess if n.key.public == drawn)
        block, _, _ = build_block(state, byz.genesis, byz.key, [record], timestamp_ms=state.timestamp_ms + 1,
                                  consensus=pos_consensus(byz.bls_secret, byz.network_id, state.height + 1))
        for es in ess:
            with pytest.raises(InvalidBlock, match="model-mismatch"):
                es.app.check_block(es.chain.state, block)  # type: ignore[union-attr]
            assert await es.chain.import_block(block, announce=False) is False
            assert es.chain.height == height


async def test_the_requester_cannot_take_back_a_payment_before_the_task_ends(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        summary = await _play(nodes)  # the auction: the winners' payments are escrowed
        requester, es = nodes["requester"], nodes["es-0"]
        state = es.chain.state
        winner = nodes[summary["outcome"]["winners"][0]].key.public
        pay = escrow_id("pay", 1, winner)
        assert pay in state.escrows
        grab = requester.chain.sign_tx("escrow_refund", {"id": pay}, round=99)
        drawn = pos_proposer(state, state.height + 1)
        byz = next(n for n in nodes.values() if n.key.public == drawn)
        block, _, _ = build_block(state, byz.genesis, byz.key, [grab.wire], timestamp_ms=state.timestamp_ms + 1,
                                  consensus=pos_consensus(byz.bls_secret, byz.network_id, state.height + 1))
        with pytest.raises(InvalidBlock, match="may not take back a payment or a fee"):
            es.app.check_block(state, block)  # type: ignore[union-attr]
        assert await es.chain.import_block(block, announce=False) is False


async def test_poisoned_updates_are_rejected_with_evidence_on_the_ledger(tmp_path: Path) -> None:
    offline, unfiltered = solve(POISON), solve(POISON, use_filter=False)
    async with open_memory_network(POISON, tmp_path / "net") as nodes:
        rounds = await _task(nodes)
        outcome = rounds[-1]["outcome"]
        assert outcome == offline
        poisoners = {"ed-2", "ed-5"}
        assert {r["ed"] for r in outcome["rejected_updates"]} == poisoners
        assert outcome["accuracy"][-1] > unfiltered["accuracy"][-1] + 0.3
        # the evidence: each epoch record carries the ESs' signed verdicts with accepted = False
        es = nodes["es-0"]
        rejected_on_chain = set()
        for h in range(1, es.chain.height + 1):
            for raw in es.chain.block(h).txs:
                tx = decode_tx(raw, es.network_id)
                if tx.type == "tx/record" and tx.body["kind"] == msg.EPOCH_RECORD:
                    updates, accepted, scores = es.app.verdicts_of(tx.body["data"], es.app.books[1])  # type: ignore
                    for u, ok, score in zip(updates, accepted, scores, strict=True):
                        if not ok:
                            assert score is not None and score < 0
                            rejected_on_chain.add(es.scenario.names("ed")[u.ed])
        assert rejected_on_chain == poisoners


async def test_bad_reports_bids_and_updates_are_refused_with_reasons(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        await _play(nodes)
        ed, es = nodes["ed-0"], nodes["es-0"]
        app: Any = es.app
        cfg = app.cfg
        rep = mk.ed_report(cfg, app.data, 0)
        body = {"task": 1, "d": rep.d, "histogram": list(rep.histogram), "theta": rep.theta, "gamma": rep.gamma,
                "beta": rep.beta, "compute": rep.compute, "c_m": rep.c_m}
        p_ref = [float(x) for x in app.data.p_ref]
        good = ed.seal(msg.MSG_REPORT, body, round=1)
        assert check_report(good, app.roster, 0, 1, p_ref, cfg.data_unit)[0] == 0
        for change, reason in (({"theta": rep.theta + 0.1}, "bad-report"), ({"d": rep.d * 2}, "bad-report"),
                               ({"task": 2}, "wrong-task")):
            forged = ed.seal(msg.MSG_REPORT, {**body, **change}, round=1)
            with pytest.raises(Refuse) as err:
                check_report(forged, app.roster, 0, 1, p_ref, cfg.data_unit)
            assert err.value.reason == reason
        with pytest.raises(Refuse) as err:  # an ED reporting to an ES that is not its own
            check_report(good, app.roster, 1, 1, p_ref, cfg.data_unit)
        assert err.value.reason == "not-authorised"
        # an ES bid above the reserve, and a bid whose profile does not follow from its reports
        kept, d, theta = mk.es_profile([rep])
        bid = {"task": 1, "bid": 1.0, "d": d, "theta": theta, "selected": list(kept), "reports": [good.wire]}
        for change, reason in (({}, "bid-over-reserve"), ({"bid": 0.01, "d": d * 2}, "bad-profile")):
            wire = es.seal(msg.MSG_BID, {**bid, **change}, round=1).wire
            with pytest.raises(Refuse) as err:
                parse_bid(wire, es.network_id, app.roster, 1, p_ref, cfg.data_unit, 0.08)
            assert err.value.reason == reason
        # an update for an epoch not announced, one of the wrong size, one whose weights do not match its hash
        book = app.books[1]
        worker = next(i for i in sorted(book.workers()))
        wnode = nodes[es.scenario.names("ed")[worker]]
        home = nodes[es.scenario.names("es")[cfg.home[worker]]]
        delta = np.zeros(app.init_model.size + 1)
        h = wnode.app.blobs.put(delta)  # type: ignore[union-attr]
        upd = {"task": 1, "epoch": 1, "parent": book.model, "hash": h, "size": int(delta.size), "samples": 5}
        with pytest.raises(RequestFailed) as rf:
            await wnode.ask(home.key.public, msg.MSG_UPDATE, {**upd, "epoch": 3}, round=2, timeout=5)
        assert rf.value.reason == "refused" and "wrong-epoch" in rf.value.detail
        summaries = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _collect(nodes, summaries))
            await home.app.opened.wait_for(lambda: (1, 1) in home.app.epochs, timeout=20)  # type: ignore
            for change in ({}, {"size": app.init_model.size, "hash": bytes(range(32))}):
                with pytest.raises(RequestFailed) as rf:
                    await wnode.ask(home.key.public, msg.MSG_UPDATE, {**upd, **change}, round=2, timeout=10)
                assert rf.value.reason == "refused" and "bad-update" in rf.value.detail
        assert summaries[0]["final"] and summaries[0]["metrics"]["updates"] == len(book.workers())
        # an ED posing as the requester: its epoch message is refused by role
        await ed.publish(msg.MSG_EPOCH, {"task": 1, "epoch": 1, "model": bytes(32), "workers": [],
                                         "deadline_ms": 0}, round=9)
        await es.router.changes.wait_for(lambda: es.router.rejected.get("not-authorised", 0) >= 1, timeout=10)
        summary = await _play(nodes)  # nothing of that moved the market: the next epoch settles
        assert summary["final"]
        for node in nodes.values():
            assert node.router.rejected.get("handler-error", 0) == 0


async def test_pushed_weights_are_taken_only_from_the_peers_that_hand_them_out(tmp_path: Path) -> None:
    """The blob stream's push (docs/adr/0162): weights come only from the roster peers that hand them out, a note
    is honoured only when its signer is the pusher and it is of the epoch in progress, and a pushed update whose
    weights do not match its hash is refused like one whose weights cannot be pulled."""
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        await _play(nodes)
        req, ed, es, es2 = nodes["requester"], nodes["ed-0"], nodes["es-0"], nodes["es-1"]
        app: Any = req.app
        w = np.ones(app.init_model.size)
        with pytest.raises(RequestFailed) as rf:  # an edge device may not push weights to the requester
            await ed.app.blobs.push(req.key.public, [ed.app.blobs.put(w)], timeout=5)  # type: ignore[union-attr]
        assert rf.value.reason == "refused" and "not-authorised" in rf.value.detail
        verdicts = {"task": 1, "epoch": 1, "updates": [], "accepted": [], "scores": []}
        foreign = es2.seal(msg.MSG_VERDICTS, verdicts, round=2).wire  # es-1's verdicts pushed by es-0
        answer = await es.app.blobs.push(req.key.public, [], timeout=5, note=foreign)  # type: ignore[union-attr]
        assert answer == {"accepted": False, "reason": "not-authorised"}
        own = es.seal(msg.MSG_VERDICTS, verdicts, round=2).wire  # no epoch is open between rounds
        answer = await es.app.blobs.push(req.key.public, [], timeout=5, note=own)  # type: ignore[union-attr]
        assert answer == {"accepted": False, "reason": "wrong-epoch"}
        assert app.blobs.get(es.app.blobs.put(w)) is None  # type: ignore[union-attr]
        # a worker's update pushed with weights that are not the ones its hash commits to
        book = app.books[1]
        worker = next(i for i in sorted(book.workers()))
        wnode = nodes[es.scenario.names("ed")[worker]]
        home = nodes[es.scenario.names("es")[app.cfg.home[worker]]]
        upd = {"task": 1, "epoch": 1, "parent": book.model, "hash": bytes(range(32)), "size": int(w.size),
               "samples": 5}
        summaries: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _collect(nodes, summaries))
            await home.app.opened.wait_for(lambda: (1, 1) in home.app.epochs, timeout=20)  # type: ignore
            note = wnode.seal(msg.MSG_UPDATE, upd, round=2).wire
            answer = await wnode.app.blobs.push(  # type: ignore[union-attr]
                home.key.public, [wnode.app.blobs.put(w)], timeout=10, note=note)  # type: ignore[union-attr]
            assert answer == {"accepted": False, "reason": "bad-update"}
        assert summaries[0]["final"] and summaries[0]["metrics"]["updates"] == len(book.workers())


async def test_a_report_that_reaches_an_es_before_its_task_is_sent_again(tmp_path: Path) -> None:
    """The requester's task is pushed to every node at once (docs/adr/0194), so an ED's report may reach its ES
    before the ES took the task: refused ``wrong-task``, the ED asks again until the report deadline."""
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        es = nodes["es-0"]
        take = es.router.handlers[msg.MSG_TASK]

        async def late(env: Any) -> None:  # the ES takes the task only once it has refused an early report
            await es.router.changes.wait_for(lambda: es.router.rejected.get("wrong-task", 0) >= 1, timeout=10)
            await take(env)

        es.router.handlers[msg.MSG_TASK] = late
        summary = await _play(nodes)
        assert summary["final"] and summary["left_out"] == [], summary
        assert es.router.rejected["wrong-task"] >= 1  # the early reports were refused, then sent again
