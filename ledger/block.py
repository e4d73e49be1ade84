"""Block headers, blocks, their canonical encodings, proposer signatures and the transaction Merkle tree.

Formats (docs/ledger.md §Blocks):

* header map ``{height, parent, timestamp_ms, proposer, tx_root, state_root, reward, consensus}`` as canonical
  msgpack; ``block.hash = sha256("bazaar/header/v1\\0" || header bytes)``;
* proposer signature: Ed25519 over ``"bazaar/block-sig/v1\\0" || network_id || 0x00 || block.hash``;
* block wire form ``{"h": header map, "t": [raw tx envelope bytes...], "s": signature}``;
* signed header (evidence) ``{"h": header map, "s": signature}``;
* ``tx_root``: binary Merkle tree over the raw transaction bytes, leaves ``sha256(0x00 || tx)``, inner nodes
  ``sha256(0x01 || left || right)``, an odd node carried up unchanged; the empty list has root
  ``sha256(b"")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bazaar.protocol import codec
from bazaar.protocol.errors import ProtocolError, SignatureError
from bazaar.protocol.keys import KeyPair, verify

from .errors import InvalidBlock, LedgerReason

HEADER_DOMAIN = b"bazaar/header/v1\x00"
BLOCK_SIG_DOMAIN = b"bazaar/block-sig/v1\x00"
MAX_BLOCK = 8 << 20
"""Cap on a block's wire size (8 MiB)."""
MAX_TXS = 10_000
"""Cap on the number of transactions in one block."""
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

_HEADER_FIELDS = (
    "height",
    "parent",
    "timestamp_ms",
    "proposer",
    "tx_root",
    "state_root",
    "reward",
    "consensus",
)


def _leaf(item: bytes) -> bytes:
    return _sha256(b"\x00" + item).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def leaf_hashes(items: Sequence[bytes]) -> tuple[bytes, ...]:
    """The Merkle leaves ``sha256(0x00 || item)`` of ``items``, in order."""
    return tuple([_sha256(b"\x00" + item).digest() for item in items])


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The Merkle root over already hashed leaves (:func:`leaf_hashes`); ``sha256(b"")`` for none."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        pairs = zip(level[::2], level[1::2], strict=False)  # an odd last node has no partner: carried up below
        nxt = [_sha256(b"\x01" + left + right).digest() for left, right in pairs]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(items: Sequence[bytes]) -> bytes:
    """The Merkle root of ``items`` (raw transaction bytes); ``sha256(b"")`` for no items."""
    return root_of_leaves(leaf_hashes(items))


def merkle_proof(items: Sequence[bytes], index: int) -> list[tuple[bytes, bool]]:
    """The inclusion proof of ``items[index]``: ``(sibling hash, sibling is on the left)`` from leaf to root.

    Raises:
        IndexError: ``index`` out of range.
    """
    if not 0 <= index < len(items):
        raise IndexError(f"index {index} out of range for {len(items)} items")
    level = [_leaf(x) for x in items]
    proof: list[tuple[bytes, bool]] = []
    pos = index
    while len(level) > 1:
        sibling = pos ^ 1
        if sibling < len(level):
            proof.append((level[sibling], sibling < pos))
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, pos = nxt, pos // 2
    return proof


def verify_merkle_proof(item: bytes, proof: Sequence[tuple[bytes, bool]], root: bytes) -> bool:
    """Whether ``proof`` (from :func:`merkle_proof`) shows ``item`` under ``root``."""
    acc = _leaf(item)
    for sibling, left in proof:
        acc = _node(sibling, acc) if left else _node(acc, sibling)
    return acc == root


def _bytes32(m: dict[str, Any], name: str) -> bytes:
    value = m.get(name)
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidBlock(LedgerReason.MALFORMED, f"header.{name} must be 32 bytes")
    return value


def _uint(m: dict[str, Any], name: str) -> int:
    value = m.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidBlock(LedgerReason.MALFORMED, f"header.{name} must be a non-negative int")
    return value


