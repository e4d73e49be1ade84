"""The ledger state: an immutable value; :func:`.apply.apply` returns a new one for each block.

The state root is ``sha256("bazaar/state/v1\\0" || canonical msgpack of to_canonical())``; it covers
everything except ``head`` (the hash of the header that carries the root) — a flat hash of the
whole state, sorted by key (docs/ledger.md §State root; docs/adr/0009 for why not a Merkle trie).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import msgpack

from bazaar.protocol import codec

from .genesis import Genesis

STATE_DOMAIN = b"bazaar/state/v1\x00"
RECORDS_DOMAIN = b"bazaar/records/v1\x00"
SEED_DOMAIN = b"bazaar/seed/v1\x00"

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Escrow:
    """Tokens locked by ``payer`` for ``payee`` until released, refunded or expired (then refunded by the ledger).

    Attributes:
        payer: who locked the tokens (gets them back on refund).
        payee: who is paid on release.
        amount: micro-tokens.
        expires: after this height the payer may refund; the block at ``expires + 1`` refunds it anyway
            (docs/ledger.md §End of block).
        arbiter: a third account that may release or refund, or ``None``.
        ref: up to 64 bytes of market reference (e.g. auction id), may be empty.
        market: the market named in the lock transaction's envelope.
    """

    payer: bytes
    payee: bytes
    amount: int
    expires: int
    arbiter: bytes | None = None
    ref: bytes = b""
    market: str = ""

    def to_canonical(self) -> list[Any]:
        """Fixed-order list used in the state root."""
        return list(self.canonical)

    @cached_property
    def canonical(self) -> tuple[Any, ...]:
        """:meth:`to_canonical` as a tuple, built once per escrow (an escrow lives in many states unchanged; the
        state root encodes every open escrow at every block)."""
        return (self.payer, self.payee, self.amount, self.expires, self.arbiter, self.ref, self.market)


@dataclass(frozen=True)
class ModelCommit:
    """A ``tx/model_commit`` applied in the head block."""

    miner: bytes
    hash: bytes
    size: int
    pointer: str
    loss: float
    market: str
    round: int

    def to_canonical(self) -> list[Any]:
        """Fixed-order list used in the state root."""
        return [self.miner, self.hash, self.size, self.pointer, float(self.loss), self.market, self.round]


@dataclass(frozen=True)
class Supply:
    """Token supply accounting: ``genesis + minted - burned`` must equal all tokens held."""

    genesis: int
    minted: int = 0
    burned: int = 0

    @property
    def total(self) -> int:
        """Tokens that must exist."""
        return self.genesis + self.minted - self.burned


_AMOUNT = attrgetter("amount")
_EXPIRES = attrgetter("expires")


def _frozen(m: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True)
class State:
    """The ledger state after ``height`` blocks (immutable; maps are read-only views).

    Attributes:
        genesis: the network's genesis (not hashed itself; its hash is part of the root).
        height: number of applied blocks.
        head: hash of the last applied block (the genesis hash at height 0).
        timestamp_ms: the last block's timestamp.
        seed: the running randomness seed (RANDAO for ``pos``).
        balances: free micro-tokens per account (accounts at zero are absent).
        nonces: last used nonce per account.
        escrows: open escrows by id.
        stakes: staked micro-tokens per account.
        validators: registered BLS public key per account.
        slashed: height at which each slashed account was slashed.
        evidence: ``(proposer, height)`` pairs already punished.
        weights: validator weight map set by a ``weights`` record (empty: use stakes).
        records_root: running hash over every applied ``tx/record``'s digest.
        records_count: number of applied records.
        models: the model commitments applied in the head block.
        pol_round: the market round of the last PoL block's submissions.
        supply: minted and burned totals.
        unbonding: unstaked micro-tokens waiting for their release, ``release height -> {account: amount}``
            (released to the balance by the block at that height; still slashable until then).
        expired: ids of the escrows the expiry rule refunded in the head block, sorted.
        expiring: open escrow ids by their ``expires`` height — an index derived from ``escrows`` (not hashed,
            not compared), so the expiry rule reads one bucket per block instead of scanning every escrow.
    """

    genesis: Genesis = field(repr=False, compare=False)
    height: int
    head: bytes
    timestamp_ms: int
    seed: bytes
    balances: Mapping[bytes, int]
    nonces: Mapping[bytes, int]
    escrows: Mapping[bytes, Escrow]
    stakes: Mapping[bytes, int]
    validators: Mapping[bytes, bytes]
    slashed: Mapping[bytes, int]
    evidence: frozenset[tuple[bytes, int]]
    weights: Mapping[bytes, int]
    records_root: bytes
    records_count: int
    models: tuple[ModelCommit, ...]
    pol_round: int
    supply: Supply
    unbonding: Mapping[int, Mapping[bytes, int]] = field(default_factory=dict)
    expired: tuple[bytes, ...] = ()
    # None (the default): derived from ``escrows`` in __post_init__
    expiring: Mapping[int, frozenset[bytes]] = field(default=None, compare=False, repr=False)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for name in ("balances", "nonces", "escrows", "stakes", "validators", "slashed", "weights"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, _frozen(value))
        if not isinstance(self.unbonding, MappingProxyType):
            object.__setattr__(self, "unbonding", _frozen({h: _frozen(b) for h, b in self.unbonding.items()}))
        if self.expiring is None:
            object.__setattr__(self, "expiring", _frozen(expiry_index(self.escrows)))
        elif not isinstance(self.expiring, MappingProxyType):
            object.__setattr__(self, "expiring", _frozen(self.expiring))

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> State:
        """The state at height 0."""
        ghash = genesis.hash()
        return cls(
            genesis=genesis,
            height=0,
            head=ghash,
            timestamp_ms=genesis.timestamp_ms,
            seed=hashlib.sha256(SEED_DOMAIN + ghash).digest(),
            balances={a: v for a, v in genesis.balances.items() if v},
            nonces={},
            escrows={},
            stakes={a: v for a, v in genesis.stakes.items() if v},
            validators=dict(genesis.validators),
            slashed={},
            evidence=frozenset(),
            weights={},
            records_root=bytes(32),
            records_count=0,
            models=(),
            pol_round=0,
            supply=Supply(genesis=genesis.supply),
        )

    @property
    def network_id(self) -> str:
        """The network id of the genesis."""
        return self.genesis.network_id

    # ---- queries -------------------------------------------------------------------------------------------

    def balance(self, account: bytes) -> int:
        """Free micro-tokens of ``account``."""
        return self.balances.get(account, 0)

    def nonce(self, account: bytes) -> int:
        """The last nonce ``account`` used (its next transaction carries this + 1)."""
        return self.nonces.get(account, 0)

    def next_nonce(self, account: bytes) -> int:
        """The nonce ``account``'s next transaction must carry."""
        return self.nonce(account) + 1

    def stake(self, account: bytes) -> int:
        """Staked micro-tokens of ``account``."""
        return self.stakes.get(account, 0)

    def unbonding_of(self, account: bytes) -> int:
        """Micro-tokens ``account`` unstaked that are not released yet (still slashable)."""
        return sum(batch.get(account, 0) for batch in self.unbonding.values())

    def escrow(self, escrow_id: bytes) -> Escrow | None:
        """The open escrow ``escrow_id``, or ``None``."""
        return self.escrows.get(escrow_id)

    def is_slashed(self, account: bytes) -> bool:
        """Whether ``account`` has been slashed (it may no longer propose or attest)."""
        return account in self.slashed

    def stake_weights(self) -> dict[bytes, int]:
        """Stakes of the registered, unslashed validators with a positive stake (the fallback draw's weights)."""
        return self._stake_weights()

    def _stake_weights(self) -> dict[bytes, int]:
        return {
            a: w
            for a, w in sorted(self.stakes.items())
            if w > 0 and a in self.validators and a not in self.slashed
        }

    def proposer_weights(self) -> dict[bytes, int]:
        """Weights of the proposer draw (``pos`` sortition, ``lottery``): the ``weights`` record if one is
        set, else the stakes of registered validators. Slashed accounts and zero weights are left out."""
        if self.weights:
            return {a: w for a, w in sorted(self.weights.items()) if w > 0 and a not in self.slashed}
        return self._stake_weights()

    def validator_weights(self) -> dict[bytes, int]:
        """Finality weights of the validators that attest to the next block: their stakes (registered,
        unslashed, positive). A ``weights`` record (revenue share, allocation) only weights the proposer draw
        (ADR 0081): an allocation may concentrate on one account, and a crashed winner must not stop finality.
        """
        return self._stake_weights()

    def validator_set(self) -> dict[bytes, tuple[bytes, int]]:
        """``account -> (BLS public key, weight)`` of the validators that attest to the next block."""
        return {a: (self.validators[a], w) for a, w in self.validator_weights().items()}

    def held(self) -> int:
        """All tokens held: Σ balances + Σ escrow + Σ stake + Σ unbonding."""
        return (
            sum(self.balances.values())
            + sum(map(_AMOUNT, self.escrows.values()))
            + sum(self.stakes.values())
            + sum(sum(batch.values()) for batch in self.unbonding.values())
        )

    def conserved(self) -> bool:
        """Token conservation and non-negativity (docs/ledger.md, state invariants), and the two end-of-block
        rules' invariants: no open escrow expired before this height, no unbonding entry due at or before it."""
        # every entry of every state map is checked at every block: min over C iterators, not Python generators
        if min(self.balances.values(), default=0) < 0 or min(self.stakes.values(), default=0) < 0:
            return False
        escrows = self.escrows.values()
        if escrows and (min(map(_AMOUNT, escrows)) <= 0 or min(map(_EXPIRES, escrows)) < self.height):
            return False
        if any(h <= self.height or not batch or any(v <= 0 for v in batch.values())
               for h, batch in self.unbonding.items()):
            return False
        return self.supply.total == self.held()

    # ---- encoding ------------------------------------------------------------------------------------------

    def to_canonical(self, *, copy: bool = True) -> dict[str, Any]:
        """The map whose canonical encoding is hashed into the state root; with ``copy=False`` its account-keyed
        maps are the state's own read-only views (for :func:`canonical_state_bytes`, which copies them sorted)."""
        own: Any = dict if copy else (lambda m: m)
        doc = self._fixed_sections()
        doc.update({
            "balances": own(self.balances),
            "nonces": own(self.nonces),
            "escrows": {k: e.to_canonical() for k, e in self.escrows.items()} if copy
            else {k: e.canonical for k, e in self.escrows.items()},
            "stakes": own(self.stakes),
            "validators": own(self.validators),
            "slashed": own(self.slashed),
            "weights": own(self.weights),
        })
        return doc

    def _fixed_sections(self) -> dict[str, Any]:
        """The sections of :meth:`to_canonical` that are not account-keyed maps (each small)."""
        return {
            "genesis": self.genesis.hash(),
            "height": self.height,
            "timestamp_ms": self.timestamp_ms,
            "seed": self.seed,
            "evidence": sorted([p, h] for p, h in self.evidence),
            "records": [self.records_root, self.records_count],
            "models": [m.to_canonical() for m in self.models],
            "pol_round": self.pol_round,
            "supply": [self.supply.genesis, self.supply.minted, self.supply.burned],
            "unbonding": [[h, sorted([a, v] for a, v in batch.items())] for h, batch in sorted(self.unbonding.items())],
            "expired": list(self.expired),
        }

    @cached_property
    def _root(self) -> bytes:
        chunks = _encode_by_sections(self)
        if chunks is None:
            chunks = [canonical_state_bytes(self.to_canonical(copy=False))]
        h = hashlib.sha256(STATE_DOMAIN)
        for chunk in chunks:  # the encoding's pieces in order, not joined into one more copy of the state
            h.update(chunk)
        root = h.digest()
        if "_sections" in self.__dict__:
            self.__dict__["_sections"] = _shared_sections(root, self.__dict__["_sections"])
        return root

    def root(self) -> bytes:
        """The 32-byte state root (cached; the state is immutable)."""
        return self._root

    def derived(self, base: State, changed: Mapping[str, Iterable[bytes]]) -> State:
        """Note that this state is ``base`` with the entries ``changed`` (map name -> keys set or deleted; every map
        not named is unchanged, ``weights`` is compared by identity) rewritten: its root then re-encodes only those
        entries (docs/adr/0167). Returns ``self``."""
        self.__dict__["_derived_from"] = (base, changed)
        return self

    def with_head(self, head: bytes) -> State:
        """This state with another ``head`` (not hashed into the root): the root and its encoding are kept."""
        new = replace(self, head=head)
        for name in ("_root", "_sections"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name]
        return new

    def export(self) -> dict[str, Any]:
        """JSON-able balances, escrows, stakes and supply (hex strings for bytes)."""
        return {
            "height": self.height,
            "balances": {a.hex(): v for a, v in sorted(self.balances.items())},
            "escrow": {
                k.hex(): {
                    "payer": e.payer.hex(),
                    "payee": e.payee.hex(),
                    "amount": e.amount,
                    "expires": e.expires,
                    "arbiter": e.arbiter.hex() if e.arbiter else None,
                    "ref": e.ref.hex(),
                    "market": e.market,
                }
                for k, e in sorted(self.escrows.items())
            },
            "stake": {a.hex(): v for a, v in sorted(self.stakes.items())},
            "unbonding": {
                str(h): {a.hex(): v for a, v in sorted(batch.items())} for h, batch in sorted(self.unbonding.items())
            },
            "slashed": {a.hex(): h for a, h in sorted(self.slashed.items())},
            "supply": {
                "genesis": self.supply.genesis,
                "minted": self.supply.minted,
                "burned": self.supply.burned,
            },
            "records": {"count": self.records_count, "root": self.records_root.hex()},
        }


