"""The state root's fast canonical encoder gives ``codec.encode``'s bytes exactly (docs/adr/0172)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.ledger.state import canonical_state_bytes
from bazaar.protocol import codec

from .helpers import Net

_ACCOUNTS = st.binary(min_size=32, max_size=32)
_ANY_KEYS = st.one_of(st.binary(min_size=0, max_size=40), st.binary(min_size=250, max_size=300))
_INTS = st.integers(min_value=0, max_value=2**63 - 1)


def _doc(maps: dict[str, dict[Any, Any]]) -> dict[str, Any]:
    return {
        "genesis": b"g" * 32, "height": 7, "timestamp_ms": 1, "seed": b"s" * 32,
        **maps,
        "evidence": [[b"p" * 32, 3]], "records": [b"r" * 32, 2], "models": [[b"m", b"h", 1, "x", 0.5, "mk", 2]],
        "pol_round": 0, "supply": [10, 2, 1], "unbonding": [[9, [[b"a" * 32, 4]]]], "expired": [b"e" * 32],
    }


_NAMES = ("balances", "nonces", "escrows", "stakes", "validators", "slashed", "weights")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(_ACCOUNTS, _INTS, max_size=30), min_size=7, max_size=7))
def test_account_keyed_maps_take_the_fast_path_and_give_the_same_bytes(maps: list[dict[bytes, int]]) -> None:
    doc = _doc(dict(zip(_NAMES, maps, strict=True)))
    assert canonical_state_bytes(doc) == codec.encode(doc)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_ANY_KEYS, _INTS, max_size=20))
def test_keys_of_several_lengths_fall_back_to_the_exact_encoder(weird: dict[bytes, int]) -> None:
    doc = _doc({name: {} for name in _NAMES} | {"balances": weird})
    assert canonical_state_bytes(doc) == codec.encode(doc)


def test_values_plain_msgpack_refuses_fall_back_too() -> None:
    doc = _doc({name: {} for name in _NAMES} | {"nonces": {b"a" * 32: np.int64(3)}})
    assert canonical_state_bytes(doc) == codec.encode(doc)


def test_a_states_root_is_the_hash_of_its_canonical_encoding() -> None:
    import hashlib

    from bazaar.ledger.state import STATE_DOMAIN

    net = Net()
    net.commit([net.tx("alice", "transfer", to=net.acct("bob"), amount=5)])
    state = net.state
    assert state.height == 1 and state.balances and state.nonces
    assert state.root() == hashlib.sha256(STATE_DOMAIN + codec.encode(state.to_canonical())).digest()


def test_escrows_encode_from_their_cached_tuples_as_from_lists() -> None:
    from bazaar.ledger.state import Escrow

    escrows = {bytes([i]) * 32: Escrow(b"p" * 32, b"q" * 32, i + 1, 2**62, None if i % 2 else b"a" * 32, b"ref", "m")
               for i in range(40)}
    fast = _doc({name: {} for name in _NAMES} | {"escrows": {k: e.canonical for k, e in escrows.items()}})
    exact = _doc({name: {} for name in _NAMES} | {"escrows": {k: e.to_canonical() for k, e in escrows.items()}})
    assert canonical_state_bytes(fast) == codec.encode(exact)


def test_the_expiry_index_after_many_locks_with_one_expiry_is_the_derived_one() -> None:
    from bazaar.ledger.state import expiry_index

    net = Net()
    txs = [net.tx(user, "escrow_lock", id=bytes([i, j]) * 16, payee=net.acct("bob"), amount=1, expires=50 + i % 2)
           for i, user in enumerate(("alice", "carol", "dave")) for j in range(5)]
    net.commit(txs)
    assert len(net.state.escrows) == 15
    assert dict(net.state.expiring) == expiry_index(net.state.escrows)


def _full_root(state: Any) -> bytes:
    import hashlib

    from bazaar.ledger.state import STATE_DOMAIN

    return hashlib.sha256(STATE_DOMAIN + codec.encode(state.to_canonical())).digest()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(("transfer", "lock", "release", "refund")),
                                   st.integers(0, 3), st.integers(0, 3), st.integers(1, 50)),
                         max_size=6), min_size=1, max_size=6))
def test_a_root_derived_from_the_parents_encoding_is_the_full_encodings(blocks: list[list[Any]]) -> None:
    """Blocks of transfers and escrow locks, releases and refunds (entries added, changed, dropped at zero and
    deleted): every state's root, derived from its parent's sorted entries (docs/adr/0167), is the hash of
    ``codec.encode`` of the whole state."""
    net = Net()
    users = ("alice", "bob", "carol", "dave")
    locked: list[bytes] = []
    for i, ops in enumerate(blocks):
        txs = []
        for j, (op, a, b, amount) in enumerate(ops):
            if op == "transfer":
                txs.append(net.tx(users[a], "transfer", to=net.acct(users[b]), amount=amount))
            elif op == "lock" or not locked:
                eid = bytes([i, j]) * 16
                locked.append(eid)
                txs.append(net.tx(users[a], "escrow_lock", id=eid, payee=net.acct(users[b]), amount=amount,
                                  expires=net.state.height + 2 + amount % 3))
            else:
                eid = locked.pop(amount % len(locked))
                txs.append(net.tx(users[a], "escrow_release" if op == "release" else "escrow_refund", id=eid))
        net.commit(txs)  # a transaction that does not apply is left out of the block
        assert "_sections" in net.state.__dict__
        assert net.state.root() == _full_root(net.state)
