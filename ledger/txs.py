"""Transaction types: signed envelopes of type ``tx/<kind>`` (docs/ledger.md §Transactions).

A transaction is an ordinary :class:`~bazaar.protocol.envelope.Envelope`; its signer is the acting account and
its ``seq`` equals the body's ``nonce``. This module holds the stateless half of validation (the body schemas,
registered in the protocol registry so ``validate_basic`` knows them); the stateful half (nonce, balance,
authorisation) is :func:`.execute.check_tx` / :func:`.execute.apply_tx`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from bazaar.protocol import codec
from bazaar.protocol.envelope import Envelope, open_envelope, open_envelopes, reopen_envelope, seal
from bazaar.protocol.errors import OversizeError, ProtocolError, ProtocolReason, SchemaError
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.messages import register
from bazaar.protocol.schema import Bytes, Field, Int, Map, Num, Optional, Schema, Str

from .amounts import MAX_AMOUNT

MAX_SPLIT = 256
"""Most payees of one ``escrow_split``."""

MAX_TX = 256 << 10
"""Cap on one transaction's wire size (256 KiB)."""

MAX_RECORD_DATA = 64 << 10
"""Cap on the canonical encoding of a ``tx/record`` body's ``data`` (64 KiB)."""

MAX_HEADER_BYTES = 128 << 10
"""Cap on one signed header inside ``tx/evidence``."""


@dataclass(frozen=True)
class RecordData(Field):
    """A ``tx/record`` payload: a map with string keys and any msgpack values, ≤ 64 KiB encoded."""

    max_bytes: int = MAX_RECORD_DATA

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, dict):
            raise SchemaError(f"{path}: expected map, got {type(value).__name__}")
        if not all(isinstance(k, str) for k in value):
            raise SchemaError(f"{path}: keys must be strings")
        size = _encoded_size(value)
        if size is None:  # something plain msgpack does not take as canonical: the exact rules, with their error
            try:
                size = len(codec.encode(value))
            except TypeError as err:
                raise SchemaError(f"{path}: {err}") from err
        if size > self.max_bytes:
            raise SchemaError(f"{path}: {size} bytes encoded > max {self.max_bytes}")


def _encoded_size(value: dict[str, Any]) -> int | None:
    """The length of ``codec.encode(value)`` computed in C, or None when the fast path cannot vouch for it.

    Sorting a map's keys does not change its encoded length, so plain ``msgpack.packb`` gives the canonical
    length whenever the canonical encoder would take the value unchanged: every map key (at every depth) str or
    bytes, no extension types. Decoding the packed bytes back with ``strict_map_key`` and no extension types
    checks exactly that; anything else (numpy scalars, tuples as keys, ...) returns None and takes the slow path.
    What comes off the wire always passes (``decode_canonical`` accepts nothing else).
    """
    try:
        packed = msgpack.packb(value, use_bin_type=True)
        msgpack.unpackb(packed, raw=False, strict_map_key=True, max_ext_len=0)
    except Exception:  # any refusal sends the value down the exact, slow path
        return None
    return len(packed)


_ACCOUNT = Bytes(size=32)
_AMOUNT = Int(low=1, high=MAX_AMOUNT)
_NONCE = Int(low=1, high=2**63 - 1)
_HEIGHT = Int(low=0, high=2**63 - 1)

SCHEMAS: dict[str, Schema] = {
    "transfer": Schema({"to": _ACCOUNT, "amount": _AMOUNT, "nonce": _NONCE}),
    "escrow_lock": Schema(
        {
            "id": Bytes(size=32),
            "payee": _ACCOUNT,
            "amount": _AMOUNT,
            "expires": _HEIGHT,
            "arbiter": Optional(_ACCOUNT),
            "ref": Optional(Bytes(max_len=64)),
            "nonce": _NONCE,
        }
    ),
    "escrow_release": Schema({"id": Bytes(size=32), "nonce": _NONCE}),
    "escrow_refund": Schema({"id": Bytes(size=32), "nonce": _NONCE}),
    "escrow_settle": Schema({"id": Bytes(size=32), "to": _ACCOUNT, "amount": Int(low=0, high=MAX_AMOUNT),
                             "nonce": _NONCE}),
    "escrow_split": Schema({"id": Bytes(size=32), "to": Map(_ACCOUNT, Int(low=0, high=MAX_AMOUNT), MAX_SPLIT),
                            "nonce": _NONCE}),
    "escrow_take": Schema({"id": Bytes(size=32), "to": Map(_ACCOUNT, Int(low=0, high=MAX_AMOUNT), MAX_SPLIT),
                           "nonce": _NONCE}),
    "stake": Schema(
        {
            "amount": _AMOUNT,
            "bls_pubkey": Optional(Bytes(size=48)),
            "bls_pop": Optional(Bytes(size=96)),
            "nonce": _NONCE,
        }
    ),
    "unstake": Schema({"amount": _AMOUNT, "nonce": _NONCE}),
    "record": Schema(
        {
            "kind": Str(min_len=1, max_len=32),
            "data": RecordData(),
            "nonce": _NONCE,
        }
    ),
    "model_commit": Schema(
        {
            "hash": Bytes(size=32),
            "size": Int(low=0, high=2**63 - 1),
            "pointer": Str(max_len=200),
            "loss": Num(low=0.0),
            "nonce": _NONCE,
        }
    ),
    "evidence": Schema({"a": Bytes(max_len=MAX_HEADER_BYTES), "b": Bytes(max_len=MAX_HEADER_BYTES)}),
}

