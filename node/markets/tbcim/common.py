"""What every tbcim node shares: the roster, the blob store, the task books it keeps from the chain's tbcim
records, and — for the edge servers, the validators — the market contract every block must pass.

The contract (``@block_check``; docs/models/tbcim-network.md):

* an **auction** record (the requester's) must re-derive: the task and every bid verify, every report in a bid
  is consistent with its histogram, the kept EDs and the profile follow from them; RANet and the draw give the
  winners; the block's payment locks are exactly the winners' payments, and the proposer ``weights`` record is
  exactly the winners' revenue shares;
* a **lower** record (a winning ES's) carries its EDs' signed answers; its fee locks are exactly ``V_i``;
* an **epoch** record (the requester's) carries the ESs' signed verdicts on the EDs' signed updates; every ES
  re-executes the filter on each update and FedAvg on the accepted ones from the update blobs, and refuses the
  block when a verdict or the new global model's hash differs;
* the task's escrows are released only with or after its **final** record (after the last epoch), and the
  requester (their arbiter) cannot take a payment or a fee back before the escrow expires: only its payee may
  give it up, or its payer be refunded after expiry.

Records settle in order (the requester and the ESs wait for the previous step to be on chain), so a block
never needs a record that is not on chain yet.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.execute import parse_weights
from bazaar.ledger.state import State
from bazaar.ledger.txs import WEIGHTS_RECORD, decode_tx
from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.tbcim import market as mk
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.markets import tbcim as msg

from ..app import Role, on_block
from ..context import Refuse, RequestFailed, RoleContext
from .blobs import BlobStore, Note
from .config import TbcimSettings
from .contract import (
    Auction,
    EpochResult,
    MissingBlob,
    Roster,
    TaskBook,
    Update,
    derive_auction,
    escrow_id,
    escrow_ref,
    open_signed,
    parse_lower,
    parse_update,
)

REQUESTER, ES, ED = "requester", "es", "ed"
T = TypeVar("T")
FETCH_TIMEOUT_S = 3.0
INLINE_VALUES = 1 << 12
"""Largest model (values) whose re-execution runs on the event loop: the filter and FedAvg are O(updates x history x
values) with exactly rounded sums; the shipped softmax model (650 values) re-executes a 5-update epoch in ~2 ms."""
FOLLOWED_KEPT = 64
"""Hashes of the last blocks followed (a block is followed once)."""


def revenue_weights(paid: dict[int, float]) -> dict[int, int]:
    """The proposer weights of a task: each winner's share of the payments, in millionths (at least 1)."""
    total = math.fsum(paid.values())
    if total <= 0:
        return {}
    return {s: max(1, round(1e6 * v / total)) for s, v in sorted(paid.items())}


