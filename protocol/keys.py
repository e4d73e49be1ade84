"""Ed25519 identities: an agent's 32-byte public key is its ledger account.

Signing and verification use PyNaCl (libsodium), which py-libp2p already depends on; see
docs/adr/0002-ed25519-library.md for the measurement behind that choice. Signatures are byte-identical to
``cryptography``'s and to libp2p's Ed25519 keys, so a node's libp2p identity and its account are one key.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from .errors import SignatureError

PUBKEY_LEN = 32
SIG_LEN = 64
SEED_LEN = 32


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair built from a 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_LEN:
            raise ValueError(f"Ed25519 seed must be {SEED_LEN} bytes, got {len(self.seed)}")
        object.__setattr__(self, "_sk", SigningKey(self.seed))

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair."""
        return cls(os.urandom(SEED_LEN))

    @classmethod
    def from_label(cls, label: str) -> KeyPair:
        """A deterministic key pair for tests and golden vectors (never for real accounts)."""
        return cls(hashlib.sha256(b"bazaar-test-key:" + label.encode()).digest())

    @property
    def public(self) -> bytes:
        """The 32-byte public key (the account)."""
        return bytes(self._sk.verify_key)  # type: ignore[attr-defined]

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``; returns the 64-byte signature."""
        return self._sk.sign(message).signature  # type: ignore[attr-defined,no-any-return]


def verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature.

    Raises:
        SignatureError: wrong key or signature length, or the signature does not verify.
    """
    if len(public) != PUBKEY_LEN or len(signature) != SIG_LEN:
        raise SignatureError("bad key or signature length")
    if not (isinstance(public, bytes) and isinstance(signature, bytes)):  # what VerifyKey(...).verify refuses
        raise SignatureError("key and signature must be bytes")
    if _verify_detached is not None and type(message) is bytes:  # other bytes-likes: crypto_sign_open takes them
        if _verify_detached(signature, message, len(message), public) != 0:
            raise SignatureError("signature does not verify")
        return
    _open_verify(public, message, signature)


def _open_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """:func:`verify` through PyNaCl's ``crypto_sign_open`` (``VerifyKey.verify``'s own call)."""
    try:
        crypto_sign_open(signature + message, public)
    except (BadSignatureError, ValueError, TypeError) as err:
        raise SignatureError("signature does not verify") from err


def _load_verify_detached() -> Callable[[bytes, bytes, int, bytes], int] | None:
    """libsodium's ``crypto_sign_verify_detached`` from the copy PyNaCl loaded, or None where it is not exported.

    ``crypto_sign_open`` (PyNaCl's ``VerifyKey.verify``) is this very function followed by a copy of the
    message into a fresh buffer: PyNaCl allocates that buffer and a length cell per call, and the caller first
    concatenates signature and message. Calling the detached form directly runs the same Ed25519 verification
    (same library, same checks: canonical S, small-order keys refused) without them (docs/adr/0169). It must
    agree with ``crypto_sign_open`` on a known-good and a tampered signature, else the PyNaCl path is kept.
    """
    try:
        import cffi
        from nacl import _sodium

        ffi = cffi.FFI()
        ffi.cdef(
            "int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,"
            " unsigned long long mlen, const unsigned char *pk);"
        )
        fn: Callable[[bytes, bytes, int, bytes], int] = ffi.dlopen(_sodium.__file__).crypto_sign_verify_detached
        key = SigningKey(hashlib.sha256(b"bazaar/keys/self-test").digest())
        public, message = bytes(key.verify_key), b"bazaar/keys/self-test message"
        signature = key.sign(message).signature
        tampered = signature[:-1] + bytes([signature[-1] ^ 1])
        if fn(signature, message, len(message), public) != 0 or fn(tampered, message, len(message), public) == 0:
            return None
    except Exception:  # no cffi, no such symbol, another build of PyNaCl: keep crypto_sign_open
        return None
    return fn


_verify_detached = _load_verify_detached()


def load_or_create_seed(path: Path) -> bytes:
    """Read a 32-byte key seed from ``path``, creating it (mode 0600) on first use.

    Raises:
        ValueError: the file exists but does not hold a 32-byte seed, or is readable by others.
    """
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ValueError(f"key file {path} is readable by group/others (mode {oct(mode)}); chmod 600 it")
        seed = path.read_bytes()
        if len(seed) != SEED_LEN:
            raise ValueError(f"key file {path} holds {len(seed)} bytes, expected {SEED_LEN}")
        return seed
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(SEED_LEN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(seed)
        fh.flush()
        os.fsync(fh.fileno())
    return seed
