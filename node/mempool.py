"""Pending transactions: signature- and schema-checked, bounded, ordered for block building."""

from __future__ import annotations

from dataclasses import dataclass

from bazaar.ledger.state import State
from bazaar.protocol import Envelope


@dataclass(frozen=True)
class PendingTx:
    """A transaction waiting for a block."""

    env: Envelope
    raw: bytes
    nonce: int


class Mempool:
    """Transactions by digest, at most ``capacity`` and ``per_sender`` each.

    Only transactions that can still apply (nonce above the sender's state nonce) are kept; block building
    takes them in arrival order, each sender's transactions in nonce order (:meth:`ordered`).
    """

    def __init__(self, capacity: int = 10_000, per_sender: int = 64) -> None:
        self.capacity = capacity
        self.per_sender = per_sender
        self._txs: dict[bytes, PendingTx] = {}

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, env: Envelope, raw: bytes, state: State) -> bool:
        """Add a decoded transaction; False (not kept) when stale, duplicate or over a cap."""
        nonce = env.body.get("nonce")
        if not isinstance(nonce, int) or nonce <= state.nonce(env.sender):
            return False
        if env.digest in self._txs or len(self._txs) >= self.capacity:
            return False
        if sum(1 for p in self._txs.values() if p.env.sender == env.sender) >= self.per_sender:
            return False
        self._txs[env.digest] = PendingTx(env, raw, nonce)
        return True

    def ordered(self) -> list[bytes]:
        """Raw transactions in block order: the order they arrived in (a batch — locks, then the settlements that
        depend on them — stays in its order), each sender's own transactions in nonce order."""
        return [p.raw for p in self.ordered_pending()]

    def ordered_pending(self) -> list[PendingTx]:
        """The pending transactions (raw and opened) in the order of :meth:`ordered`."""
        arrived = list(self._txs.values())
        queues: dict[bytes, list[PendingTx]] = {}
        for p in sorted(arrived, key=lambda p: (p.nonce, p.env.digest), reverse=True):
            queues.setdefault(p.env.sender, []).append(p)
        return [queues[p.env.sender].pop() for p in arrived]

    def prune(self, state: State) -> None:
        """Drop what a new head made stale (included or superseded nonces)."""
        self._txs = {d: p for d, p in self._txs.items() if p.nonce > state.nonce(p.env.sender)}
