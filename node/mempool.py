"""Pending transactions: signature- and schema-checked, bounded, ordered for block building.

Admission (docs/adr/0082-mempool-admission.md): a peer's transaction is kept only when its nonce is above the
sender's state nonce and at most ``max_gap`` past it, the sender has fewer than ``per_sender`` pending, and the
sender's balance covers what all its pending transactions spend. When the pool is full, a transaction that
cannot apply (a nonce gap) is evicted first, then the newest of the sender holding the most; a peer's
transaction never evicts one of a sender that holds no more than its own sender would. The node's own
transactions (``own=True``) skip the caps and always get a slot: they evict a peer's when the pool is full.
Equivocation evidence has no nonce: it is kept apart, once per punished ``(proposer, height)``, at most
``MAX_EVIDENCE``, offered first, and dropped once the state records the punishment.
A transaction with the nonce of one already pending from its sender replaces it (the sender's latest word: a
node re-signs a nonce it gave up, e.g. after a refused escrow lock); the pool never holds two for one nonce.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from bazaar.ledger.state import State
from bazaar.ledger.txs import reserve_verified, tx_kind
from bazaar.protocol import Envelope, ProtocolError

from .reasons import NodeReason

DEFAULT_CAPACITY = 10_000
"""Peers' transactions a pool keeps when the scenario's ``[chain] mempool`` does not say (docs/adr/0170)."""
VERIFIED_PER_SLOT = 2
"""Verified-transaction cache entries reserved per pool slot (ledger/txs.py): what a full pool admitted is still
remembered when the blocks carrying it are imported, with room for the blocks' other transactions."""
MAX_EVIDENCE = 64
"""Pending ``tx/evidence`` transactions kept at most (one per equivocation)."""
SPENDING_KINDS = ("transfer", "escrow_lock", "stake")
"""Transaction kinds that debit their sender's balance by the body's ``amount``."""


@dataclass(frozen=True)
class PendingTx:
    """A transaction waiting for a block."""

    env: Envelope
    raw: bytes
    nonce: int
    spends: int = 0
    own: bool = False
    digest: bytes = b""
    """The transaction id (``env.digest``, a SHA-256 of the payload: computed once, when it is added)."""


def spends(env: Envelope) -> int:
    """What a transaction debits from its sender's balance when it applies."""
    try:
        kind = tx_kind(env)
    except ProtocolError:  # not a transaction type: it spends nothing
        return 0
    amount = env.body.get("amount") if kind in SPENDING_KINDS else 0
    return amount if isinstance(amount, int) and amount > 0 else 0


def _by_nonce_and_id(p: PendingTx) -> tuple[int, bytes]:
    return p.nonce, p.digest


