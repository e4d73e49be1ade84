"""What every cloudchain node shares: the roster and rules, the books it folds from the chain (one per recent
head), the contract hooks (admission, the proposer's transactions, the re-execution every validator runs), the
blob store, and the log of settled tasks the leader reports from."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Container, Sequence
from typing import Any

from bazaar.ledger.amounts import to_units
from bazaar.ledger.apply import apply as apply_block
from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock, LedgerError
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import Envelope, ProtocolError, codec
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.markets import cloudchain as msg
from bazaar.protocol.transport import RejectRequest

from ...reasons import NodeReason
from ..app import Role, batch_complete, block_check, block_propose, on_block, tx_admit
from ..context import Refuse, RequestFailed, RoleContext
from .book import CONTRACT_RECORDS, Book, Entry, Rules, task_key, task_of, verify_block
from .config import CloudchainConfig

PROVIDER, REQUESTER, ORACLE = "provider", "requester", "oracle"
KEEP_BOOKS = 64
"""Books kept for recent heads (a node re-folds from its chain when it needs an older one)."""
TASKS_HEARD_KEPT = 4096
"""Keys of admitted task and result records kept for :meth:`CloudchainRole.window_complete` and
:meth:`CloudchainRole.results_complete` (oldest dropped first)."""


MAX_BLOBS_PER_REQUEST = 16
"""Blobs one request of the blob protocol may ask for (an oracle fetches the models and metadata of a provider's
results of a round at once, docs/adr/0164)."""
MAX_BLOB_BATCH = 12 << 20
"""Bytes one request of the blob protocol may ask for in all (an answer must fit one frame of the transport)."""
DECODED_KEPT = 32
"""Blocks whose opened transactions :func:`decode_all` keeps (per process)."""
_DECODED: OrderedDict[bytes, tuple[Envelope, ...] | None] = OrderedDict()


def decode_all(block: Block, network_id: str) -> list[Envelope] | None:
    """The block's transactions, opened (None when one does not open: the ledger refuses the block itself).

    A node's contract check, its book and each role's block handlers all read the same block, and in one process
    (``bazaar sim``, the in-memory tests) so does every replica: the opened transactions of the last
    ``DECODED_KEPT`` blocks are kept, keyed by the SHA-256 of the network id and the transactions' bytes (not
    the header, which a peer could pair with other transactions), and shared. Callers only read them."""
    h = hashlib.sha256(network_id.encode() + b"\x00")
    for raw in block.txs:
        h.update(len(raw).to_bytes(4, "big"))
        h.update(raw)
    key = h.digest()
    if key in _DECODED:
        _DECODED.move_to_end(key)
        kept = _DECODED[key]
        return None if kept is None else list(kept)
    try:
        txs: tuple[Envelope, ...] | None = tuple(decode_tx(raw, network_id) for raw in block.txs)
    except ProtocolError:
        txs = None
    _DECODED[key] = txs
    while len(_DECODED) > DECODED_KEPT:
        _DECODED.popitem(last=False)
    return None if txs is None else list(txs)


def settled_in(block: Block, network_id: str) -> list[tuple[bytes, str]]:
    """``(task key, verdict)`` of every task the block's contract settled."""
    out: list[tuple[bytes, str]] = []
    for t in decode_all(block, network_id) or []:
        if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] == msg.SETTLE \
                and t.sender == block.header.proposer:
            out.extend((row[0], str(row[1])) for row in t.body["data"]["tasks"])
    return out