@dataclass(frozen=True)
class Header:
    """A block header (see the module docstring for its encoding)."""

    height: int
    parent: bytes
    timestamp_ms: int
    proposer: bytes
    tx_root: bytes
    state_root: bytes
    reward: int
    consensus: dict[str, Any] = field(default_factory=dict)
    _encoded: bytes | None = field(init=False, default=None, repr=False, compare=False)

    def to_map(self) -> dict[str, Any]:
        """The header as the map that is encoded and hashed."""
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    @classmethod
    def from_map(cls, m: Any) -> Header:
        """Build from a decoded map, checking every field's type.

        Raises:
            InvalidBlock: reason ``malformed``.
        """
        if not isinstance(m, dict) or set(m) != set(_HEADER_FIELDS):
            raise InvalidBlock(LedgerReason.MALFORMED, f"header must have exactly the fields {_HEADER_FIELDS}")
        consensus = m["consensus"]
        if not isinstance(consensus, dict) or not all(isinstance(k, str) for k in consensus):
            raise InvalidBlock(LedgerReason.MALFORMED, "header.consensus must be a map with string keys")
        return cls(
            height=_uint(m, "height"),
            parent=_bytes32(m, "parent"),
            timestamp_ms=_uint(m, "timestamp_ms"),
            proposer=_bytes32(m, "proposer"),
            tx_root=_bytes32(m, "tx_root"),
            state_root=_bytes32(m, "state_root"),
            reward=_uint(m, "reward"),
            consensus=consensus,
        )

    def encode(self) -> bytes:
        """Canonical msgpack of :meth:`to_map`, encoded once per header object: a header is immutable (its
        ``consensus`` map is never changed after construction; ``dataclasses.replace`` builds a new header),
        and an import reads its hash several times (signature, state head, store)."""
        encoded = self._encoded
        if encoded is None:
            encoded = codec.encode(self.to_map())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @property
    def hash(self) -> bytes:
        """The block hash: ``sha256(HEADER_DOMAIN || encode())``."""
        return hashlib.sha256(HEADER_DOMAIN + self.encode()).digest()


def header_sign_bytes(network_id: str, block_hash: bytes) -> bytes:
    """The bytes a proposer signs for a block with hash ``block_hash``."""
    return BLOCK_SIG_DOMAIN + network_id.encode() + b"\x00" + block_hash


def sign_header(key: KeyPair, network_id: str, header: Header) -> bytes:
    """The proposer's 64-byte Ed25519 signature of ``header``.

    Raises:
        ValueError: ``key`` is not the header's proposer.
    """
    if key.public != header.proposer:
        raise ValueError("the signing key is not the header's proposer")
    return key.sign(header_sign_bytes(network_id, header.hash))


def check_header_signature(network_id: str, header: Header, signature: bytes) -> None:
    """Verify the proposer's signature.

    Raises:
        InvalidBlock: reason ``bad-signature``.
    """
    try:
        verify(header.proposer, header_sign_bytes(network_id, header.hash), signature)
    except SignatureError as err:
        raise InvalidBlock(LedgerReason.BAD_SIGNATURE, "proposer signature does not verify") from err


