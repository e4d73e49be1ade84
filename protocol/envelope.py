"""The signed envelope every message and transaction travels in (docs/protocol.md).

Wire form (canonical msgpack)::

    {"k": sender public key (32 B), "p": payload (bin), "s": Ed25519 signature (64 B)}

``payload`` is itself canonical msgpack of ``{v, type, market, round, sender, seq, ts, body}``. The signature
covers ``DOMAIN || network_id || 0x00 || payload``: a signature for one network or protocol version can never
be replayed on another. Receivers verify the signature over the *received* payload bytes first, decode
second, and never re-encode to verify (STYLE §3).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

from . import codec
from .errors import DecodeError, ProtocolError, SchemaError
from .keys import PUBKEY_LEN, SIG_LEN, KeyPair, verify

VERSION = 1
DOMAIN = b"bazaar/envelope/v1\x00"
MAX_TYPE_LEN = 64
MAX_MARKET_LEN = 64
MAX_NETWORK_ID = 64


def sign_bytes(network_id: str, payload: bytes) -> bytes:
    """The exact bytes an envelope signature covers."""
    nid = network_id.encode()
    if not 0 < len(nid) <= MAX_NETWORK_ID or b"\x00" in nid:
        raise ValueError(f"bad network id {network_id!r}")
    return DOMAIN + nid + b"\x00" + payload


TIME_SOURCE: ContextVar[Callable[[], int] | None] = ContextVar("bazaar_time_source", default=None)
"""Unset everywhere but in the simulator (``bazaar sim``, docs/sim.md), which sets it for its trio run to its
virtual clock, so envelope timestamps and every deadline computed from :func:`now_ms` follow that clock."""


def now_ms() -> int:
    """Wall-clock milliseconds (envelope timestamps); a simulation's virtual milliseconds under ``TIME_SOURCE``."""
    source = TIME_SOURCE.get()
    return time.time_ns() // 1_000_000 if source is None else source()


class Envelope(NamedTuple):
    """A verified (or freshly signed) message; immutable.

    A named tuple rather than a frozen dataclass: receivers build one per message, and a tuple is built in
    one C call where a frozen dataclass sets each of its ten fields through ``object.__setattr__``
    (docs/adr/0161). Compare envelopes with envelopes only (a tuple of the same fields compares equal).

    Attributes:
        type: message type, e.g. ``"ai-bazaar/price"`` or ``"tx/transfer"``.
        market: market name, or ``""`` for market-independent messages (blocks, sync).
        round: market round the message belongs to (0 when not round-bound).
        sender: the signer's 32-byte public key (its account).
        seq: the sender's sequence number for replay protection.
        ts: sender's wall clock in milliseconds.
        body: the type-specific content (a map).
        payload: the signed canonical bytes.
        signature: 64-byte Ed25519 signature over :func:`sign_bytes`.
    """

    type: str
    market: str
    round: int
    sender: bytes
    seq: int
    ts: int
    body: dict[str, Any]
    payload: bytes
    signature: bytes
    v: int = VERSION

    def __repr__(self) -> str:
        return (
            f"Envelope(type={self.type!r}, market={self.market!r}, round={self.round!r}, sender={self.sender!r}, "
            f"seq={self.seq!r}, ts={self.ts!r}, body={self.body!r}, v={self.v!r})"
        )

    @property
    def wire(self) -> bytes:
        """The bytes to send."""
        return codec.encode({"k": self.sender, "p": self.payload, "s": self.signature})

    @property
    def digest(self) -> bytes:
        """SHA-256 of the payload: the message / transaction id."""
        return hashlib.sha256(self.payload).digest()


def seal(
    key: KeyPair,
    network_id: str,
    type: str,
    body: dict[str, Any],
    *,
    seq: int,
    market: str = "",
    round: int = 0,
    ts: int | None = None,
) -> Envelope:
    """Build and sign an envelope.

    Raises:
        TypeError: ``body`` has no canonical msgpack form.
        ValueError: a header field is out of range.
    """
    if not 0 < len(type) <= MAX_TYPE_LEN or len(market) > MAX_MARKET_LEN:
        raise ValueError("type/market length out of range")
    if seq < 0 or round < 0:
        raise ValueError("seq and round must be non-negative")
    ts = now_ms() if ts is None else ts
    header = {
        "v": VERSION,
        "type": type,
        "market": market,
        "round": round,
        "sender": key.public,
        "seq": seq,
        "ts": ts,
        "body": body,
    }
    payload = codec.encode(header)
    signature = key.sign(sign_bytes(network_id, payload))
    return Envelope(type, market, round, key.public, seq, ts, body, payload, signature)