_STATE_MAPS = ("balances", "nonces", "escrows", "stakes", "validators", "slashed", "weights")
"""The sections of :meth:`State.to_canonical` that are maps (every other section is a list or a scalar)."""


def canonical_state_bytes(doc: Mapping[str, Any]) -> bytes:
    """``codec.encode(doc)`` for a :meth:`State.to_canonical` map, computed in C for the common shape.

    The canonical encoding sorts every map's keys by their encoded bytes. The state's maps are keyed by
    accounts or ids: bytes of one length below 256, which encode as ``bin8`` (``0xc4``, the length, the bytes),
    so their encoded order is their byte order and ``sorted`` gives it without encoding a key. With the maps
    sorted and the top-level keys in their (fixed) canonical order, plain ``msgpack.packb`` writes the canonical
    bytes: the values are ints, bytes, str, None and lists of them. A map of any other shape (keys of several
    lengths or types) sends the whole document through :func:`codec.encode`; the result is the same either way
    (tests/ledger/test_state_root_fast.py), only the cost differs: a state of 40,000 entries took ≈ 0.3 s
    through the Python walk of ``codec.encode``, once per block and replica (docs/adr/0172).
    """
    out: dict[str, Any] = {}
    for name in _top_order(doc):
        value = doc[name]
        if name in _STATE_MAPS:
            value = _sorted_by_bytes(value)
            if value is None:
                return _exact(doc)
        out[name] = value
    try:
        return msgpack.packb(out, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError):  # a value plain msgpack does not take (a numpy scalar): the exact rules
        return _exact(doc)


