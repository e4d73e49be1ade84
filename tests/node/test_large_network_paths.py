"""What keeps a 50-process PoL network's rounds final (docs/adr/0147, 0148), checked in memory on the small
scenario with the thresholds lowered: a node verifies only the best few claims, claims carry their weights,
and votes go to the aggregator (the scenario's first node), which gossips the certificate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio

from bazaar.node.consensus import pol
from bazaar.node.consensus.pol_models import weights_bytes
from bazaar.node.waiting import wait_until_async
from bazaar.protocol import codec
from bazaar.protocol.chainmsg import MAX_CERT, MSG_ATTEST, MSG_CERT, PROTO_ATTEST, PROTO_CERT
from bazaar.protocol.transport import RejectRequest, RemoteRejected

from .harness import memory_net, small_scenario


def _claim(miner: Any, round_no: int, w: np.ndarray, *, lie: bool = False) -> tuple[bytes, bytes]:
    """A miner's signed commitment to weights ``w`` (their true loss, or a false 0.0); returns (commit, hash)."""
    h = miner.app.pol.models.put(w)
    loss = 0.0 if lie else miner.app.pol.task.loss(w)
    commit = miner.chain.sign_tx("model_commit", {"hash": h, "size": w.size * 8, "pointer": "p2p:x", "loss": loss},
                                 round=round_no)
    return commit.wire, h


async def test_a_node_verifies_the_best_claims_only_and_replaces_a_false_one_by_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pol, "VERIFIED_KEPT", 1)
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        judge = nodes["cpp"].app.pol
        miners = [nodes["consumer-0"], nodes["consumer-1"], nodes["consumer-2"]]
        judge.expect(99, miners=[m.key.public for m in miners])
        task = judge.task
        good = task.train(task.init, 20, 1)
        worse = task.train(task.init, 2, 1)
        claims = [_claim(miners[0], 99, task.init, lie=True),  # claims loss 0: ranked first, fails its check
                  _claim(miners[1], 99, good), _claim(miners[2], 99, worse)]
        for commit, _ in claims:
            judge.add_submission(99, commit)
        fetched: list[bytes] = []
        fetch = judge.models.fetch

        async def counting(transport: Any, peer: bytes, h: bytes, *, timeout: float) -> Any:
            fetched.append(peer)
            return await fetch(transport, peer, h, timeout=timeout)

        monkeypatch.setattr(judge.models, "fetch", counting)
        with trio.fail_after(10):
            best = await judge.decide(99)
        assert best is not None and best.submitter == miners[1].key.public
        assert fetched == [miners[0].key.public, miners[1].key.public]  # the third claim is never fetched
        assert [s.submitter for s in judge.verified[99]] == [miners[1].key.public]
        assert (99, miners[0].key.public) in judge.cheaters


