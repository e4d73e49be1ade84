"""BLS12-381 signatures, IETF ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` (docs/adr/0005).

Minimal-pubkey-size variant: public keys are compressed G1 points (48 B), signatures compressed G2 points
(96 B). Rogue-key attacks on aggregates are prevented by proof of possession: a validator's first ``tx/stake``
carries ``pop_prove(sk)``, checked once, after which :func:`fast_aggregate_verify` over registered keys is
safe.

Two backends give byte-identical results (tests/ledger/test_bls.py checks it on fixed vectors):

* :data:`FAST` — pyblst (Rust bindings of supranational's blst): hash-to-curve, scalar multiplication and
  pairings are compiled; the BLS scheme itself (≈ 20 lines) is written here on those primitives.
* :data:`REFERENCE` — py-ecc's ``G2ProofOfPossession``, the pure-Python reference (≈ 0.5 s per verify).

The module-level functions use :data:`FAST`. Every verify function returns ``False`` (never raises) on a
malformed key or signature, so peer input cannot crash a caller.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

PUBKEY_LEN = 48
SIG_LEN = 96
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
DST_SIG = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
DST_POP = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
_G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)
_G1_INFINITY = b"\xc0" + b"\x00" * 47
PK_POINTS_KEPT = 4096
"""Decoded public keys the fast backend keeps (the cache is emptied when full)."""
_G2_INFINITY = b"\xc0" + b"\x00" * 95


def keygen(ikm: bytes, key_info: bytes = b"") -> int:
    """IETF ``KeyGen`` (draft-irtf-cfrg-bls-signature-05 §2.3): HKDF-SHA256 to a scalar in [1, r).

    Args:
        ikm: at least 32 bytes of secret input keying material.
        key_info: optional context.

    Raises:
        ValueError: ``ikm`` shorter than 32 bytes.
    """
    if len(ikm) < 32:
        raise ValueError("BLS key material must be at least 32 bytes")
    salt = b"BLS-SIG-KEYGEN-SALT-"
    sk = 0
    length = 48  # ceil(1.5 * ceil(log2(r)) / 8)
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, ikm + b"\x00", hashlib.sha256).digest()
        info = key_info + length.to_bytes(2, "big")
        okm, block = b"", b""
        counter = 1
        while len(okm) < length:
            block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
            okm += block
            counter += 1
        sk = int.from_bytes(okm[:length], "big") % CURVE_ORDER
    return sk


def bls_keygen(ed25519_seed: bytes) -> int:
    """A validator's BLS secret derived from its Ed25519 seed: ``KeyGen(sha256(b"bazaar-bls" + seed))``."""
    return keygen(hashlib.sha256(b"bazaar-bls" + ed25519_seed).digest())