Sections = dict[str, tuple[int, list[bytes]]]
"""Per account-keyed map of a state: its keys' length and its entries' encodings (``packb(key) + packb(value)``),
sorted (docs/adr/0167)."""


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _section_value(name: str, value: Any) -> Any:
    return value.canonical if name == "escrows" else value


def _build_section(name: str, m: Mapping[Any, Any]) -> tuple[int, list[bytes]] | None:
    """Every entry of ``m`` encoded, in canonical order (None: keys not all bytes of one length < 256)."""
    if not m:
        return 0, []
    keys = list(m)
    if set(map(type, keys)) != {bytes} or len(lengths := set(map(len, keys))) != 1 or (klen := lengths.pop()) >= 256:
        return None
    return klen, [_pack(k) + _pack(_section_value(name, m[k])) for k in sorted(keys)]


def _derive_section(name: str, parent: tuple[int, list[bytes]], m: Mapping[Any, Any], changed: Iterable[Any]
                    ) -> tuple[int, list[bytes]] | None:
    """The section of ``m`` from its parent's, re-encoding only the ``changed`` keys: the unchanged runs between
    them are copied as list slices (None: a changed key breaks the one-length rule; the caller rebuilds)."""
    klen, parts = parent
    keys = sorted(changed)
    if not keys:
        return parent
    if not parts:
        return _build_section(name, m)
    if any(type(k) is not bytes or len(k) != klen for k in keys):
        return None
    out: list[bytes] = []
    i = 0
    for k in keys:  # an entry's encoding starts with its key's, all of one length: the parts sort as the keys
        probe = _pack(k)
        j = bisect_left(parts, probe, i)
        out += parts[i:j]
        i = j + 1 if j < len(parts) and parts[j].startswith(probe) else j
        value = m.get(k, _ABSENT)
        if value is not _ABSENT:
            out.append(probe + _pack(_section_value(name, value)))
    out += parts[i:]
    return klen, out