def _field(header: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in header:
        raise SchemaError(f"envelope lacks {name!r}")
    value = header[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SchemaError(f"envelope field {name!r} has type {type(value).__name__}")
    return value


def open_envelope(data: bytes, network_id: str, *, max_size: int = codec.MAX_MESSAGE) -> Envelope:
    """Verify and decode an envelope received from a peer.

    Order: bound the size, decode the outer map, verify the signature over the raw payload, then decode
    and check the header. The body is *not* schema-checked here; see ``protocol.messages.validate_basic``.

    Raises:
        OversizeError, DecodeError, SignatureError, SchemaError: the message must be dropped.
    """
    return _open(data, network_id, max_size, check_signature=True)


def reopen_envelope(data: bytes, network_id: str, *, max_size: int = codec.MAX_MESSAGE) -> Envelope:
    """Decode an envelope whose exact bytes were signature-verified before, skipping only the signature check.

    For callers that keep proof of the earlier verification keyed by a collision-resistant hash of the same
    bytes and network (ledger/txs.py's verified-transaction cache); every other check runs as in
    :func:`open_envelope`.

    Raises:
        OversizeError, DecodeError, SchemaError: as :func:`open_envelope`.
    """
    return _open(data, network_id, max_size, check_signature=False)


def open_envelopes(
    items: Sequence[bytes],
    network_id: str,
    *,
    max_size: int = codec.MAX_MESSAGE,
    verified: Sequence[bool] | None = None,
) -> list[Envelope | ProtocolError]:
    """:func:`open_envelope` for many items at once (a block's transactions): for each item its envelope, or the
    error ``open_envelope`` would have raised, in order.

    Every check of :func:`open_envelope` runs for every item and in the same order per item (outer map,
    signature over the raw payload, then the payload); only the passes are grouped: all outer maps, then all
    signature verifications back to back, then all payloads. Interleaving an Ed25519 verification with the
    Python decoding of each item costs noticeably more per item (docs/adr/0161). ``verified[i]`` true marks an
    item whose exact bytes were verified before (as :func:`reopen_envelope`): its signature check is skipped.
    """
    opened: list[Envelope | ProtocolError] = []
    parts: list[tuple[bytes, bytes, bytes] | None] = []
    for data in items:
        try:
            parts.append(_outer(data, max_size))
        except ProtocolError as err:
            parts.append(None)
            opened.append(err)
        else:
            opened.append(_PENDING)
    prefix = _signed(network_id, b"")
    skip = [False] * len(parts) if verified is None else verified
    for i, part in enumerate(parts):
        if part is not None and not skip[i]:
            sender, payload, signature = part
            try:
                verify(sender, prefix + payload, signature)
            except ProtocolError as err:
                parts[i] = None
                opened[i] = err
    live = [part for part in parts if part is not None]
    headers = codec.decode_repacked_many([part[1] for part in live], max_size=max_size)
    if len(live) == len(parts):  # no item failed before its payload (the common case)
        return _payloads(live, headers, max_size)
    payloads = iter(_payloads(live, headers, max_size))
    for i, part in enumerate(parts):
        if part is not None:
            opened[i] = next(payloads)
    return opened


def _open(data: bytes, network_id: str, max_size: int, *, check_signature: bool) -> Envelope:
    sender, payload, signature = _outer(data, max_size)
    if check_signature:
        verify(sender, _signed(network_id, payload), signature)
    return _payload(sender, payload, signature, max_size)


def _outer(data: bytes, max_size: int) -> tuple[bytes, bytes, bytes]:
    """The outer map's key, payload and signature, checked for type and length."""
    if type(data) is bytes and len(data) <= max_size:
        sliced = _sliced(data)
        if sliced is not None:
            return sliced
    return _outer_decoded(data, max_size)


def _outer_decoded(data: bytes, max_size: int) -> tuple[bytes, bytes, bytes]:
    """:func:`_outer` through the msgpack decoder: any layout, every error named."""
    outer = codec.decode(data, max_size=max_size)
    if not isinstance(outer, dict) or outer.keys() != _OUTER_KEYS:
        raise DecodeError("envelope must be a map with keys k, p, s")
    sender, payload, signature = outer["k"], outer["p"], outer["s"]
    if not (type(sender) is bytes and type(payload) is bytes and type(signature) is bytes):
        raise DecodeError("envelope k, p, s must be bin")
    if len(sender) != PUBKEY_LEN or len(signature) != SIG_LEN:
        raise DecodeError("bad key or signature length")
    return sender, payload, signature


def _sliced(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """Key, payload and signature of ``data`` read by position when ``data`` is laid out as :attr:`Envelope.wire`
    writes it: ``{"k": bin 32, "p": bin, "s": bin 64}``, the three keys as fixstr in that order, nothing after
    the signature. Bytes with exactly that layout decode to exactly those three values, so this equals the
    general path's result; any other layout returns None and takes the general path (docs/adr/0161)."""
    if len(data) < _OUTER_MIN or not data.startswith(_OUTER_HEAD) or not data.startswith(b"\xa1p", 37):
        return None
    marker = data[39]
    if marker == 0xC4:
        start = 41
        end = start + data[40]
    elif marker == 0xC5:
        start = 42
        end = start + int.from_bytes(data[40:42], "big")
    elif marker == 0xC6:
        start = 44
        end = start + int.from_bytes(data[40:44], "big")
    else:
        return None
    if len(data) != end + 4 + SIG_LEN or not data.startswith(_OUTER_SIG_HEAD, end):
        return None
    return data[5:37], data[start:end], data[end + 4 :]


_OUTER_HEAD = b"\x83\xa1k\xc4\x20"
"""fixmap of 3, fixstr "k", bin8 of 32 bytes: how every sealed envelope starts."""
_OUTER_SIG_HEAD = b"\xa1s\xc4\x40"
"""fixstr "s", bin8 of 64 bytes: what follows the payload."""
_OUTER_MIN = len(_OUTER_HEAD) + PUBKEY_LEN + 2 + 2 + len(_OUTER_SIG_HEAD) + SIG_LEN
"""The shortest such layout (an empty payload)."""


def _payload(sender: bytes, payload: bytes, signature: bytes, max_size: int) -> Envelope:
    """The envelope of a signature-checked payload: canonical decoding and the header checks.

    The common case is decided by :func:`_plain_envelope`, without an ``object_hook``; anything else, valid or
    not, goes through :func:`_payload_checked`, which names the exact error.
    """
    try:
        header = codec.decode_repacked(payload, max_size=max_size)
    except ProtocolError:
        return _payload_checked(sender, payload, signature, max_size)
    env = _plain_envelope(header, sender, payload, signature)
    return _payload_checked(sender, payload, signature, max_size) if env is None else env


def _payloads(
    parts: Sequence[tuple[bytes, bytes, bytes]], headers: Sequence[Any], max_size: int
) -> list[Envelope | ProtocolError]:
    """:func:`_payload` of each signature-checked ``(sender, payload, signature)``: its envelope or the error it
    raises. ``headers[i]`` is ``codec.decode_repacked(payload)``, or ``codec.NOT_DECODED`` where that is not
    known (:func:`open_envelopes` decodes a block's payloads together, ``codec.decode_repacked_many``)."""
    out: list[Envelope | ProtocolError] = []
    append, plain = out.append, _plain_envelope
    for (sender, payload, signature), header in zip(parts, headers, strict=True):
        env = plain(header, sender, payload, signature)
        if env is not None:
            append(env)
            continue
        try:
            append(_payload_checked(sender, payload, signature, max_size))
        except ProtocolError as err:
            append(err)
    return out


def _plain_envelope(header: Any, sender: bytes, payload: bytes, signature: bytes) -> Envelope | None:
    """The envelope of ``payload`` when its decoded ``header`` (``codec.decode_repacked``: it re-packs to the
    payload) is the common case, else None.

    The common case: exactly the eight keys in canonical order, values of the exact types and in range, and
    the body's maps sorted. That is the envelope :func:`_payload_checked` would return (every map in it is
    sorted: the header's other values are scalars).
    """
    if type(header) is dict and tuple(header) == HEADER_WIRE_ORDER:
        v, ts, seq, body, mtype, rnd, market, signer = header.values()
        if (
            type(v) is int
            and type(ts) is int
            and type(seq) is int
            and type(body) is dict
            and type(mtype) is str
            and type(rnd) is int
            and type(market) is str
            and type(signer) is bytes
            and v == VERSION
            and 0 < len(mtype) <= MAX_TYPE_LEN
            and len(market) <= MAX_MARKET_LEN
            and rnd >= 0
            and seq >= 0
            and ts >= 0
            and signer == sender
            and codec.maps_sorted(body)
        ):
            return _new_envelope(Envelope, (mtype, market, rnd, sender, seq, ts, body, payload, signature, v))
    return None


def _payload_checked(sender: bytes, payload: bytes, signature: bytes, max_size: int) -> Envelope:
    """:func:`_payload` for any payload, one check after the other."""
    header = codec.decode_canonical(payload, max_size=max_size)
    if not isinstance(header, dict):
        raise DecodeError("payload must be a map")
    if header.keys() != _HEADER_KEYS:
        extra = set(header) - _HEADER_KEYS
        if extra:
            raise SchemaError(f"unknown envelope fields {sorted(extra)}")
        for name in HEADER_FIELDS:
            _field(header, name, object)  # names the first missing field
    # decode_canonical left the keys in canonical order and they are exactly the header's: unpack in that order
    v, ts, seq, body, mtype, rnd, market, signer = header.values()
    if not (
        type(v) is int
        and type(mtype) is str
        and type(market) is str
        and type(rnd) is int
        and type(seq) is int
        and type(ts) is int
        and type(body) is dict
        and type(signer) is bytes
    ):
        for name, kind in zip(HEADER_FIELDS, _HEADER_KINDS, strict=True):
            _field(header, name, kind)  # names the first field of the wrong type
    if v != VERSION:
        raise SchemaError(f"unsupported version {v}")
    if not 0 < len(mtype) <= MAX_TYPE_LEN or len(market) > MAX_MARKET_LEN:
        raise SchemaError("type/market length out of range")
    if rnd < 0 or seq < 0 or ts < 0:
        raise SchemaError("round, seq and ts must be non-negative")
    if signer != sender:
        raise SchemaError("payload sender differs from the signing key")
    return _new_envelope(Envelope, (mtype, market, rnd, sender, seq, ts, body, payload, signature, v))


def _signed(network_id: str, payload: bytes) -> bytes:
    """:func:`sign_bytes` with the checked prefix of each network id kept (a node uses one or two)."""
    prefix = _SIGN_PREFIXES.get(network_id)
    if prefix is None:
        prefix = sign_bytes(network_id, b"")
        if len(_SIGN_PREFIXES) < 64:
            _SIGN_PREFIXES[network_id] = prefix
    return prefix + payload


_SIGN_PREFIXES: dict[str, bytes] = {}
_PENDING: Any = None
"""Placeholder in :func:`open_envelopes`' result until an item's payload is opened."""
_new_envelope = tuple.__new__
"""Builds an :class:`Envelope` from a tuple of all ten fields in one C call (what ``Envelope._make`` does)."""


HEADER_FIELDS = ("v", "type", "market", "round", "sender", "seq", "ts", "body")
"""The signed payload's keys, all required."""
_HEADER_KINDS: tuple[type, ...] = (int, str, str, int, bytes, int, int, dict)
_HEADER_KEYS = frozenset(HEADER_FIELDS)
HEADER_WIRE_ORDER = ("v", "ts", "seq", "body", "type", "round", "market", "sender")
"""The header's keys in canonical (encoded-byte) order, the order ``_payload`` unpacks ``header.values()`` in."""
_OUTER_KEYS = frozenset({"k", "p", "s"})