class TbcimRole(Role):
    """Roster, blobs and the task books; every node follows the chain's tbcim records."""

    def __init__(self, ctx: RoleContext, *, pushers: Callable[[], Sequence[bytes]] = tuple,
                 on_note: Note | None = None) -> None:
        super().__init__(ctx)
        self.settings: TbcimSettings = ctx.settings
        self.cfg = self.settings.market
        self.roster = Roster(ctx.peers(REQUESTER)[0].key, tuple(e.key for e in ctx.peers(ES)),
                             tuple(e.key for e in ctx.peers(ED)), self.cfg.home)
        self.blobs = BlobStore(ctx, pushers, on_note)
        self.books: dict[int, TaskBook] = {}
        self._followed: OrderedDict[bytes, None] = OrderedDict()
        self._cosines: dict[tuple[bytes, bytes], float] = {}
        self._data: mk.TaskData | None = None
        self._loading = trio.Lock()
        self.init_model = mk.initial_model(self.cfg)
        self.init_hash = self.blobs.put(self.init_model)
        chain = ctx.chain
        for h in range(1, chain.height + 1):  # a restarted node rebuilds its books from its stored chain
            block = chain.block(h)
            if block is not None:
                self.follow(block)

    async def load_data(self) -> None:
        """Load the data split off the event loop at start-up (the digits and the split take a second or two on
        a busy machine: a first report must not miss its deadline for it)."""
        async with self._loading:
            if self._data is None:
                await self.ctx.compute(lambda: self.data)

    @property
    def data(self) -> mk.TaskData:
        """The market's data split (loaded on first use)."""
        if self._data is None:
            self._data = mk.task_data(self.cfg)
        return self._data

    def weights_of(self, auction: Auction) -> list[list[Any]]:
        """Revenue-share proposer weights by ES account."""
        return [[self.roster.es[s], w] for s, w in revenue_weights(auction.allocation.paid).items()]

    def from_requester(self, env: Envelope) -> None:
        """Refuse a task message not signed by the requester."""
        if env.sender != self.roster.requester:
            raise Refuse("not-authorised", f"{env.type} must come from the requester")

    # ------------------------------------------------------------------ following the chain
    def records(self, block: Block) -> list[Envelope]:
        """The block's tbcim records, in block order."""
        out = []
        for raw in block.txs:
            try:
                tx = decode_tx(raw, self.ctx.network_id)
            except ProtocolError:
                continue
            if tx.type == "tx/record" and tx.market == msg.MARKET and tx.body["kind"] != WEIGHTS_RECORD:
                out.append(tx)
        return out

    @on_block
    def follow(self, block: Block) -> None:
        """Advance the task books with the block's records (already checked by the contract or certified); a block
        reported twice (a block synced and gossiped at once after a restart) is followed once."""
        if block.hash in self._followed:
            return
        self._followed[block.hash] = None
        while len(self._followed) > FOLLOWED_KEPT:
            self._followed.popitem(last=False)
        for rec in self.records(block):
            try:
                self.apply_record(rec)
            except (Refuse, MechanismError, KeyError, ValueError, TypeError) as err:
                self.ctx.events.error("book.unreadable", kind=rec.body["kind"], error=str(err)[:200])

    def apply_record(self, rec: Envelope) -> None:
        """One record into the books (trusting it: it is on chain)."""
        kind, data = rec.body["kind"], rec.body["data"]
        if kind == msg.AUCTION_RECORD:
            auction = derive_auction(data["task"], data["bids"], self.ctx.network_id, self.roster, self.cfg.data_unit)
            self.books[auction.task] = TaskBook(auction, model=self.init_hash)
        elif kind == msg.LOWER_RECORD:
            book = self.books[data["task"]]
            low = parse_lower(rec.sender, data, self.ctx.network_id, self.roster, book.auction, self.cfg.kappa)
            book.lowers[low.es] = low
        elif kind == msg.EPOCH_RECORD:
            book = self.books[data["task"]]
            updates, accepted, scores = self.verdicts_of(data, book)
            book.settle_epoch(self.cfg, EpochResult(updates, accepted, scores, np.empty(0), data["model"]))
        elif kind == msg.FINAL_RECORD:
            self.books[data["task"]].final = True

    def verdicts_of(self, data: dict[str, Any], book: TaskBook) -> tuple[list[Update], list[bool],
                                                                           list[float | None]]:
        """The updates of an epoch record with the ESs' verdicts, in ED order.

        Raises:
            Refuse: a verdict not signed by a winning ES, or an update not of one of its workers.
        """
        rows: list[tuple[Update, bool, float | None]] = []
        for w in data["verdicts"]:
            env = open_signed(w, self.ctx.network_id, msg.MSG_VERDICTS)
            if env.sender not in self.roster.es or self.roster.es.index(env.sender) not in book.lowers:
                raise Refuse("not-authorised", "verdicts not signed by a winning edge server")
            s = self.roster.es.index(env.sender)
            b = env.body
            if b["task"] != book.task or b["epoch"] != data["epoch"]:
                raise Refuse("wrong-epoch", "verdicts of another epoch")
            if not len(b["updates"]) == len(b["accepted"]) == len(b["scores"]):
                raise Refuse("bad-verdicts", "updates, verdicts and scores differ in length")
            for uw, ok, score in zip(b["updates"], b["accepted"], b["scores"], strict=True):
                u = parse_update(uw, self.ctx.network_id, self.roster, book.task, data["epoch"])
                if self.roster.home[u.ed] != s:
                    raise Refuse("not-authorised", "a verdict on another ES's edge device")
                rows.append((u, bool(ok), None if score is None else float(score)))
        rows.sort(key=lambda r: r[0].ed)
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    # ------------------------------------------------------------------ blobs the contract needs
    def needed(self, book: TaskBook, updates: list[Update]) -> list[tuple[bytes, list[bytes]]]:
        """``(hash, holders)`` of every blob an epoch's re-execution reads: the parent model, the updates and
        their EDs' filter history."""
        req = self.roster.requester
        out: list[tuple[bytes, list[bytes]]] = [(book.model, [req])]
        for u in updates:
            es = self.roster.es[self.roster.home[u.ed]]
            holders = [es, req, self.roster.ed[u.ed]]
            out.append((u.hash, holders))
            out += [(h, holders) for h in book.history.get(u.ed, ())]
        return out

    async def ensure(self, wanted: list[tuple[bytes, list[bytes]]]) -> None:
        """Fetch every wanted blob we do not hold, concurrently (failures are left to the contract to report)."""
        missing = {h: holders for h, holders in wanted if self.blobs.get(h) is None}

        async def one(h: bytes, holders: list[bytes]) -> None:
            try:
                await self.blobs.fetch(h, holders, size=None, timeout=FETCH_TIMEOUT_S)
            except RequestFailed as err:
                self.ctx.events.warning("blob.unavailable", hash=h.hex()[:16], reason=err.reason)

        async with trio.open_nursery() as nursery:
            for h, holders in missing.items():
                nursery.start_soon(one, h, holders)

    def blob(self, h: bytes) -> np.ndarray:
        """A held blob (raises :class:`MissingBlob`)."""
        w = self.blobs.get(h)
        if w is None:
            raise MissingBlob(h)
        return w

    def reexecute(self, book: TaskBook, updates: list[Update]) -> EpochResult:
        """The FedAvg contract on an epoch's updates (raises ``MissingBlob`` or ``Refuse``)."""
        return book.epoch_result(self.cfg, updates, self.blob, self.blob(book.model), self._cosines)

    async def contract_run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the contract's re-execution (``fn(*args)``) on the event loop when the model is small — the block
        check runs it there anyway, and a thread's hop costs more than the work on a loaded machine — and off it
        (``ctx.compute``) for a larger model."""
        if self.init_model.size > INLINE_VALUES:
            return cast(T, await self.ctx.compute(fn, *args))
        await trio.lowlevel.checkpoint()
        return fn(*args)

    def check_block(self, parent: State, block: Block) -> None:
        """The market contract (module docstring); raises ``InvalidBlock``."""
        txs: list[Envelope] = []
        for raw in block.txs:
            try:
                txs.append(decode_tx(raw, self.ctx.network_id))
            except ProtocolError:
                return  # the ledger refuses the block itself
        allowed_locks: dict[bytes, tuple[bytes, bytes, int]] = {}
        allowed_refunds: set[bytes] = set()
        final_tasks = {t for t, b in self.books.items() if b.final}
        weights_expected: list[list[Any]] | None = None
        seen_lowers: set[tuple[int, int]] = set()
        for rec in txs:
            if rec.type != "tx/record" or rec.market != msg.MARKET or rec.body["kind"] == WEIGHTS_RECORD:
                continue
            try:
                kind, data = rec.body["kind"], rec.body["data"]
                if kind == msg.AUCTION_RECORD:
                    weights_expected = self._check_auction(rec, data, allowed_locks, allowed_refunds)
                elif kind == msg.LOWER_RECORD:
                    self._check_lower(rec, data, allowed_locks, seen_lowers)
                elif kind == msg.EPOCH_RECORD:
                    self._check_epoch(rec, data)
                elif kind == msg.FINAL_RECORD:
                    book = self.books.get(data["task"])
                    if rec.sender != self.roster.requester or book is None or book.epochs < self.cfg.epochs:
                        raise Refuse("early-final", "a final record before the task's last epoch settled")
                    final_tasks.add(book.task)
                else:
                    raise Refuse("unknown-record", f"unknown tbcim record {kind!r}")
            except (Refuse, MechanismError, KeyError, TypeError, ValueError) as err:
                raise InvalidBlock("market-contract", f"{rec.body.get('kind')}: {err}") from err
            except MissingBlob as err:
                raise InvalidBlock("market-contract", f"update blob {err} unavailable: FedAvg cannot re-run") from err
        self._check_escrows(parent, txs, allowed_locks, allowed_refunds, final_tasks)
        weights = [t for t in txs if t.type == "tx/record" and t.body["kind"] == WEIGHTS_RECORD]
        if weights:
            if weights_expected is None or len(weights) != 1 or not weights_expected:
                raise InvalidBlock("market-contract", "a proposer weights record without the auction it follows")
            try:
                published = parse_weights(weights[0].body["data"])
            except Exception as err:
                raise InvalidBlock("market-contract", f"bad weights record: {err}") from err
            if published != {bytes(a): int(w) for a, w in weights_expected}:
                raise InvalidBlock("market-contract", "proposer weights differ from the winners' revenue shares")

    def _check_auction(self, rec: Envelope, data: dict[str, Any], locks: dict[bytes, tuple[bytes, bytes, int]],
                       refunds: set[bytes]) -> list[list[Any]]:
        if rec.sender != self.roster.requester:
            raise Refuse("not-authorised", "auction record not signed by the requester")
        auction = derive_auction(data["task"], data["bids"], self.ctx.network_id, self.roster, self.cfg.data_unit)
        if auction.task in self.books:
            raise Refuse("duplicate", f"task {auction.task} was already auctioned")
        req = self.roster.requester
        budget = escrow_id("budget", auction.task, req)
        locks[budget] = (req, req, to_units(auction.task_env.body["budget"]))
        refunds.add(budget)
        for s, units in auction.paid_units().items():
            es = self.roster.es[s]
            locks[escrow_id("pay", auction.task, es)] = (req, es, units)
        return self.weights_of(auction)

    def _check_lower(self, rec: Envelope, data: dict[str, Any], locks: dict[bytes, tuple[bytes, bytes, int]],
                     seen: set[tuple[int, int]]) -> None:
        book = self.books.get(data["task"])
        if book is None:
            raise Refuse("unknown-task", f"lower record of task {data['task']} before its auction")
        low = parse_lower(rec.sender, data, self.ctx.network_id, self.roster, book.auction, self.cfg.kappa)
        if low.es in book.lowers or (book.task, low.es) in seen:
            raise Refuse("duplicate", "a second lower record of one edge server")
        seen.add((book.task, low.es))
        for i, (_, fee) in low.joined.items():
            ed = self.roster.ed[i]
            locks[escrow_id("fee", book.task, ed)] = (rec.sender, ed, to_units(fee))

    def _check_epoch(self, rec: Envelope, data: dict[str, Any]) -> None:
        book = self.books.get(data["task"])
        if rec.sender != self.roster.requester or book is None:
            raise Refuse("not-authorised", "epoch record not signed by the requester, or of an unknown task")
        if data["epoch"] != book.epochs or data["parent"] != book.model or book.final:
            raise Refuse("wrong-epoch", f"epoch {data['epoch']} on parent {bytes(data['parent']).hex()[:12]}, the "
                                        f"book is at epoch {book.epochs} on {book.model.hex()[:12]}")
        updates, accepted, _ = self.verdicts_of(data, book)
        result = self.reexecute(book, updates)
        if result.accepted != accepted:
            raise Refuse("filter-mismatch", "a verdict differs from the re-executed cosine filter")
        if result.model_hash != data["model"]:
            raise Refuse("model-mismatch", "the global model hash differs from the re-executed FedAvg")
        self.blobs.put(result.model)

    def _check_escrows(self, parent: State, txs: list[Envelope], locks: dict[bytes, tuple[bytes, bytes, int]],
                       refunds: set[bytes], final_tasks: set[int]) -> None:
        for t in txs:
            if t.type == "tx/escrow_lock" and t.market == msg.MARKET:
                b = t.body
                want = locks.get(b["id"])
                if want is None or (t.sender, b["payee"], b["amount"]) != want \
                        or b.get("arbiter") != self.roster.requester:
                    raise InvalidBlock("market-contract", "an escrow lock no tbcim record in the block justifies")
            elif t.type in ("tx/escrow_release", "tx/escrow_refund", "tx/escrow_settle", "tx/escrow_split",
                            "tx/escrow_take"):
                escrow = parent.escrows.get(t.body["id"])
                if escrow is None or escrow.market != msg.MARKET:
                    if t.body["id"] in locks and t.type == "tx/escrow_refund" and t.body["id"] in refunds:
                        continue  # the budget lock returns with the auction that replaces it
                    if t.body["id"] in locks:
                        raise InvalidBlock("market-contract", "a task escrow moved in the block that locks it")
                    continue
                task = _task_of(escrow.ref)
                if t.type == "tx/escrow_release" and task not in final_tasks:
                    raise InvalidBlock("market-contract", "a task escrow released before the task's final record")
                if t.type in ("tx/escrow_settle", "tx/escrow_split", "tx/escrow_take"):
                    raise InvalidBlock("market-contract", "tbcim escrows are released or refunded, never settled")
                if t.type == "tx/escrow_refund" and t.sender == escrow.arbiter and t.sender != escrow.payee \
                        and parent.height + 1 <= escrow.expires:
                    raise InvalidBlock("market-contract", "the requester may not take back a payment or a fee "
                                                          "before the escrow expires")


def _task_of(ref: bytes) -> int | None:
    try:
        return int(bytes(ref).decode().split("/", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def escrow_lock_body(kind: str, task: int, payer: bytes, payee: bytes, amount: int, arbiter: bytes,
                     expires: int) -> dict[str, Any]:
    """The body of one of a task's escrow locks."""
    return {"id": escrow_id(kind, task, payer if kind == "budget" else payee), "payee": payee, "amount": amount,
            "expires": expires, "arbiter": arbiter, "ref": escrow_ref(task)}