KINDS: tuple[str, ...] = tuple(SCHEMAS)
"""Every transaction kind; the envelope type is ``"tx/" + kind``."""

CONTRACT_DOMAIN = b"bazaar/contract/v1/"


def contract_account(market: str) -> bytes:
    """The arbiter account of a market's contract escrows (docs/ledger.md §Contract escrows): no key signs for
    it; the block proposer acts for it, and the market contract every validator re-executes decides whether
    what it did was right."""
    return hashlib.sha256(CONTRACT_DOMAIN + market.encode()).digest()


NONCELESS = frozenset({"evidence"})
"""Kinds without an account nonce (anyone may submit; duplicates are rejected by the state)."""

for _kind, _schema in SCHEMAS.items():
    register("tx/" + _kind, _schema)

WEIGHTS_RECORD = "weights"
"""``tx/record`` kind that sets the validator weight map (revenue-share PoS, lottery allocation)."""


def tx_kind(env: Envelope) -> str:
    """The kind of a transaction envelope (``"transfer"`` for type ``"tx/transfer"``).

    Raises:
        SchemaError: not a transaction type (reason ``unknown-type``).
    """
    kind = KIND_OF_TYPE.get(env.type)
    if kind is None:
        raise SchemaError(f"not a transaction type: {env.type[:64]!r}", reason=ProtocolReason.UNKNOWN_TYPE)
    return kind


KIND_OF_TYPE: dict[str, str] = {"tx/" + kind: kind for kind in SCHEMAS}
"""Envelope type → transaction kind, for every kind (what :func:`tx_kind` looks up)."""


def make_tx(
    key: KeyPair, network_id: str, kind: str, body: dict[str, Any], *, market: str = "", round: int = 0
) -> Envelope:
    """Build and sign a transaction.

    Args:
        key: the acting account's key pair.
        network_id: the ledger's network id (signatures do not transfer across networks).
        kind: one of :data:`KINDS`, e.g. ``"transfer"``.
        body: the kind's body; ``nonce`` must be the account's next nonce (none for ``evidence``).
        market: the market the transaction belongs to (records, escrows), or ``""``.
        round: the market round, or 0.

    Returns:
        The signed envelope (``seq`` = ``body["nonce"]``); send ``env.wire``.

    Raises:
        SchemaError: unknown kind or a body that does not match its schema.
    """
    if kind not in SCHEMAS:
        raise SchemaError(f"unknown transaction kind {kind!r}", reason=ProtocolReason.UNKNOWN_TYPE)
    SCHEMAS[kind].check(body)
    env = seal(key, network_id, "tx/" + kind, body, seq=int(body.get("nonce", 0)), market=market, round=round)
    if len(env.wire) > MAX_TX:
        raise OversizeError(f"transaction of {len(env.wire)} bytes > cap {MAX_TX}")
    return env


def decode_tx(raw: bytes, network_id: str, *, leaf: bytes | None = None) -> Envelope:
    """Open a transaction received from a peer: size cap, signature, header, body schema, nonce/seq match.

    The signature of a given transaction is verified once: a transaction travels through the mempool, the
    block proposal, the block import, the consensus proof and the markets' block checks, and each decodes it.
    A bounded cache of fully validated transactions lets the later decodes skip the Ed25519 check (the
    signature cache of Bitcoin Core, docs/adr/0125-verified-transaction-cache.md) and the stateless checks
    after it — header, schema, nonce/seq: all functions of the same bytes and network, which passed them
    (docs/adr/0171); the envelope is still decoded from the bytes, canonical check included, and each call
    returns a fresh envelope (callers may not share one). The cache's key is the transaction's Merkle leaf
    ``sha256(0x00 ‖ raw)`` followed by the network id (docs/adr/0161), so a block import passes the leaves it
    hashed for the tx root instead of hashing every transaction twice.

    Args:
        raw: the transaction's wire bytes.
        network_id: the ledger's network id.
        leaf: ``sha256(0x00 ‖ raw)`` when the caller has it (``Block.leaves()``); computed otherwise.

    Raises:
        ProtocolError: any subclass (``OversizeError``, ``DecodeError``, ``SignatureError``, ``SchemaError``);
            the transaction must be dropped.
    """
    if len(raw) > MAX_TX:
        raise OversizeError(f"transaction of {len(raw)} bytes > cap {MAX_TX}")
    key = (_sha256(b"\x00" + raw).digest() if leaf is None else leaf) + network_id.encode()
    if key in _VERIFIED:  # these exact bytes passed every check below before: only rebuild the envelope
        env = reopen_envelope(raw, network_id, max_size=MAX_TX)
        TX_STATS.decoded += 1
        _VERIFIED.move_to_end(key)
        return env
    env = open_envelope(raw, network_id, max_size=MAX_TX)
    TX_STATS.decoded += 1
    _check_stateless(env)
    _remember(key)
    return env


