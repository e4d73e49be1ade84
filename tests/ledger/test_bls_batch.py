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


def test_a_batch_of_valid_claims_verifies_and_each_is_then_remembered() -> None:
    claims = [_claim([0, 1, 2], b"verdict a"), _claim([3], b"verdict b"), _claim([1, 4], b"verdict c")]
    assert bls.verify_batch(claims)
    calls: list[int] = []
    real = bls.FAST.fast_aggregate_verify

    def counted(*a: object) -> bool:
        calls.append(1)
        return real(*a)  # type: ignore[arg-type]

    bls.FAST.fast_aggregate_verify = counted  # type: ignore[method-assign]
    try:
        assert all(bls.fast_aggregate_verify(*c) for c in claims) and not calls  # remembered, not recomputed
        assert bls.verify(claims[1][0][0], claims[1][1], claims[1][2])  # a one-key claim counts as a verify too
    finally:
        bls.FAST.fast_aggregate_verify = real  # type: ignore[method-assign]
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
    assert bls.REFERENCE.batch_verify(claims, [1] * len(claims)) == expected
