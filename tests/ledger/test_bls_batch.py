"""Batch verification of BLS claims (docs/adr/0190): one final exponentiation for many signatures, random
weights so that no two invalid signatures can pass together."""

from __future__ import annotations

import pyblst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.ledger import bls

SKS = [bls.keygen(bytes([i]) * 32) for i in range(1, 7)]
PKS = [bls.sk_to_pk(sk) for sk in SKS]


def _claim(signers: list[int], message: bytes) -> tuple[list[bytes], bytes, bytes]:
    return [PKS[i] for i in signers], message, bls.aggregate([bls.sign(SKS[i], message) for i in signers])


def _shift(sig: bytes, by: bytes, sign: int) -> bytes:
    """``sig ± by`` on the curve (a forger's move that keeps the plain sum of two signatures unchanged)."""
    a, b = pyblst.BlstP2Element.uncompress(sig), pyblst.BlstP2Element.uncompress(by)
    return bytes((a + b if sign > 0 else a + (-b)).compress())


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    bls._VERIFIED.clear()


@pytest.fixture
def pairings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the backend's aggregate checks from here on (a remembered claim makes none)."""
    calls: list[int] = []
    real = bls.FAST.fast_aggregate_verify

    def counted(*a: object) -> bool:
        calls.append(1)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(bls.FAST, "fast_aggregate_verify", counted)
    return calls


def test_a_batch_of_valid_claims_verifies_and_each_is_then_remembered(pairings: list[int]) -> None:
    claims = [_claim([0, 1, 2], b"verdict a"), _claim([3], b"verdict b"), _claim([1, 4], b"verdict c")]
    assert bls.verify_batch(claims)
    assert all(bls.fast_aggregate_verify(*c) for c in claims) and not pairings  # remembered, not recomputed
    assert bls.verify(claims[1][0][0], claims[1][1], claims[1][2])  # a one-key claim counts as a verify too
    assert bls.verify_batch([])


def test_two_signatures_that_trade_a_common_term_are_caught() -> None:
    """Without random weights Σ sig would still verify: sig_a + x and sig_b - x sum to the honest total."""
    (pa, ma, sa), (pb, mb, sb) = _claim([0, 1], b"task a late"), _claim([2, 3], b"task b late")
    x = bls.sign(SKS[5], b"anything")
    forged = [(pa, ma, _shift(sa, x, 1)), (pb, mb, _shift(sb, x, -1))]
    assert bls.aggregate([c[2] for c in forged]) == bls.aggregate([sa, sb])  # the plain sum is unchanged
    assert not bls.verify_batch(forged)
    assert not any(bls.fast_aggregate_verify(*c) for c in forged)  # and nothing was remembered
    assert not bls.verify_batch([(pa, ma, sb), (pb, mb, sa)])  # swapped signatures


def test_malformed_claims_fail_the_batch() -> None:
    good = _claim([0], b"m")
    assert not bls.verify_batch([good, ([], b"m", good[2])])
    assert not bls.verify_batch([good, ([b"\x00" * 48], b"m", good[2])])
    assert not bls.verify_batch([good, (good[0], b"m", good[2][:-1])])
    assert not bls.verify_batch([good, (good[0], "m", good[2])])  # type: ignore[list-item]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sets(st.integers(0, 5), min_size=1, max_size=4), st.booleans()), min_size=1,
                max_size=6))
def test_a_batch_verifies_exactly_when_every_claim_does(spec: list[tuple[set[int], bool]]) -> None:
    bls._VERIFIED.clear()
    claims = []
    for n, (signers, honest) in enumerate(spec):
        keys, message, sig = _claim(sorted(signers), b"claim %d" % n)
        claims.append((keys, message if honest else message + b"!", sig))
    expected = all(bls.FAST.fast_aggregate_verify(*c) for c in claims)
    assert expected == all(honest for _, honest in spec)
    assert bls.verify_batch(claims) == expected


def test_the_reference_backend_checks_a_batch_claim_by_claim() -> None:
    good, other = _claim([0, 1], b"a"), _claim([2], b"b")
    assert bls.REFERENCE.batch_verify([good, other], [3, 5]) and bls.FAST.batch_verify([good, other], [3, 5])
    swapped = [(good[0], good[1], other[2]), (other[0], other[1], good[2])]
    assert not bls.REFERENCE.batch_verify(swapped, [3, 5]) and not bls.FAST.batch_verify(swapped, [3, 5])
    assert not bls.REFERENCE.batch_verify([good], [0]) and not bls.FAST.batch_verify([good], [0])  # weight 0


def test_an_aggregate_of_checked_signatures_is_remembered_as_verified(pairings: list[int]) -> None:
    """docs/adr/0190: the aggregator does not check the sum of signatures it checked one by one."""
    keys, message, agg = _claim([0, 1, 2], b"task late")
    sigs = [bls.sign(SKS[i], message) for i in (0, 1, 2)]
    assert all(bls.verify(k, message, s) for k, s in zip(keys, sigs, strict=True))
    assert bls.aggregate_checked(keys, message, sigs) == agg
    assert bls.fast_aggregate_verify(keys, message, agg) and not pairings
    with pytest.raises(ValueError, match="does not verify"):
        bls.aggregate_checked(keys, message + b"!", sigs)
    with pytest.raises(ValueError, match="one signature per key"):
        bls.aggregate_checked(keys, message, sigs[:2])