class BlobStore:
    """Content-addressed bytes kept in memory and served to peers by hash (only hashes go on chain)."""

    def __init__(self, ctx: RoleContext, keep: int = 1024) -> None:
        self.ctx = ctx
        self.keep = keep
        self._blobs: OrderedDict[bytes, bytes] = OrderedDict()
        self.fetched = 0
        self.fetched_bytes = 0
        ctx.set_protocol(msg.BLOB_PROTOCOL, self.serve)

    def put(self, data: bytes) -> bytes:
        """Keep ``data``; returns its SHA-256."""
        h = hashlib.sha256(data).digest()
        self._blobs[h] = data
        self._blobs.move_to_end(h)
        while len(self._blobs) > self.keep:
            self._blobs.popitem(last=False)
        return h

    def get(self, h: bytes) -> bytes | None:
        """The blob with hash ``h`` if held."""
        return self._blobs.get(h)

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        """``{hash}`` -> ``{data}``, or ``{hashes: [..]}`` (at most ``MAX_BLOBS_PER_REQUEST``, ``MAX_BLOB_BATCH`` bytes
        in all) -> ``{data: [..]}``."""
        try:
            req = codec.decode(request, max_size=64 + 40 * MAX_BLOBS_PER_REQUEST)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if isinstance(req, dict) and set(req) == {"hashes"} and isinstance(req["hashes"], list) \
                and 1 <= len(req["hashes"]) <= MAX_BLOBS_PER_REQUEST and all(isinstance(h, bytes)
                                                                           for h in req["hashes"]):
            blobs = [self.get(h) for h in req["hashes"]]
            if any(b is None for b in blobs):
                raise RejectRequest(NodeReason.UNKNOWN_CONTENT)
            if sum(len(b) for b in blobs if b is not None) > MAX_BLOB_BATCH:
                raise RejectRequest(ProtocolReason.OVERSIZE)
            return codec.encode({"data": blobs})
        if not isinstance(req, dict) or set(req) != {"hash"} or not isinstance(req["hash"], bytes):
            raise RejectRequest(ProtocolReason.MALFORMED)  # want {hash: bytes} or {hashes: [bytes]}
        data = self.get(req["hash"])
        if data is None:
            raise RejectRequest(NodeReason.UNKNOWN_CONTENT)
        return codec.encode({"data": data})

    async def fetch(self, h: bytes, holder: bytes, *, size: int, timeout: float) -> bytes:
        """The blob with hash ``h`` from ``holder`` (checked against the hash and the size).

        Raises:
            RequestFailed: no answer, or bytes that do not match.
        """
        return (await self.fetch_many([(h, size)], holder, timeout=timeout))[0]

    async def fetch_many(self, wanted: Sequence[tuple[bytes, int]], holder: bytes, *, timeout: float) -> list[bytes]:
        """The blobs ``(hash, size)`` from ``holder`` in one request (those we hold are not asked for), each checked
        against its hash and size.

        Raises:
            RequestFailed: no answer, or bytes that do not match.
        """
        out: dict[bytes, bytes] = {h: b for h, _ in wanted if (b := self.get(h)) is not None}
        ask = [(h, size) for h, size in dict(wanted).items() if h not in out]
        if len(ask) > MAX_BLOBS_PER_REQUEST or any(size > msg.MAX_BLOB for _, size in ask) \
                or sum(size for _, size in ask) > MAX_BLOB_BATCH:
            raise RequestFailed("bad-answer", f"more than {MAX_BLOBS_PER_REQUEST} blobs, one > {msg.MAX_BLOB} bytes "
                                              f"or > {MAX_BLOB_BATCH} bytes in all")
        if ask:
            req = {"hash": ask[0][0]} if len(ask) == 1 else {"hashes": [h for h, _ in ask]}
            raw = await self.ctx.request_raw(holder, msg.BLOB_PROTOCOL, codec.encode(req), timeout=timeout)
            try:
                answer = codec.decode(raw, max_size=len(ask) * (msg.MAX_BLOB + 64))
            except Exception as err:
                raise RequestFailed("bad-answer", str(err)[:200]) from err
            data = answer.get("data") if isinstance(answer, dict) else None
            got = [data] if len(ask) == 1 else data
            if not isinstance(got, list) or len(got) != len(ask):
                raise RequestFailed("bad-answer", "not one blob per hash asked")
            for (h, size), blob in zip(ask, got, strict=True):
                if not isinstance(blob, bytes) or len(blob) != size or hashlib.sha256(blob).digest() != h:
                    raise RequestFailed("bad-answer", "blob does not match its hash or size")
                out[h] = blob
                self.fetched += 1
                self.fetched_bytes += len(blob)
        return [out[h] for h, _ in wanted]


def _posted_in(txs: Sequence[Envelope]) -> dict[bytes, Entry]:
    """Task key -> the open entry of every task record in ``txs`` (for the report: funding is the book's)."""
    out: dict[bytes, Entry] = {}
    for t in txs:
        if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] == msg.TASK:
            try:
                task, seed, dataset = task_of(t.body["data"])
            except Refuse:
                continue
            key = task_key(t.sender, task.id)
            out[key] = Entry(key, t.sender, t.round, task, seed, dataset, 0)
    return out


def window_complete(book: Book, expect: frozenset[bytes], heard: Container[bytes]) -> bool:
    """Every task a window names was heard (admitted to the mempool) or is on chain in ``book``."""
    return all(k in heard or k in book.tasks or k in book.closed for k in expect)


def results_complete(book: Book, heard: Container[bytes]) -> bool:
    """Some allocated task in ``book`` still has no result on chain, and every such task's result was heard."""
    waiting = [k for k, e in book.tasks.items() if e.state == "allocated" and not e.result]
    return bool(waiting) and all(k in heard for k in waiting)


def _note_key(kept: OrderedDict[bytes, None], key: bytes) -> None:
    """Remember ``key`` (newest last), forgetting the oldest beyond ``TASKS_HEARD_KEPT``."""
    kept[key] = None
    kept.move_to_end(key)
    while len(kept) > TASKS_HEARD_KEPT:
        kept.popitem(last=False)