def decode_txs(
    raws: Sequence[bytes], network_id: str, *, leaves: Sequence[bytes] | None = None
) -> list[Envelope | ProtocolError]:
    """:func:`decode_tx` of each of ``raws`` (a block's transactions): for each its envelope or the error
    ``decode_tx`` would raise, in order, with the same checks, cache and counters.

    The envelopes are opened by :func:`~bazaar.protocol.envelope.open_envelopes`, whose signature checks run
    back to back (docs/adr/0161); a transaction found in the cache skips its signature and stateless checks as
    in ``decode_tx``. A transaction listed twice is verified twice (neither is in the cache yet).

    Args:
        raws: transactions' wire bytes.
        network_id: the ledger's network id.
        leaves: ``sha256(0x00 ‖ raw)`` of each (``Block.leaves()``), or None to hash them here.
    """
    nid = network_id.encode()
    if leaves is None:
        leaves = [_sha256(b"\x00" + raw).digest() if len(raw) <= MAX_TX else b"" for raw in raws]
    keys = [leaf + nid for leaf in leaves]
    cached = list(map(_VERIFIED.__contains__, keys))
    opened = open_envelopes(raws, network_id, max_size=MAX_TX, verified=cached)
    decoded = verified = 0
    kinds, schemas, remembered = KIND_OF_TYPE, SCHEMAS, _VERIFIED
    for i, env in enumerate(opened):
        if type(env) is not Envelope:  # the ProtocolError open_envelopes returned for it
            if isinstance(env, OversizeError) and len(raws[i]) > MAX_TX:  # decode_tx's own words for it
                opened[i] = OversizeError(f"transaction of {len(raws[i])} bytes > cap {MAX_TX}")
            continue
        decoded += 1
        if cached[i]:  # these exact bytes passed every check below before
            remembered.move_to_end(keys[i])
            continue
        seq, body = env.seq, env.body  # _check_stateless(env), written out for the common case
        kind = kinds.get(env.type)
        try:
            if kind is None:
                kind = tx_kind(env)  # raises: no transaction type
            schemas[kind].check(body, "body")
            expected_seq = 0 if kind in NONCELESS else body["nonce"]
            if seq != expected_seq:
                raise SchemaError(f"envelope seq {seq} differs from body nonce {expected_seq}")
        except ProtocolError as err:
            opened[i] = err
            continue
        verified += 1
        remembered[keys[i]] = None
    TX_STATS.decoded += decoded
    TX_STATS.verified += verified
    while len(_VERIFIED) > _CACHE_BOUND[0]:  # the oldest forgotten first, as one by one
        _VERIFIED.popitem(last=False)
    return opened


def _check_stateless(env: Envelope) -> None:
    """What :func:`decode_tx` checks after opening the envelope: a transaction type, its body schema, and
    ``seq`` equal to the body's nonce."""
    kind = KIND_OF_TYPE.get(env.type) or tx_kind(env)  # tx_kind raises for a type that is no transaction
    SCHEMAS[kind].check(env.body, "body")  # validate_basic(env): the registry holds this very schema
    expected_seq = 0 if kind in NONCELESS else env.body["nonce"]
    if env.seq != expected_seq:
        raise SchemaError(f"envelope seq {env.seq} differs from body nonce {expected_seq}")


def _remember(key: bytes) -> None:
    """Count a verification and remember its transaction's key (oldest forgotten first past the bound)."""
    TX_STATS.verified += 1
    _VERIFIED[key] = None
    if len(_VERIFIED) > _CACHE_BOUND[0]:
        _VERIFIED.popitem(last=False)


_sha256 = hashlib.sha256


def reserve_verified(entries: int) -> int:
    """Let the process remember at least ``entries`` verified transactions (never fewer than
    :data:`VERIFIED_CACHE`); returns the bound now in force.

    A node sizes it from its mempool (docs/adr/0170): a transaction verified when it entered the pool must still
    be remembered when the block carrying it is imported, or every import of a full pool verifies again. The
    bound only grows (several nodes of one process, as in ``bazaar sim``, share the cache).
    """
    _CACHE_BOUND[0] = max(_CACHE_BOUND[0], VERIFIED_CACHE, int(entries))
    return _CACHE_BOUND[0]


@dataclass
class TxStats:
    """Process-wide counters of :func:`decode_tx` (benchmarks/bench_ledger.py reports them per block import)."""

    decoded: int = 0
    verified: int = 0


TX_STATS = TxStats()
VERIFIED_CACHE = 16_384
"""Transactions whose signature verification is remembered (32-byte digests and the network id, a few MB at most)."""
_VERIFIED: OrderedDict[bytes, None] = OrderedDict()
_CACHE_BOUND = [VERIFIED_CACHE]