async def test_weights_carried_in_a_claim_are_kept_only_when_they_hash_to_the_claimed_model(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        judge, miner = nodes["cpp"].app.pol, nodes["consumer-0"]
        judge.expect(7, miners=[miner.key.public])
        w = judge.task.train(judge.task.init, 5, 3)
        commit, h = _claim(miner, 7, w)
        sub = judge.add_submission(7, commit)
        assert miner.app.pol.inline_weights(h, 1 << 20) == weights_bytes(w)
        assert miner.app.pol.inline_weights(h, 8) is None  # too large to carry
        assert not judge.offer_weights(sub, weights_bytes(w + 1.0))  # not the claimed model
        assert not judge.offer_weights(sub, b"\x00" * 5)  # not even a weight vector
        assert judge.models.get(h) is None
        assert judge.offer_weights(sub, weights_bytes(w))
        assert np.array_equal(judge.models.get(h), w)


async def test_votes_go_to_the_aggregator_and_its_certificate_finalizes_every_node(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        assert {n.chain.aggregator for n in nodes.values()} == {nodes["cpp"].key.public}  # the first node
        sent: dict[str, list[str]] = {name: [] for name in nodes}
        for name, node in nodes.items():
            publish = node.chain.publish

            async def recording(mtype: str, body: dict[str, Any], name: str = name, publish: Any = publish) -> None:
                sent[name].append(mtype)
                await publish(mtype, body)

            node.chain.publish = recording
        with trio.fail_after(60):
            summary = await nodes["cpp"].engine.play()
            height = summary["height"]
            for node in nodes.values():
                await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=20)
        assert summary["final"], summary
        assert all(MSG_ATTEST not in mtypes and MSG_CERT not in mtypes for mtypes in sent.values())  # none gossiped
        pushes = nodes["cpp"].chain.finality.pushes  # the certificate went to each peer directly (ADR 0181)
        await wait_until_async(lambda: pushes["pushed"] >= len(nodes) - 1, timeout=10, what="the pushes' answers")
        assert pushes["gossiped"] == 0
        hashes = {n.chain.chain.block(height).hash for n in nodes.values()}
        assert len(hashes) == 1


async def test_a_certificate_push_that_fails_is_made_up_by_gossip_and_a_bad_one_is_refused(
        tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        cpp, deaf = nodes["cpp"], nodes["consumer-2"]
        for body, reason in ((b"\xc1", "malformed"), (b"\x00" * (MAX_CERT + 1), "oversize")):
            with pytest.raises(RemoteRejected) as err:
                await cpp.transport.request(deaf.key.public, PROTO_CERT, body, timeout=5)
            assert err.value.reason == reason

        async def refuse(peer: bytes, request: bytes) -> bytes:
            raise RejectRequest("busy")

        deaf.transport.set_handler(PROTO_CERT, refuse)
        with trio.fail_after(60):
            summary = await cpp.engine.play()
            await deaf.chain.changes.wait_for(lambda: deaf.chain.finalized_height >= summary["height"], timeout=20)
        assert cpp.chain.finality.pushes["gossiped"] >= 1  # the refused push was made up by gossip


async def test_a_direct_vote_that_is_malformed_or_too_far_ahead_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        a, b = nodes["consumer-0"], nodes["consumer-1"]
        for body, reason in ((b"\xc1", "malformed"), (codec.encode({"height": 1}), "malformed"),
                             (codec.encode({"height": 10**6, "hash": os.urandom(32), "sig": os.urandom(96)}),
                              "too-far")):
            with pytest.raises(RemoteRejected) as err:
                await a.transport.request(b.key.public, PROTO_ATTEST, body, timeout=5)
            assert err.value.reason == reason
        ahead = b.chain.chain.height + 2  # a height no vote has reached yet
        bogus = codec.encode({"height": ahead, "hash": os.urandom(32), "sig": os.urandom(96)})
        answer = codec.decode(await a.transport.request(b.key.public, PROTO_ATTEST, bogus, timeout=5))
        assert answer == {"counted": True}  # a registered validator's vote waits for its quorum, unverified
        again = codec.encode({"height": ahead, "hash": os.urandom(32), "sig": os.urandom(96)})
        answer = codec.decode(await a.transport.request(b.key.public, PROTO_ATTEST, again, timeout=5))
        assert answer == {"counted": False}  # its second vote at that height: both checked at once, both fail
        assert b.chain.finality.tracker.rejected == [] and a.key.public in b.chain.finality.tracker._suspects


async def test_votes_are_gossiped_to_every_node_when_the_scenario_says_so(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    scenario.write_text(scenario.read_text() + "\n[chain]\nvotes = \"gossip\"\n")
    async with memory_net(scenario, tmp_path / "net") as nodes:
        assert all(not n.chain.finality.direct(1) for n in nodes.values())
        with trio.fail_after(60):
            summary = await nodes["cpp"].engine.play()
            for node in nodes.values():
                await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= summary["height"],
                                                  timeout=20)
        assert summary["final"] and nodes["cpp"].chain.finality.pushes == {"pushed": 0, "gossiped": 0}
        assert all(n.router.received[MSG_ATTEST] > 0 for n in nodes.values())  # every node heard the votes
