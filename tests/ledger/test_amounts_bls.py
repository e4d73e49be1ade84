"""Amounts and the BLS backends (byte equality of pyblst and py-ecc on fixed vectors)."""

from __future__ import annotations

import math

import pytest
from py_ecc.bls import G2ProofOfPossession

from bazaar.ledger import bls
from bazaar.ledger.amounts import UNIT, from_units, to_units


def test_to_units_rounds_half_even_and_rejects_bad_values() -> None:
    assert to_units(1.5) == 1_500_000
    assert to_units(0.0000005) == 0  # exactly half a micro-token rounds to even (0)
    assert to_units(0.0000015) == 2
    assert to_units(3) == 3 * UNIT
    assert from_units(to_units(12.345678)) == pytest.approx(12.345678)
    for bad in (-1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError):
            to_units(bad)  # type: ignore[arg-type]


VECTORS = [bytes([i]) * 32 for i in (1, 7)]


def test_keygen_matches_py_ecc() -> None:
    for ikm in [*VECTORS, b"bazaar" * 6]:
        assert bls.keygen(ikm) == G2ProofOfPossession.KeyGen(ikm)


def test_backends_are_byte_identical() -> None:
    fast, ref = bls.FAST, bls.REFERENCE
    sks = [bls.keygen(v) for v in VECTORS]
    msg = b"bazaar/attest vector"
    pks = [fast.sk_to_pk(sk) for sk in sks]
    assert pks == [ref.sk_to_pk(sk) for sk in sks]
    sigs = [fast.sign(sk, msg) for sk in sks]
    assert sigs == [ref.sign(sk, msg) for sk in sks]
    agg = fast.aggregate(sigs)
    assert agg == ref.aggregate(sigs)
    assert fast.pop_prove(sks[0]) == ref.pop_prove(sks[0])
    # each backend accepts what the other produced, and both reject a wrong message
    assert ref.fast_aggregate_verify(pks, msg, agg)
    assert fast.fast_aggregate_verify(pks, msg, agg)
    assert not fast.fast_aggregate_verify(pks, b"other", agg)
    assert ref.verify(pks[0], msg, sigs[0]) and fast.verify(pks[0], msg, sigs[0])


def test_fast_backend_rejects_malformed_and_wrong_inputs() -> None:
    sk = bls.keygen(VECTORS[0])
    pk = bls.sk_to_pk(sk)
    sig = bls.sign(sk, b"m")
    other_pk = bls.sk_to_pk(bls.keygen(VECTORS[1]))
    assert bls.verify(pk, b"m", sig)
    assert not bls.verify(other_pk, b"m", sig)
    assert not bls.verify(pk, b"m", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not bls.verify(b"\xc0" + bytes(47), b"m", sig)  # the identity is not a valid key
    assert not bls.verify(b"\x00" * 48, b"m", sig)
    assert not bls.fast_aggregate_verify([], b"m", sig)
    assert bls.pop_verify(pk, bls.pop_prove(sk))
    assert not bls.pop_verify(other_pk, bls.pop_prove(sk))
    assert not bls.pop_verify(pk, bls.sign(sk, pk))  # a plain signature of the key is not a PoP (other DST)
    with pytest.raises(ValueError):
        bls.aggregate([])
    with pytest.raises(ValueError):
        bls.sign(0, b"m")


def test_a_successful_verification_is_remembered_and_a_failure_is_not() -> None:
    """ADR 0172: nodes sharing a process verify each attestation once; the key covers keys, message and
    signature, so a changed byte anywhere is verified afresh."""
    from bazaar.ledger import bls as mod

    sk = mod.keygen(b"\x07" * 32)
    pk, msg = mod.sk_to_pk(sk), b"bazaar/attest/v1 cache"
    sig = mod.sign(sk, msg)
    mod._VERIFIED.clear()
    calls: list[int] = []
    real = mod.FAST.verify

    def counted(*a: bytes) -> bool:
        calls.append(1)
        return real(*a)

    mod.FAST.verify = counted  # type: ignore[method-assign]
    try:
        assert mod.verify(pk, msg, sig) and mod.verify(pk, msg, sig) and len(calls) == 1
        assert not mod.verify(pk, msg + b"x", sig) and not mod.verify(pk, msg + b"x", sig) and len(calls) == 3
        other = mod.sk_to_pk(mod.keygen(b"\x08" * 32))
        assert not mod.verify(other, msg, sig)
    finally:
        mod.FAST.verify = real  # type: ignore[method-assign]
    agg = mod.aggregate([sig, mod.sign(mod.keygen(b"\x08" * 32), msg)])
    assert mod.fast_aggregate_verify(iter([pk, other]), msg, agg)  # an iterator is read once
    assert mod.fast_aggregate_verify([pk, other], msg, agg) and not mod.fast_aggregate_verify([other, other], msg, agg)