def _map_header(n: int) -> bytes:
    """msgpack's map header for ``n`` entries (the smallest form, as ``packb`` writes it)."""
    if n <= 15:
        return bytes([0x80 | n])
    if n <= 0xFFFF:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


def _encode_by_sections(state: State) -> list[bytes] | None:
    """:func:`canonical_state_bytes` of ``state`` in pieces, from its maps' sorted entry encodings, derived from
    its parent's when :meth:`State.derived` names the parent and the changes (O(changes) encodings and a join,
    not a sort and an encoding of every entry per block: docs/adr/0167); None when a map does not take the fast
    path."""
    src = state.__dict__.pop("_derived_from", None)
    parent: Sections | None = None
    if src is not None:
        parent = src[0].__dict__.get("_sections")
    sections: Sections = {}
    try:
        for name in _STATE_MAPS:
            m = getattr(state, name)
            section = None
            if parent is not None:
                if name == "weights":
                    section = parent[name] if m is src[0].weights else None
                else:
                    section = _derive_section(name, parent[name], m, src[1].get(name, ()))
            if section is None:
                section = _build_section(name, m)
            if section is None:
                return None
            sections[name] = section
        doc = state._fixed_sections()
        out = [_map_header(len(doc) + len(_STATE_MAPS))]
        for name in _top_order({**doc, **dict.fromkeys(_STATE_MAPS)}):
            out.append(_pack(name))
            if name in sections:
                parts = sections[name][1]
                out.append(_map_header(len(parts)))
                out.append(b"".join(parts))
            else:
                out.append(_pack(doc[name]))
    except (TypeError, ValueError, OverflowError):  # a value plain msgpack does not take: the exact rules
        return None
    state.__dict__["_sections"] = sections
    return out