class Mempool:
    """Transactions by digest, at most ``capacity`` (the node's own may exceed it) and ``per_sender`` each.

    Block building takes them in arrival order, each sender's transactions in nonce order (:meth:`ordered`).
    :attr:`last_refusal` names why the last :meth:`add` returned False (a ``NodeReason`` value).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, per_sender: int = 64, max_gap: int = 64,
                 own: bytes | None = None) -> None:
        self.capacity = DEFAULT_CAPACITY
        self.resize(capacity)
        self.per_sender = per_sender
        self.max_gap = max_gap
        self.own = own
        self.last_refusal = ""
        self.evicted = 0
        self._txs: dict[bytes, PendingTx] = {}
        self._by_sender: dict[bytes, dict[int, PendingTx]] = {}
        self._spent: dict[bytes, int] = {}
        self._gapped: deque[bytes] = deque()  # digests that may not apply (nonce gap), checked lazily
        self._heavy: list[tuple[int, int, bytes]] = []  # (-pending, seq, sender), checked lazily
        self._seq = itertools.count()
        self._evidence: dict[tuple[bytes, int], PendingTx] = {}

    def resize(self, capacity: int) -> None:
        """Keep at most ``capacity`` peers' transactions from now on (the scenario's ``[chain] mempool``), and let
        the process's verified-transaction cache hold ``VERIFIED_PER_SLOT`` times as many. A smaller capacity
        evicts nothing at once: the pool refuses or evicts on the next :meth:`add` as when full.

        Raises:
            ValueError: ``capacity`` < 1.
        """
        if capacity < 1:
            raise ValueError(f"mempool capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        reserve_verified(VERIFIED_PER_SLOT * capacity)

    def __len__(self) -> int:
        return len(self._txs) + len(self._evidence)

    def add_evidence(self, env: Envelope, raw: bytes, key: tuple[bytes, int], state: State) -> bool:
        """Keep a checked ``tx/evidence`` proving that ``key = (proposer, height)`` equivocated; False when the
        state punished it already, we hold evidence for it, or ``MAX_EVIDENCE`` are pending."""
        if key in state.evidence:
            return self._refuse(NodeReason.STALE_NONCE)
        if key in self._evidence:
            return self._refuse(NodeReason.DUPLICATE)
        if len(self._evidence) >= MAX_EVIDENCE:
            return self._refuse(NodeReason.MEMPOOL_FULL)
        self._evidence[key] = PendingTx(env, raw, 0, digest=env.digest)
        return True

    def holds(self, digest: bytes) -> bool:
        """Whether the transaction with this envelope digest is pending."""
        return digest in self._txs

    def pending_of(self, sender: bytes) -> int:
        """How many transactions of ``sender`` are pending."""
        return len(self._by_sender.get(sender, ()))

    def add(self, env: Envelope, raw: bytes, state: State, *, own: bool | None = None) -> bool:
        """Add a decoded transaction; False (not kept, reason in :attr:`last_refusal`) when stale, duplicate,
        too far ahead, unpayable, over the sender's cap or the pool is full of what outranks it."""
        own = env.sender == self.own if own is None else own
        nonce = env.body.get("nonce")
        base = state.nonce(env.sender)
        if not isinstance(nonce, int) or nonce <= base:
            return self._refuse(NodeReason.STALE_NONCE)
        digest = env.digest
        if digest in self._txs:
            return self._refuse(NodeReason.DUPLICATE)
        cost = spends(env)
        replaced = self._by_sender.get(env.sender, {}).get(nonce)  # same sender and nonce: the newer replaces it
        if not own:
            if nonce > base + self.max_gap:
                return self._refuse(NodeReason.NONCE_GAP)
            if self.pending_of(env.sender) - (replaced is not None) >= self.per_sender:
                return self._refuse(NodeReason.SENDER_FULL)
            freed = replaced.spends if replaced is not None else 0
            if self._spent.get(env.sender, 0) - freed + cost > state.balance(env.sender):
                return self._refuse(NodeReason.INSUFFICIENT_FUNDS)
        if replaced is None and len(self._txs) >= self.capacity and not self._evict(state, env.sender, own):
            return self._refuse(NodeReason.MEMPOOL_FULL)
        if replaced is not None:
            self._remove(replaced)
        self._insert(PendingTx(env, raw, nonce, cost, own, digest), state)
        return True

    def _refuse(self, reason: str) -> bool:
        self.last_refusal = reason
        return False

    # ------------------------------------------------------------------ bookkeeping
    def _insert(self, p: PendingTx, state: State) -> None:
        sender = p.env.sender
        self._txs[p.digest] = p
        queue = self._by_sender.setdefault(sender, {})
        queue[p.nonce] = p
        self._spent[sender] = self._spent.get(sender, 0) + p.spends
        if not self._applies(p, state):
            self._gapped.append(p.digest)
        heapq.heappush(self._heavy, (-len(queue), next(self._seq), sender))

    def _remove(self, p: PendingTx) -> None:
        sender = p.env.sender
        del self._txs[p.digest]
        queue = self._by_sender[sender]
        del queue[p.nonce]
        self._spent[sender] -= p.spends
        if queue:
            heapq.heappush(self._heavy, (-len(queue), next(self._seq), sender))
            for later in queue.values():  # what followed it is now behind a gap
                if later.nonce > p.nonce:
                    self._gapped.append(later.digest)
        else:
            del self._by_sender[sender]
            del self._spent[sender]

    def _applies(self, p: PendingTx, state: State) -> bool:
        """Whether nothing is missing before ``p`` (its predecessors are in the state or pending)."""
        base = state.nonce(p.env.sender)
        queue = self._by_sender.get(p.env.sender, {})
        return all(n in queue for n in range(base + 1, p.nonce))

    def _first_missing(self, sender: bytes, state: State) -> int:
        """The lowest nonce above ``sender``'s state nonce that is not pending: exactly its pending transactions
        below it can apply (:meth:`_applies`), in one pass over its queue."""
        queue = self._by_sender.get(sender, {})
        n = state.nonce(sender) + 1
        while n in queue:
            n += 1
        return n

    # ------------------------------------------------------------------ eviction
    def _evict(self, state: State, sender: bytes, own: bool) -> bool:
        """Make room for a transaction of ``sender``; False when nothing it outranks can go."""
        while self._gapped:  # a transaction that cannot apply goes first
            p = self._txs.get(self._gapped.popleft())
            if p is not None and not p.own and not self._applies(p, state):
                self._remove(p)
                self.evicted += 1
                return True
        mine = self.pending_of(sender) + 1
        while self._heavy:
            neg, _, heavy = self._heavy[0]
            queue = self._by_sender.get(heavy, {})
            peers = [p for p in queue.values() if not p.own]
            if -neg != len(queue) or not peers:
                heapq.heappop(self._heavy)  # stale entry (or only own transactions)
                continue
            if not own and (heavy == sender or len(queue) <= mine):
                return False  # a peer's transaction never displaces a sender holding no more than its own
            self._remove(max(peers, key=lambda p: p.nonce))  # the newest: the rest stays applicable
            self.evicted += 1
            return True
        return own  # nothing a peer sent is left: the node's own may exceed the capacity

    # ------------------------------------------------------------------ block building
    def has_applicable(self, state: State) -> bool:
        """Whether some pending transaction is next in its sender's nonce order (a block could carry it)."""
        return bool(self._evidence) or any(state.nonce(sender) + 1 in queue
                                           for sender, queue in self._by_sender.items())

    def ordered(self) -> list[bytes]:
        """Raw transactions in block order: the order they arrived in (a batch — locks, then the settlements that
        depend on them — stays in its order), each sender's own transactions in nonce order."""
        return [p.raw for p in self.ordered_pending()]

    def ordered_pending(self, state: State | None = None) -> list[PendingTx]:
        """The pending transactions (raw and opened) in the order of :meth:`ordered`; with ``state``, only those
        with no nonce gap before them (the others cannot apply on it)."""
        return list(self.iter_pending(state))

    def iter_pending(self, state: State | None = None) -> Iterator[PendingTx]:
        """:meth:`ordered_pending` one at a time, for a caller that stops after a block's worth: each sender's
        queue is sorted when the walk first meets the sender, not the whole pool per proposal. The pool must not
        change while the walk goes on."""
        yield from self._evidence.values()
        queues: dict[bytes, tuple[int | None, list[PendingTx]]] = {}
        for p in list(self._txs.values()):
            sender = p.env.sender
            entry = queues.get(sender)
            if entry is None:
                limit = None if state is None else self._first_missing(sender, state)
                mine = [q for q in self._by_sender[sender].values() if limit is None or q.nonce < limit]
                entry = queues[sender] = (limit, sorted(mine, key=_by_nonce_and_id, reverse=True))
            limit, queue = entry
            if limit is not None and p.nonce >= limit:
                continue  # behind a nonce gap: cannot apply on ``state``
            yield queue.pop()

    def prune(self, state: State) -> None:
        """Drop what a new head made stale (included or superseded nonces) and re-check what can apply."""
        gapped: set[bytes] = set()
        for sender in list(self._by_sender):  # one pass per sender, not per transaction and predecessor
            queue = self._by_sender[sender]
            base = state.nonce(sender)
            for p in [p for n, p in queue.items() if n <= base]:
                self._remove(p)
            if sender in self._by_sender:
                missing = self._first_missing(sender, state)
                gapped.update(p.digest for n, p in queue.items() if n > missing)
        for key in [k for k in self._evidence if k in state.evidence]:
            del self._evidence[key]
        self._gapped = deque(d for d in self._txs if d in gapped)
