"""``keys.verify`` through libsodium's detached verification equals PyNaCl's ``crypto_sign_open`` (ADR 0169)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from bazaar.protocol import keys
from bazaar.protocol.errors import SignatureError
from bazaar.protocol.keys import KeyPair, verify

SIGNERS = [KeyPair.from_label(f"verify-{i}") for i in range(3)]


def _reference(public: bytes, message: bytes, signature: bytes) -> bool:
    """PyNaCl's ``VerifyKey.verify`` call: the definition ``verify`` must agree with."""
    try:
        crypto_sign_open(signature + message, public)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def _verdict(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        verify(public, message, signature)
    except SignatureError:
        return False
    return True


def test_the_detached_binding_is_loaded() -> None:
    """PyNaCl's bundled libsodium exports it here; without it ``verify`` falls back to crypto_sign_open."""
    assert keys._verify_detached is not None


@st.composite
def _cases(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    signer = draw(st.sampled_from(SIGNERS))
    message = draw(st.binary(max_size=300))
    signature = signer.sign(message)
    public = signer.public
    edit = draw(st.sampled_from(["none", "sig", "msg", "key", "other-key", "random-sig", "random-key", "high-s"]))
    if edit == "sig":
        i = draw(st.integers(0, 63))
        signature = signature[:i] + bytes([signature[i] ^ draw(st.integers(1, 255))]) + signature[i + 1 :]
    elif edit == "msg":
        message = message + draw(st.binary(min_size=1, max_size=3))
    elif edit == "key":
        i = draw(st.integers(0, 31))
        public = public[:i] + bytes([public[i] ^ draw(st.integers(1, 255))]) + public[i + 1 :]
    elif edit == "other-key":
        public = draw(st.sampled_from([s.public for s in SIGNERS if s is not signer]))
    elif edit == "random-sig":
        signature = draw(st.binary(min_size=64, max_size=64))
    elif edit == "random-key":
        public = draw(st.binary(min_size=32, max_size=32))
    elif edit == "high-s":  # S + L: the same point equation, refused as non-canonical by both
        order = 2**252 + 27742317777372353535851937790883648493
        s = int.from_bytes(signature[32:], "little") + order
        signature = signature[:32] + s.to_bytes(32, "little")
    return public, message, signature


@settings(max_examples=400, deadline=None)
@given(_cases())
def test_detached_verify_equals_crypto_sign_open(case: tuple[bytes, bytes, bytes]) -> None:
    public, message, signature = case
    assert _verdict(public, message, signature) == _reference(public, message, signature)


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_other_bytes_likes_take_the_pynacl_path(wrap: type) -> None:
    signer = SIGNERS[0]
    message = b"a message"
    verify(signer.public, wrap(message), signer.sign(message))
    with pytest.raises(SignatureError):
        verify(signer.public, wrap(message + b"!"), signer.sign(message))
    with pytest.raises(SignatureError):
        verify(signer.public, "a message", signer.sign(message))  # type: ignore[arg-type]
