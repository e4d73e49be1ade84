"""The transfer handler reads a balance the block already wrote from the overlay's changes directly (ADR 0169):
it must equal the same handler through ``Overlay.get`` / ``Overlay.set`` on any sequence of transfers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.ledger.amounts import MAX_AMOUNT
from bazaar.ledger.errors import InvalidTx, LedgerReason
from bazaar.ledger.execute import Draft, _transfer
from bazaar.protocol.envelope import Envelope

from .helpers import Net


def _reference(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    """The handler as written before: one overlay call per read and write."""
    amount, to, sender, balances = body["amount"], body["to"], env.sender, draft.balances
    have = int(balances.get(sender, 0))
    if have < amount:
        raise InvalidTx(LedgerReason.INSUFFICIENT_FUNDS, f"balance {have} < {amount}")
    dest = have if to == sender else int(balances.get(to, 0))
    if dest + amount > MAX_AMOUNT:
        raise InvalidTx(LedgerReason.OVERFLOW, "recipient balance would overflow")
    balances.set(sender, have - amount)
    balances.set(to, (have - amount if to == sender else dest) + amount)


NET = Net()
ACCOUNTS = [NET.acct(u) for u in ("alice", "bob", "carol", "dave")] + [bytes([7]) * 32]  # the last holds nothing

_steps = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "delete", "set"]),
        st.integers(0, len(ACCOUNTS) - 1),
        st.integers(0, len(ACCOUNTS) - 1),
        st.sampled_from([1, 2, 999_999, 1_000_000, 1_000_001, MAX_AMOUNT - 5, MAX_AMOUNT]),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_fast_transfer_equals_the_overlay_calls(steps: list[tuple[str, int, int, int]]) -> None:
    fast, slow = Draft(NET.state, 1), Draft(NET.state, 1)
    for op, a, b, amount in steps:
        sender, to = ACCOUNTS[a], ACCOUNTS[b]
        if op == "delete":  # a deleted entry in the changes: both must fall back to the overlay's reading
            fast.balances.delete(sender)
            slow.balances.delete(sender)
            continue
        if op == "set":
            fast.balances.set(sender, amount)
            slow.balances.set(sender, amount)
            continue
        body = {"to": to, "amount": amount, "nonce": 1}
        env = Envelope("tx/transfer", "", 0, sender, 1, 0, body, b"", b"")
        outcome: list[object] = []
        for draft, handler in ((fast, _transfer), (slow, _reference)):
            try:
                handler(draft, env, body)
                outcome.append(None)
            except InvalidTx as err:
                outcome.append((err.reason, str(err)))
        assert outcome[0] == outcome[1]
        assert fast.balances.changes == slow.balances.changes