@dataclass(frozen=True)
class Block:
    """A block: header, raw transaction envelopes (wire bytes) in order, proposer signature."""

    header: Header
    txs: tuple[bytes, ...]
    signature: bytes
    _leaves: tuple[bytes, ...] | None = field(init=False, default=None, repr=False, compare=False)
    _root_ok: bool = field(init=False, default=False, repr=False, compare=False)
    _signed_on: str | None = field(init=False, default=None, repr=False, compare=False)
    _wire: bytes | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "txs", tuple(self.txs))

    def leaves(self) -> tuple[bytes, ...]:
        """The transactions' Merkle leaves (:func:`leaf_hashes`), hashed once per block object: the tx root
        check and the verified-transaction cache's keys (ledger/txs.py) both start from them."""
        leaves = self._leaves
        if leaves is None:
            leaves = leaf_hashes(self.txs)
            object.__setattr__(self, "_leaves", leaves)
        return leaves

    def tx_root_matches(self) -> bool:
        """Whether ``header.tx_root`` is the Merkle root of ``txs``; a match is remembered (both are immutable),
        so the import of a block :meth:`decode` checked does not hash the tree again."""
        if not self._root_ok and root_of_leaves(self.leaves()) == self.header.tx_root:
            object.__setattr__(self, "_root_ok", True)
        return self._root_ok

    def check_signature(self, network_id: str) -> None:
        """:func:`check_header_signature` of this block on ``network_id``; a pass is remembered (header and
        signature are immutable), so :func:`~.apply.apply` of a block :meth:`decode` checked does not verify
        the proposer's signature a second time.

        Raises:
            InvalidBlock: reason ``bad-signature``.
        """
        if self._signed_on != network_id:
            check_header_signature(network_id, self.header, self.signature)
            object.__setattr__(self, "_signed_on", network_id)

    @property
    def hash(self) -> bytes:
        """The header hash."""
        return self.header.hash

    @property
    def height(self) -> int:
        """The header's height."""
        return self.header.height

    def encode(self) -> bytes:
        """The canonical wire form ``{"h", "t", "s"}``, encoded once per block object (header, transactions and
        signature are immutable); a block :meth:`decode` read keeps the bytes it was read from, which are that
        encoding (``decode_canonical`` accepted them), so storing or relaying it encodes nothing."""
        wire = self._wire
        if wire is None:
            wire = codec.encode({"h": self.header.to_map(), "t": list(self.txs), "s": self.signature})
            object.__setattr__(self, "_wire", wire)
        return wire

    def signed_header(self) -> bytes:
        """The signed header alone (``{"h", "s"}``), as carried by ``tx/evidence``."""
        return codec.encode({"h": self.header.to_map(), "s": self.signature})

    @classmethod
    def decode(cls, raw: bytes, network_id: str, *, max_size: int = MAX_BLOCK) -> Block:
        """Decode a block from a peer or the store, bounded; checks shape, proposer signature and tx root.

        Transactions themselves are verified when the block is applied.

        Raises:
            InvalidBlock: ``oversize``, ``malformed``, ``bad-signature`` or ``bad-tx-root``.
        """
        if len(raw) > max_size:
            raise InvalidBlock(LedgerReason.OVERSIZE, f"block of {len(raw)} bytes > cap {max_size}")
        try:
            outer = codec.decode_canonical(raw, max_size=max_size)
        except ProtocolError as err:
            raise InvalidBlock(LedgerReason.MALFORMED, str(err)) from err
        if not isinstance(outer, dict) or set(outer) != {"h", "t", "s"}:
            raise InvalidBlock(LedgerReason.MALFORMED, "block must be a map with keys h, t, s")
        header = Header.from_map(outer["h"])
        txs, signature = outer["t"], outer["s"]
        if not isinstance(txs, list) or not {bytes}.issuperset(map(type, txs)):  # msgpack bin is exactly bytes
            raise InvalidBlock(LedgerReason.MALFORMED, "block.t must be a list of bin")
        if len(txs) > MAX_TXS:
            raise InvalidBlock(LedgerReason.OVERSIZE, f"{len(txs)} transactions > cap {MAX_TXS}")
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise InvalidBlock(LedgerReason.MALFORMED, "block.s must be 64 bytes")
        block = cls(header, tuple(txs), signature)
        if type(raw) is bytes:  # the canonical encoding of exactly this block (decode_canonical checked it)
            object.__setattr__(block, "_wire", raw)
        block.check_signature(network_id)
        if not block.tx_root_matches():
            raise InvalidBlock(LedgerReason.BAD_TX_ROOT, "tx_root does not match the transactions")
        return block


def decode_signed_header(raw: bytes, network_id: str, *, max_size: int = 128 << 10) -> tuple[Header, bytes]:
    """Decode and verify a signed header (``{"h", "s"}``).

    Returns:
        ``(header, signature)``.

    Raises:
        InvalidBlock: ``malformed``, ``oversize`` or ``bad-signature``.
    """
    if len(raw) > max_size:
        raise InvalidBlock(LedgerReason.OVERSIZE, "signed header too large")
    try:
        outer = codec.decode_canonical(raw, max_size=max_size)
    except ProtocolError as err:
        raise InvalidBlock(LedgerReason.MALFORMED, str(err)) from err
    if not isinstance(outer, dict) or set(outer) != {"h", "s"}:
        raise InvalidBlock(LedgerReason.MALFORMED, "signed header must be a map with keys h, s")
    header = Header.from_map(outer["h"])
    signature = outer["s"]
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise InvalidBlock(LedgerReason.MALFORMED, "signature must be 64 bytes")
    check_header_signature(network_id, header, signature)
    return header, signature
