"""Finality at exactly 2/3 of the weight, certificates, equivocation evidence and slashing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bazaar.ledger import bls
from bazaar.ledger.chain import Chain
from bazaar.ledger.errors import InvalidAttestation, InvalidTx
from bazaar.ledger.execute import check_tx
from bazaar.ledger.finality import Certificate, FinalityTracker, make_attestation, verify_certificate
from bazaar.ledger.store import MemoryStore
from bazaar.ledger.txs import decode_tx

from .helpers import NID, Net

HASH = b"\x77" * 32


def vset(net: Net) -> dict[bytes, tuple[bytes, int]]:
    return net.state.validator_set()


def att(net: Net, i: int, block_hash: bytes = HASH, height: int = 1):  # type: ignore[no-untyped-def]
    v = net.validators[i]
    return make_attestation(bls.bls_keygen(v.seed), v.public, NID, height, block_hash)


def test_finality_at_exactly_two_thirds_not_below() -> None:
    net = Net(stakes=[3, 2, 1])  # total 6: {v0, v2} = 4 = 2/3 exactly; {v1, v2} = 3 < 4
    tracker = FinalityTracker(NID)
    assert tracker.add(att(net, 1), vset(net)) is None
    assert tracker.add(att(net, 2), vset(net)) is None  # 3/6
    cert = tracker.add(att(net, 0), vset(net))  # 6/6, first quorum
    assert cert is not None
    tracker2 = FinalityTracker(NID)
    assert tracker2.add(att(net, 2), vset(net)) is None
    cert2 = tracker2.add(att(net, 0), vset(net))  # 4/6 == 2/3
    assert cert2 is not None and list(cert2.signers) == sorted(
        [net.validators[0].public, net.validators[2].public]
    )
    verify_certificate(cert2, vset(net), NID)
    assert Certificate.decode(cert2.encode()) == cert2


def test_tracker_rejects_outsiders_and_bad_signatures_and_records_double_votes() -> None:
    net = Net(stakes=[1, 1, 1])
    tracker = FinalityTracker(NID)
    outsider = make_attestation(bls.bls_keygen(net.keys["alice"].seed), net.acct("alice"), NID, 1, HASH)
    with pytest.raises(InvalidAttestation, match="unknown-validator"):
        tracker.add(outsider, vset(net))
    forged = replace(att(net, 0), block_hash=b"\x01" * 32)  # a signature over another block
    assert tracker.add(forged, vset(net)) is None  # waits, unverified: one vote is no quorum
    assert tracker.add(att(net, 0), vset(net)) is None  # its second vote at height 1: both checked at once
    assert tracker.rejected == [forged] and not tracker.conflicts
    assert tracker.add(att(net, 0, b"\x01" * 32), vset(net)) is None  # a valid double vote: evidence
    assert len(tracker.conflicts) == 1
    with pytest.raises(InvalidAttestation, match="bad-signature"):  # a validator caught once is checked at once
        tracker.add(replace(att(net, 0, height=2), block_hash=b"\x02" * 32), vset(net))


def test_honest_votes_cost_one_aggregate_check_not_one_per_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net(stakes=[1, 1, 1, 1], n_validators=4)
    calls: list[str] = []
    real_verify, real_fav = bls.verify, bls.fast_aggregate_verify
    monkeypatch.setattr(bls, "verify", lambda *a: calls.append("verify") or real_verify(*a))
    monkeypatch.setattr(bls, "fast_aggregate_verify", lambda *a: calls.append("aggregate") or real_fav(*a))
    tracker = FinalityTracker(NID)
    cert = None
    for i in range(4):
        cert = tracker.add(att(net, i), vset(net)) or cert
    assert cert is not None and len(cert.signers) == 3 and calls == ["aggregate"]
    verify_certificate(cert, vset(net), NID)  # the chain's own check of it
    assert calls[-1] == "aggregate" and not tracker.rejected


def test_a_bad_vote_in_a_quorum_is_dropped_and_the_quorum_waits_for_a_good_one() -> None:
    net = Net(stakes=[1, 1, 1, 1], n_validators=4)
    tracker = FinalityTracker(NID)
    bad = replace(att(net, 1), signature=att(net, 2).signature)  # validator 1 sends validator 2's signature
    assert tracker.add(att(net, 0), vset(net)) is None
    assert tracker.add(bad, vset(net)) is None
    assert tracker.add(att(net, 2), vset(net)) is None  # 3 of 4 named, the aggregate fails: 2 of 4 are good
    assert tracker.rejected == [bad]
    cert = tracker.add(att(net, 3), vset(net))
    assert cert is not None and net.validators[1].public not in cert.signers and len(cert.signers) == 3
    verify_certificate(cert, vset(net), NID)


def test_tampered_certificates_are_rejected() -> None:
    net = Net(stakes=[1, 1, 1, 1], n_validators=4)
    tracker = FinalityTracker(NID)
    cert = None
    for i in range(3):
        cert = tracker.add(att(net, i), vset(net)) or cert
    assert cert is not None and len(cert.signers) == 3
    verify_certificate(cert, vset(net), NID)
    missing = net.validators[3].public
    bad = {
        "added signer": replace(cert, signers=tuple(sorted([*cert.signers, missing]))),
        "dropped signer": replace(cert, signers=cert.signers[:2]),
        "unsorted": replace(cert, signers=tuple(reversed(cert.signers))),
        "duplicate": replace(cert, signers=(cert.signers[0], *cert.signers[:2])),
        "other block": replace(cert, block_hash=b"\x01" * 32),
        "other height": replace(cert, height=2),
    }
    for name, forged in bad.items():
        with pytest.raises(InvalidAttestation):
            verify_certificate(forged, vset(net), NID)
        assert name


def test_chain_finalizes_with_a_certificate() -> None:
    net = Net(stakes=[1, 1, 1])
    chain = Chain(MemoryStore(), net.genesis)
    for _ in range(2):
        key, proof = net.proposer_and_proof(chain.state)
        chain.build_and_import(key, [], timestamp_ms=chain.state.timestamp_ms + 1, consensus=proof)
    block = chain.head
    assert block is not None
    tracker = FinalityTracker(NID)
    cert = None
    for i in range(3):
        cert = tracker.add(att(net, i, block.hash, 2), chain.validator_set(2)) or cert
    assert cert is not None and chain.add_certificate(cert) and chain.finalized_height == 2
    assert not chain.add_certificate(cert)
    exported = chain.export()
    assert [b["height"] for b in exported["blocks"]] == [1, 2] and exported["supply"]["minted"] == 200


def test_equivocation_evidence_slashes_and_excludes_the_proposer() -> None:
    net = Net(stakes=[1_000, 1_000, 1_000])
    chain = Chain(MemoryStore(), net.genesis)
    key, proof = net.proposer_and_proof(chain.state)
    base = chain.state
    first, _ = chain.build_and_import(key, [], timestamp_ms=base.timestamp_ms + 1, consensus=proof)
    from bazaar.ledger.apply import build_block

    twin, _, _ = build_block(base, net.genesis, key, [], timestamp_ms=base.timestamp_ms + 2, consensus=proof)
    assert twin.hash != first.hash
    assert chain.import_block(first) is None  # the same block again is a no-op
    evidence = chain.import_block(twin)
    assert evidence is not None and evidence.proposer == key.public and chain.evidence == [evidence]
    tx = evidence.to_tx(net.keys["alice"], NID).wire
    net.state = chain.state
    _block, rejected = net.commit([tx])
    assert not rejected
    state = net.state
    assert state.stake(key.public) == 500 and state.supply.burned == 500 and state.conserved()
    assert state.is_slashed(key.public)
    assert key.public not in state.validator_set() and key.public not in state.proposer_weights()
    with pytest.raises(InvalidTx, match="duplicate-evidence"):
        check_tx(state, decode_tx(evidence.to_tx(net.keys["bob"], NID).wire, NID))
    with pytest.raises(InvalidTx, match="bad-evidence"):
        check_tx(state,
            decode_tx(net.tx("bob", "evidence", a=first.signed_header(), b=first.signed_header()), NID)
        )
    with pytest.raises(InvalidTx, match="slashed"):
        check_tx(state, decode_tx(net.tx(_label(net, key.public), "stake", amount=1), NID))


def _label(net: Net, account: bytes) -> str:
    return next(label for label, k in net.keys.items() if k.public == account)


def test_slashing_reaches_the_unbonding_stake() -> None:
    """A validator that unstakes before its equivocation lands still loses the slash fraction (issue 12)."""
    net = Net(stakes=[1_000, 1_000, 1_000], params={"unbonding_blocks": 10})
    chain = Chain(MemoryStore(), net.genesis)
    key, proof = net.proposer_and_proof(chain.state)
    base = chain.state
    chain.build_and_import(key, [], timestamp_ms=base.timestamp_ms + 1, consensus=proof)
    from bazaar.ledger.apply import build_block

    twin, _, _ = build_block(base, net.genesis, key, [], timestamp_ms=base.timestamp_ms + 2, consensus=proof)
    evidence = chain.import_block(twin)
    assert evidence is not None
    net.state = chain.state
    label = _label(net, key.public)
    net.commit([net.tx(label, "unstake", amount=800)])  # 800 unbonding, 200 staked
    assert net.state.unbonding_of(key.public) == 800 and net.state.stake(key.public) == 200
    _block, rejected = net.commit([evidence.to_tx(net.keys["alice"], NID).wire])
    assert not rejected
    state = net.state
    assert state.stake(key.public) == 100 and state.unbonding_of(key.public) == 400
    assert state.supply.burned == 500 and state.conserved() and state.is_slashed(key.public)
    balance = state.balance(key.public)
    for _ in range(10):
        net.commit([])
    assert net.state.unbonding_of(key.public) == 0 and net.state.balance(key.public) == balance + 400