class Backend(Protocol):
    """The operations both backends implement (same bytes in, same bytes out)."""

    name: str

    def sk_to_pk(self, sk: int) -> bytes:
        """The 48-byte compressed public key of secret ``sk``."""
        ...

    def sign(self, sk: int, message: bytes) -> bytes:
        """A 96-byte signature of ``message``."""
        ...

    def verify(self, pk: bytes, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``pk``'s signature of ``message``."""
        ...

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        """The aggregate (sum) of one or more signatures."""
        ...

    def fast_aggregate_verify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` aggregates signatures of ``message`` by every key in ``pks``."""
        ...

    def batch_verify(self, claims: Sequence[tuple[Sequence[bytes], bytes, bytes]], scalars: Sequence[int]) -> bool:
        """Whether every claim ``(pks, message, signature)`` holds as :meth:`fast_aggregate_verify` says, checked
        together with the claims weighted by ``scalars`` (one nonzero integer per claim)."""
        ...

    def pop_prove(self, sk: int) -> bytes:
        """Proof of possession of ``sk``."""
        ...

    def pop_verify(self, pk: bytes, proof: bytes) -> bool:
        """Whether ``proof`` proves possession of ``pk``'s secret."""
        ...


def _check_sk(sk: int) -> None:
    if isinstance(sk, bool) or not isinstance(sk, int) or not 0 < sk < CURVE_ORDER:
        raise ValueError("BLS secret must be an int in [1, r)")


class BlstBackend:
    """The compiled fast path on pyblst's group primitives."""

    name = "pyblst"

    def __init__(self) -> None:
        import pyblst

        self._p1 = pyblst.BlstP1Element
        self._p2 = pyblst.BlstP2Element
        self._miller = pyblst.miller_loop
        self._final = pyblst.final_verify
        self._g1 = self._p1.uncompress(_G1_GENERATOR)
        self._neg_g1 = -self._g1
        self._points: dict[bytes, Any] = {}
        """Public keys already decoded and subgroup-checked (a validator set's keys are read at every vote,
        certificate and quorum record; ≈ 60 µs each to decode)."""

    def sk_to_pk(self, sk: int) -> bytes:
        _check_sk(sk)
        return bytes(self._g1.scalar_mul(sk).compress())

    def _core_sign(self, sk: int, message: bytes, dst: bytes) -> bytes:
        _check_sk(sk)
        return bytes(self._p2.hash_to_group(message, dst).scalar_mul(sk).compress())

    def sign(self, sk: int, message: bytes) -> bytes:
        return self._core_sign(sk, message, DST_SIG)

    def _pk_point(self, pk: bytes):  # type: ignore[no-untyped-def]
        if not isinstance(pk, bytes) or len(pk) != PUBKEY_LEN or pk == _G1_INFINITY:
            return None
        point = self._points.get(pk)
        if point is None:
            try:
                point = self._p1.uncompress(pk)  # blst checks the encoding, the curve and the subgroup
            except ValueError:
                return None
            if len(self._points) >= PK_POINTS_KEPT:
                self._points.clear()
            self._points[pk] = point  # immutable: sums and products make new points
        return point

    def _sig_point(self, sig: bytes):  # type: ignore[no-untyped-def]
        if not isinstance(sig, bytes) or len(sig) != SIG_LEN:
            return None
        try:
            return self._p2.uncompress(sig)
        except ValueError:
            return None

    def _core_verify(self, pk_point, message: bytes, signature: bytes, dst: bytes) -> bool:  # type: ignore[no-untyped-def]
        sig = self._sig_point(signature)
        if pk_point is None or sig is None:
            return False
        # e(pk, H(m)) == e(g1, sig)
        lhs = self._miller(pk_point, self._p2.hash_to_group(message, dst))
        rhs = self._miller(self._g1, sig)
        return bool(self._final(lhs, rhs))

    def verify(self, pk: bytes, message: bytes, signature: bytes) -> bool:
        return self._core_verify(self._pk_point(pk), message, signature, DST_SIG)

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise ValueError("cannot aggregate zero signatures")
        total = self._p2()
        for sig in signatures:
            point = self._sig_point(sig)
            if point is None:
                raise ValueError("malformed signature in aggregate")
            total = total + point
        return bytes(total.compress())

    def _key_sum(self, pks: Sequence[bytes]):  # type: ignore[no-untyped-def]
        """The sum of ``pks``' points; None when there is none or one is malformed."""
        if not pks:
            return None
        total = self._p1()
        for pk in pks:
            point = self._pk_point(pk)
            if point is None:
                return None
            total = total + point
        return total

    def fast_aggregate_verify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        total = self._key_sum(pks)
        return total is not None and self._core_verify(total, message, signature, DST_SIG)

    def batch_verify(self, claims: Sequence[tuple[Sequence[bytes], bytes, bytes]], scalars: Sequence[int]) -> bool:
        # Π e(r_i·apk_i, H(m_i)) == e(g1, Σ r_i·sig_i): n + 1 Miller loops and one final exponentiation
        if not claims or len(claims) != len(scalars):
            return False
        lhs = None
        total = self._p2()
        for (pks, message, signature), r in zip(claims, scalars, strict=True):
            apk, sig = self._key_sum(pks), self._sig_point(signature)
            if apk is None or sig is None or not 0 < r < CURVE_ORDER:
                return False
            term = self._miller(apk.scalar_mul(r), self._p2.hash_to_group(message, DST_SIG))
            lhs = term if lhs is None else lhs * term
            total = total + sig.scalar_mul(r)
        return bool(self._final(lhs, self._miller(self._g1, total)))

    def pop_prove(self, sk: int) -> bytes:
        return self._core_sign(sk, self.sk_to_pk(sk), DST_POP)

    def pop_verify(self, pk: bytes, proof: bytes) -> bool:
        return self._core_verify(self._pk_point(pk), pk, proof, DST_POP)


class PyEccBackend:
    """py-ecc's ``G2ProofOfPossession``: the slow, obviously-correct reference."""

    name = "py-ecc"

    def __init__(self) -> None:
        self._loaded: Any = None

    @property
    def _scheme(self) -> Any:
        """py-ecc's scheme, imported on first use: the import alone costs ≈ 0.9 s of CPU and ≈ 25 MB (pydantic,
        eth-utils), which a node (it signs and verifies with :data:`FAST`) never pays (docs/adr/0121)."""
        if self._loaded is None:
            from py_ecc.bls import G2ProofOfPossession

            self._loaded = G2ProofOfPossession
        return self._loaded

    def sk_to_pk(self, sk: int) -> bytes:
        _check_sk(sk)
        return bytes(self._scheme.SkToPk(sk))

    def sign(self, sk: int, message: bytes) -> bytes:
        _check_sk(sk)
        return bytes(self._scheme.Sign(sk, message))

    def verify(self, pk: bytes, message: bytes, signature: bytes) -> bool:
        try:
            return bool(self._scheme.Verify(pk, message, signature))
        except Exception:  # py-ecc raises assorted types on malformed points; a bad input is "no"
            return False

    def aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise ValueError("cannot aggregate zero signatures")
        try:
            return bytes(self._scheme.Aggregate(list(signatures)))
        except Exception as err:  # same as above: normalise to ValueError
            raise ValueError(f"malformed signature in aggregate: {err}") from err

    def fast_aggregate_verify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        try:
            return bool(self._scheme.FastAggregateVerify(list(pks), message, signature))
        except Exception:
            return False

    def batch_verify(self, claims: Sequence[tuple[Sequence[bytes], bytes, bytes]], scalars: Sequence[int]) -> bool:
        return bool(claims) and len(claims) == len(scalars) and all(0 < r < CURVE_ORDER for r in scalars) \
            and all(self.fast_aggregate_verify(pks, m, s) for pks, m, s in claims)

    def pop_prove(self, sk: int) -> bytes:
        _check_sk(sk)
        return bytes(self._scheme.PopProve(sk))

    def pop_verify(self, pk: bytes, proof: bytes) -> bool:
        try:
            return bool(self._scheme.PopVerify(pk, proof))
        except Exception:
            return False


FAST: Backend = BlstBackend()
"""The default backend (pyblst)."""

REFERENCE: Backend = PyEccBackend()
"""The reference backend (py-ecc)."""


def sk_to_pk(sk: int) -> bytes:
    """The 48-byte public key of ``sk`` (fast backend)."""
    return FAST.sk_to_pk(sk)


def sign(sk: int, message: bytes) -> bytes:
    """Sign ``message`` with ``sk``; returns 96 bytes (fast backend)."""
    return FAST.sign(sk, message)


def verify(pk: bytes, message: bytes, signature: bytes) -> bool:
    """Verify one signature; ``False`` on any malformed input (fast backend). A verification that succeeded is
    remembered by the process (:data:`VERIFIED_CACHE`, docs/adr/0172) and not repeated."""
    return _once(b"v", [pk], message, signature, lambda: FAST.verify(pk, message, signature))


def aggregate(signatures: Sequence[bytes]) -> bytes:
    """Aggregate signatures into one (fast backend).

    Raises:
        ValueError: empty list or a malformed signature.
    """
    return FAST.aggregate(signatures)


def fast_aggregate_verify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
    """Verify an aggregate of signatures of one message by ``pks`` (keys must have passed PoP); a success is
    remembered by the process like :func:`verify`'s."""
    keys = list(pks)
    return _once(b"a", keys, message, signature, lambda: FAST.fast_aggregate_verify(keys, message, signature))


def aggregate_checked(pks: Sequence[bytes], message: bytes, signatures: Sequence[bytes]) -> bytes:
    """The aggregate of ``signatures``, each ``pks[i]``'s signature of ``message``, remembered as verified for those
    keys (a sum of valid signatures of one message is a valid aggregate for the keys together), so the aggregator
    that builds a quorum from attestations it checked on receipt does not check the sum again (docs/adr/0190).
    A signature not remembered as verified is checked here first.

    Raises:
        ValueError: no signatures, a count that differs from the keys', or a signature that does not verify.
    """
    keys, sigs = list(pks), list(signatures)
    if not sigs or len(keys) != len(sigs):
        raise ValueError("one signature per key, at least one")
    if not all(verify(pk, message, sig) for pk, sig in zip(keys, sigs, strict=True)):
        raise ValueError("a signature in the aggregate does not verify")
    total = aggregate(sigs)
    if all(type(pk) is bytes for pk in keys) and type(message) is bytes:
        _remember(_cache_key(b"a", keys, message, total))
    return total


def verify_batch(claims: Iterable[tuple[Sequence[bytes], bytes, bytes]]) -> bool:
    """Whether every claim ``(pks, message, signature)`` holds as :func:`fast_aggregate_verify` would say (a claim
    with one key: as :func:`verify`), checked together (docs/adr/0190): Π e(r_i·apk_i, H(m_i)) = e(g1, Σ r_i·sig_i)
    with fresh random 64-bit weights r_i — n + 1 Miller loops and one final exponentiation instead of 2n and n.
    Without the weights two invalid signatures could trade a common term and pass together; with them a set that
    holds an invalid claim passes with probability at most 2^-64. Claims already remembered are skipped; on success
    every claim is remembered, so each one's own check later costs nothing. A failure remembers nothing and does
    not say which claim failed (check them one by one for that)."""
    fresh: list[tuple[list[bytes], bytes, bytes, bytes]] = []
    for pks, message, signature in claims:
        keys = list(pks)
        if not (keys and all(type(pk) is bytes for pk in keys) and type(message) is bytes
                and type(signature) is bytes):
            return False
        key = _cache_key(b"a", keys, message, signature)
        if not (_remembered(key) or (len(keys) == 1 and _remembered(_cache_key(b"v", keys, message, signature)))):
            fresh.append((keys, message, signature, key))
    if not fresh:
        return True
    if len(fresh) == 1:
        keys, message, signature, _ = fresh[0]
        return fast_aggregate_verify(keys, message, signature)
    if not FAST.batch_verify([f[:3] for f in fresh], [secrets.randbits(64) | 1 for _ in fresh]):
        return False
    for keys, message, signature, key in fresh:
        _remember(key)
        if len(keys) == 1:
            _remember(_cache_key(b"v", keys, message, signature))
    return True


def _once(kind: bytes, pks: list[bytes], message: bytes, signature: bytes, check: Callable[[], bool]) -> bool:
    """``check()`` unless these exact (kind, keys, message, signature) passed it before in this process; a success
    is remembered. Odd inputs (not bytes) get the backend's answer and are not remembered."""
    if not (all(type(pk) is bytes for pk in pks) and type(message) is bytes and type(signature) is bytes):
        return check()
    key = _cache_key(kind, pks, message, signature)
    if _remembered(key):
        return True
    ok = check()
    if ok:
        _remember(key)
    return ok


VERIFIED_CACHE = 8192
"""Successful BLS verifications a process remembers (32-byte keys). Every node that shares a process (``bazaar
sim``, the in-memory tests) verifies each attestation, certificate and RANDAO reveal of a block; the first pays
the pairings, the others find the result here (the Ed25519 counterpart: ledger/txs.py, ADR 0125)."""
_VERIFIED: OrderedDict[bytes, None] = OrderedDict()


def _cache_key(kind: bytes, pks: Sequence[bytes], message: bytes, signature: bytes) -> bytes:
    """SHA-256 over length-prefixed parts: no two different (keys, message, signature) inputs share a key."""
    h = hashlib.sha256(kind + len(pks).to_bytes(4, "big"))
    for part in (*pks, message, signature):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


def _remembered(key: bytes) -> bool:
    if key in _VERIFIED:
        _VERIFIED.move_to_end(key)
        return True
    return False


def _remember(key: bytes) -> None:
    _VERIFIED[key] = None
    if len(_VERIFIED) > VERIFIED_CACHE:
        _VERIFIED.popitem(last=False)


def pop_prove(sk: int) -> bytes:
    """Proof of possession of ``sk`` (fast backend)."""
    return FAST.pop_prove(sk)


def pop_verify(pk: bytes, proof: bytes) -> bool:
    """Check a proof of possession (fast backend)."""
    return FAST.pop_verify(pk, proof)