SECTIONS_SHARED = 8
"""States whose entry encodings a process shares by root: the replicas of one process (``bazaar sim``, the
in-memory tests) that reach a state each keep the same encodings, not one copy each (docs/adr/0167)."""
_SHARED: OrderedDict[bytes, Sections] = OrderedDict()


def _shared_sections(root: bytes, sections: Sections) -> Sections:
    """The encodings of the state with ``root`` as the first replica of this process derived them (equal roots:
    equal canonical bytes, hence equal entries), keeping ``sections`` when none is remembered."""
    kept = _SHARED.get(root)
    if kept is not None:
        _SHARED.move_to_end(root)
        return kept
    _SHARED[root] = sections
    while len(_SHARED) > SECTIONS_SHARED:
        _SHARED.popitem(last=False)
    return sections


def _exact(doc: Mapping[str, Any]) -> bytes:
    """The document through :func:`codec.encode`'s exact rules (its read-only views copied to dicts)."""
    return codec.encode({k: dict(v) if isinstance(v, Mapping) else v for k, v in doc.items()})


def _sorted_by_bytes(m: Mapping[Any, Any]) -> dict[Any, Any] | None:
    """``m`` as a dict with its keys in canonical order when they are all bytes of one length < 256, else None.

    A map already in order (a state whose block only changed existing entries) is copied as it is: ``sorted``
    of a sorted list is one linear pass."""
    if not m:
        return {}
    keys = list(m)
    if set(map(type, keys)) != {bytes} or len(lengths := set(map(len, keys))) != 1 or lengths.pop() >= 256:
        return None
    order = sorted(keys)
    if order == keys:
        return dict(m)
    return {k: m[k] for k in order}