class CloudchainRole(Role):
    """Roster, rules, books and the contract hooks; every node follows the chain's cloudchain records."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.cfg: CloudchainConfig = ctx.settings
        self.oracles = tuple(e.key for e in ctx.peers(ORACLE))
        self.rules = Rules(network_id=ctx.network_id, oracles=self.oracles, leader=self.oracles[0],
                           quorum=self.cfg.quorum, oracle_fee=self.cfg.oracle_fee, wrong_factor=self.cfg.wrong_factor,
                           max_faults=self.cfg.max_faults, task_expiry=self.cfg.task_expiry,
                           dp_budget=self.cfg.dp_budget, dp_delta=self.cfg.dp_delta, clip=self.cfg.clip,
                           dispute_blocks=self.cfg.dispute_blocks,
                           dispute_deposit=to_units(self.cfg.dispute_deposit))
        self.books: OrderedDict[bytes, Book] = OrderedDict()
        self.settled: dict[bytes, dict[str, Any]] = {}
        """Task key -> how it ended (from the chain): the leader's round report reads it."""
        self._window: tuple[int, frozenset[bytes]] | None = None
        """The leader's last admitted window record that names its tasks: (its nonce, the expected task keys)."""
        self._tasks_heard: OrderedDict[bytes, None] = OrderedDict()
        """Keys of the task records our mempool admitted (newest last)."""
        self._results_heard: OrderedDict[bytes, None] = OrderedDict()
        """Keys of the tasks whose result record our mempool admitted (newest last)."""
        self._refold()

    # ------------------------------------------------------------------ books
    def _refold(self) -> None:
        """Fold every stored block from genesis (at start, and when a fork choice left no kept book)."""
        chain = self.ctx.chain
        state = State.from_genesis(chain.state.genesis)
        book = Book()
        self.books.clear()
        self.books[state.head] = book
        for h in range(1, chain.height + 1):
            block = chain.block(h)
            if block is None:
                break
            txs = decode_all(block, self.ctx.network_id) or []
            book = self._fold(book, state, txs, block)
            try:
                state = apply_block(state, block)
            except LedgerError:
                break
            self._keep(block.header.hash, book)

    def _fold(self, book: Book, parent: State, txs: list[Envelope], block: Block) -> Book:
        new = book.apply(parent, txs, block.header.proposer, block.header.height, self.rules)
        self._note(book, new, txs, block)
        return new

    def _keep(self, head: bytes, book: Book) -> None:
        self.books[head] = book
        self.books.move_to_end(head)
        while len(self.books) > KEEP_BOOKS:
            self.books.popitem(last=False)

    def book_at(self, head: bytes) -> Book:
        """The book after the block with hash ``head`` (re-folded from the chain when not kept)."""
        book = self.books.get(head)
        if book is None:
            self._refold()
            book = self.books.get(head)
        if book is None:
            raise InvalidBlock("market-contract", "no cloudchain book for the parent block")
        return book

    @property
    def book(self) -> Book:
        """The book at our head."""
        return self.book_at(self.ctx.chain.state.head)

    def _note(self, old: Book, new: Book, txs: Sequence[Envelope], block: Block) -> None:
        """Log how settled and unserved tasks ended (for reports; not part of the contract)."""
        for t in txs:
            if t.type != "tx/record" or t.market != msg.MARKET or t.body["kind"] not in CONTRACT_RECORDS \
                    or t.sender != block.header.proposer:
                continue
            data = t.body["data"]
            if t.body["kind"] == msg.ALLOC:
                posted = _posted_in(txs)  # tasks the same block posted and allocated (docs/adr/0187)
                for key, prov in zip(data["tasks"], data["providers"], strict=True):
                    e = old.tasks.get(key) or posted.get(key)
                    if e is not None and not prov:
                        self.settled[key] = {"round": e.round, "task": e.task.id, "requester": e.requester,
                                             "provider": None, "verdict": "unserved", "paid": 0, "penalty": 0,
                                             "fee": 0, "height": block.header.height, "units": e.task.units}
            elif t.body["kind"] == msg.RESETTLE:
                for key, ruling, delta in data["tasks"]:
                    if key in self.settled and ruling:
                        self.settled[key] = {**self.settled[key], "ruling": ruling, "resettled": delta}
            else:  # a settlement: the task as the block closed it (a quorum record in the same block decided it,
                # docs/adr/0186; the parent's book still has it allocated)
                for key, verdict, paid, penalty, fee in data["tasks"]:
                    e = new.closed.get(key) or old.tasks.get(key)
                    if e is None:
                        continue
                    self.settled[key] = {
                        "round": e.round, "task": e.task.id, "requester": e.requester, "provider": e.provider,
                        "verdict": verdict, "paid": paid, "penalty": penalty, "fee": fee, "price": e.price,
                        "units": e.task.units, "kind": e.task.kind, "private": e.task.epsilon is not None,
                        "signers": list(e.signers), "dissent": list(e.dissent), "rtt_ms": list(e.rtt_ms),
                        "completion_ms": list(e.completion_ms), "height": block.header.height,
                        "alloc_height": e.alloc_height, "value": e.task.value,
                        "deadline_s": e.task.sla.deadline_s}

    # ------------------------------------------------------------------ contract hooks
    @tx_admit
    def admit(self, state: State, env: Envelope) -> None:
        """The market's rules for a cloudchain record against our head (an admitted window that names its tasks, and
        every admitted task, are noted for :meth:`window_complete`)."""
        if env.type == "tx/record" and env.market == msg.MARKET:
            self.book_at(state.head).admit(state, env, self.rules)
            kind, data = env.body["kind"], env.body["data"]
            if kind == msg.TASK and isinstance(data.get("id"), str):
                _note_key(self._tasks_heard, task_key(env.sender, data["id"]))
            elif kind == msg.RESULT and isinstance(data.get("task"), bytes):
                _note_key(self._results_heard, data["task"])
            elif kind == msg.WINDOW and env.sender == self.rules.leader and isinstance(data.get("expect"), list):
                self._window = (int(env.body["nonce"]), frozenset(k for k in data["expect"] if isinstance(k, bytes)))

    @batch_complete
    def window_complete(self, state: State) -> bool | None:
        """While the leader's window that names the round's tasks is pending in our mempool: True once every task
        it names is heard too (or on chain already) — the block that carries them is complete, its proposer need
        not wait out its quiet window — and False before, so that it holds on for the rest (at most its batch
        wait) instead of sealing half the round's tasks. None when no such window is pending (docs/adr/0185)."""
        window = self._window
        if window is None or state.nonce(self.rules.leader) >= window[0]:
            return None  # no such window, or it is on chain already
        return window_complete(self.book_at(state.head), window[1], self._tasks_heard)

    @batch_complete
    def results_complete(self, state: State) -> bool | None:
        """True when every allocated task still without a result on chain has its result record in our mempool:
        the block that carries the providers' results is complete (docs/adr/0185). Otherwise None, never a hold:
        a provider that never posts (failed, silent) must not hold every block; the proposer waits its quiet
        window as before."""
        return results_complete(self.book_at(state.head), self._results_heard) or None

    @block_propose
    def contract_txs(self, parent: State, txs: Sequence[Envelope]) -> list[tuple[str, dict[str, Any]]]:
        """The contract's transactions for a block we propose on ``parent`` that carries ``txs`` before them (the
        book caches them per head and quorum records)."""
        return self.book_at(parent.head).contract_work(parent, self.rules, txs)

    @block_check
    def contract_holds(self, parent: State, block: Block) -> None:
        """Re-execute the contract: the block's allocation, settlements and escrow moves must be exactly what the
        parent's book derives, and every other cloudchain record must pass the market's rules."""
        txs = decode_all(block, self.ctx.network_id)
        if txs is None:
            return
        book = self.book_at(parent.head)
        new = verify_block(book, parent, txs, block.header.proposer, block.header.height, self.rules)
        # a checked block is only a candidate (it may lose a fork): its outcomes are logged once it is our head
        self._keep(block.header.hash, new)

    @on_block
    def follow(self, block: Block) -> None:
        """Keep the book of every new head (folded now if the block came certified, without the checks), and log
        how its tasks ended — from the blocks of our chain only, never from a checked candidate that lost a fork
        (docs/adr/0153: a candidate's refunds had ended a round that the chain then served)."""
        parent_book = self.books.get(block.header.parent)
        checked = self.books.get(block.header.hash)
        if checked is not None:
            if parent_book is None:
                self._refold()
            else:
                self._note(parent_book, checked, decode_all(block, self.ctx.network_id) or [], block)
            return
        if parent_book is None or self.ctx.chain.state.head != block.header.hash:
            self._refold()
            return
        txs = decode_all(block, self.ctx.network_id) or []
        # the state after the block funds a task exactly as the parent's does (Book.apply)
        self._keep(block.header.hash, self._fold(parent_book, self.ctx.chain.state, txs, block))

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        book = self.book
        return {"providers": len(book.providers), "open_tasks": len(book.tasks), "settled_tasks": len(self.settled)}


def probe_window(bound_ms: float, called_ms: int, now_ms: int) -> float:
    """Seconds a probe of the day's call started at ``now_ms`` waits for an answer: until the call's stamp plus the
    SLA's latency bound, the same instant for every oracle however late the call reached it (docs/adr/0191), and
    never less than half the bound (a clock far ahead of the leader's) nor more than the bound (one behind it)."""
    bound = bound_ms / 1000
    return min(bound, max(bound / 2, bound - (now_ms - called_ms) / 1000))