def _top_order(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of ``doc`` in canonical order (encoded-bytes order), cached per key set."""
    keys = frozenset(doc)
    order = _TOP_ORDERS.get(keys)
    if order is None:
        order = _TOP_ORDERS[keys] = tuple(sorted(doc, key=lambda k: msgpack.packb(k, use_bin_type=True)))
    return order


_TOP_ORDERS: dict[frozenset[str], tuple[str, ...]] = {}


def expiry_index(escrows: Mapping[bytes, Escrow]) -> dict[int, frozenset[bytes]]:
    """Open escrow ids grouped by their ``expires`` height (the expiry rule's index)."""
    out: dict[int, set[bytes]] = {}
    for escrow_id, escrow in escrows.items():
        out.setdefault(escrow.expires, set()).add(escrow_id)
    return {h: frozenset(ids) for h, ids in out.items()}


_ABSENT: Any = object()
"""Not in a mapping (an overlay's changes, a section being re-encoded): distinct from a deleted key or None."""


class Overlay(Generic[K, V]):
    """Copy-on-write view of a mapping: reads fall through to ``base``, writes stay local until merged."""

    _DELETED: Any = object()

    def __init__(self, base: Mapping[K, V]) -> None:
        self.base = base
        self.changes: dict[K, Any] = {}

    def get(self, key: K, default: Any = None) -> Any:
        """The current value of ``key``."""
        value = self.changes.get(key, _ABSENT)
        if value is _ABSENT:
            return self.base.get(key, default)
        return default if value is self._DELETED else value

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not self._DELETED
        return key in self.base

    def set(self, key: K, value: V) -> None:
        """Write ``value`` at ``key``."""
        self.changes[key] = value

    def delete(self, key: K) -> None:
        """Remove ``key``."""
        self.changes[key] = self._DELETED

    def items(self) -> Iterator[tuple[K, V]]:
        """Current items (base overridden by changes)."""
        for key, value in self.base.items():
            if key not in self.changes:
                yield key, value
        for key, value in self.changes.items():
            if value is not self._DELETED:
                yield key, value

    def merged(self, *, drop_zero: bool = False) -> dict[K, V]:
        """A new plain dict with the changes applied (zero ints dropped when ``drop_zero``)."""
        out = dict(self.base)
        for key, value in self.changes.items():
            if value is self._DELETED or (drop_zero and value == 0):
                out.pop(key, None)
            else:
                out[key] = value
        return out
