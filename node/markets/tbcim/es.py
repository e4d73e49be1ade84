"""An edge server: collects its EDs' reports and bids to the requester; when it wins, prices its EDs (the
exact leader optimum of the lower game) and records their answers; each epoch it screens its workers' updates
with the cosine filter and publishes its verdicts; as a validator it re-executes the market contract on every
block (``common.TbcimRole.check_block``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.ledger.state import State
from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.tbcim import market as mk
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import tbcim as msg

from ...notify import Changes
from ...rounds.collector import Collector
from ..app import RoleApp, block_check, block_prepare, on, serve
from ..context import Refuse, RequestFailed
from .common import ED, FETCH_TIMEOUT_S, REQUESTER, TbcimRole, escrow_lock_body
from .contract import MissingBlob, Update, check_report, derive_auction, open_signed, parse_lower, parse_update

MARGIN_S = 0.3
EARLY_UPDATE_S = 1.0
"""How long an update may wait for the epoch announcement it overtook."""


@dataclass
class _Task:
    number: int
    wire: bytes
    body: dict[str, Any]
    reports: Collector[tuple[int, mk.EdReport, bytes]]
    answers: Collector[bytes] | None = None


@dataclass
class _Epoch:
    task: int
    epoch: int
    round: int
    updates: Collector[tuple[Update, bool, float | None]]


class EdgeServer(TbcimRole):
    """An ES (a validator)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx, pushers=lambda: (self.roster.requester,), on_note=self.take_update)
        self.tasks: dict[int, _Task] = {}
        self.epochs: dict[tuple[int, int], _Epoch] = {}
        self.screened = 0
        self.opened = Changes()

    @property
    def index(self) -> int:
        """Our ES index."""
        return self.roster.es.index(self.ctx.key.public)

    # ------------------------------------------------------------------ the auction
    @on(msg.MSG_TASK, from_roles=(REQUESTER,))
    async def on_task(self, env: Envelope) -> None:
        """A task: collect our EDs' reports until the report deadline, then bid."""
        self.from_requester(env)
        b = env.body
        if self.ctx.key.public not in b["es"] or b["task"] in self.tasks:
            return
        wait_s = max(0.0, (b["report_deadline_ms"] - now_ms()) / 1000)
        members = [self.roster.ed[i] for i in self.roster.members(self.index)]
        task = _Task(b["task"], env.wire, b, Collector(members, wait_s))
        self.tasks[b["task"]] = task
        self.ctx.spawn("bid", self.bid, task, env.round)

    @serve(msg.MSG_REPORT, reply=msg.MSG_REPORT_ACK, from_roles=(ED,))
    async def on_report(self, env: Envelope) -> dict[str, Any]:
        """One of our EDs' reports (EMD checked against its histogram and the task's ``P_r``)."""
        task = self.tasks.get(env.body["task"])
        if task is None:
            raise Refuse("wrong-task", "no such task open")
        i, report = check_report(env, self.roster, self.index, task.number, task.body["p_ref"], self.cfg.data_unit)
        task.reports.offer(env.sender, (i, report, env.wire))
        return {"accepted": True, "reason": ""}

    async def bid(self, task: _Task, round_no: int) -> None:
        """Our cost bid over the EDs that reported, kept by client selection, to the requester."""
        got = await task.reports.wait()
        rows = sorted(got.answers.values(), key=lambda r: r[0])
        if not rows:
            self.ctx.events.warning("bid.no_reports", task=task.number)
            return
        bid = mk.es_bid(self.cfg, [r[1] for r in rows])
        if bid.bid > task.body["reserve"]:
            self.ctx.events.warning("bid.over_reserve", task=task.number, bid=bid.bid)
            return
        body = {"task": task.number, "bid": bid.bid, "d": bid.d, "theta": bid.theta, "selected": list(bid.selected),
                "reports": [r[2] for r in rows]}
        timeout = max(0.1, (task.body["bid_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.ctx.ask(self.roster.requester, msg.MSG_BID, body, round=round_no, timeout=timeout)
        except RequestFailed as err:
            self.ctx.events.warning("bid.refused", task=task.number, error=str(err)[:200])
            return
        self.ctx.events.info("bid.sent", task=task.number, bid=bid.bid, kept=len(bid.selected))

    @on(msg.MSG_ALLOCATION, from_roles=(REQUESTER,), slow=True)
    async def on_allocation(self, env: Envelope) -> None:
        """Check the allocation by re-running RANet and the draw; if we won, run our lower game."""
        self.from_requester(env)
        task = self.tasks.get(env.body["task"])
        if task is None:
            return
        auction = await self.ctx.compute(derive_auction, task.wire, env.body["bids"], self.ctx.network_id,
                                         self.roster, self.cfg.data_unit)
        alloc = auction.allocation
        if list(alloc.winners) != list(env.body["winners"]) or \
                [to_units(alloc.paid[s]) for s in alloc.winners] != [to_units(p) for p in env.body["paid"]]:
            raise Refuse("result-mismatch", "the allocation differs from RANet and the draw on the same bids")
        if self.index not in alloc.winners:
            return
        bid = auction.bids[self.index]
        kept = bid.kept()
        try:
            with self.work.timed(env.round):
                game = await self.ctx.compute(mk.lower_game, self.cfg, [bid.reports[i] for i in kept])
        except MechanismError as err:
            self.ctx.events.error("lower.failed", task=task.number, error=str(err)[:200])
            return
        answer_s = self.ctx.deadline("answer_s")
        task.answers = Collector([self.roster.ed[i] for i in kept], answer_s)
        await self.ctx.publish(msg.MSG_PRICE, {"task": task.number, "price": float(game.price),
                                               "eds": [self.roster.ed[i] for i in kept],
                                               "answer_deadline_ms": now_ms() + int(answer_s * 1000)},
                               round=env.round)
        got = await task.answers.wait()
        answers = [got.answers[self.roster.ed[i]] for i in kept if self.roster.ed[i] in got.answers]
        try:  # our lower record follows the auction on chain
            await self.ctx.chain.wait_for(lambda: task.number in self.books, timeout=4 * self.ctx.deadline("block_s"))
        except trio.TooSlowError:
            self.ctx.events.warning("lower.no_auction", task=task.number)
            return
        await self.record_lower(task, float(game.price), answers, env.round)

    @serve(msg.MSG_ANSWER, reply=msg.MSG_ANSWER_ACK, from_roles=(ED,))
    async def on_answer(self, env: Envelope) -> dict[str, Any]:
        """An ED's answer to our price."""
        task = self.tasks.get(env.body["task"])
        if task is None or task.answers is None:
            raise Refuse("wrong-task", "no price open for this task")
        task.answers.offer(env.sender, env.wire)
        return {"accepted": True, "reason": ""}

    async def record_lower(self, task: _Task, price: float, answers: list[bytes], round_no: int) -> None:
        """Submit the lower record with the fee locks of the EDs that joined, and tell the requester."""
        ctx = self.ctx
        book = self.books[task.number]
        body = {"task": task.number, "price": price, "answers": answers}
        low = parse_lower(ctx.key.public, body, ctx.network_id, self.roster, book.auction, self.cfg.kappa)
        txs = [ctx.chain.sign_tx("record", {"kind": msg.LOWER_RECORD, "data": body}, round=round_no)]
        for i, (_, fee) in low.joined.items():
            units = to_units(fee)
            if units > 0:
                txs.append(ctx.chain.sign_tx("escrow_lock", escrow_lock_body(
                    "fee", task.number, ctx.key.public, self.roster.ed[i], units, self.roster.requester,
                    task.body["expires"]), round=round_no))
        await ctx.chain.submit([t.wire for t in txs])
        await ctx.publish(msg.MSG_LOWER, body, round=round_no)
        ctx.events.info("lower.recorded", task=task.number, price=price, joined=len(low.joined))

    # ------------------------------------------------------------------ epochs
    def open_epoch(self, task: int, epoch: int, round_no: int) -> _Epoch:
        """Start collecting our workers' updates of an epoch the requester announced."""
        key = (task, epoch)
        state = self.epochs.get(key)
        if state is None:
            book = self.books[task]
            mine = [self.roster.ed[i] for i in sorted(book.workers()) if self.roster.home[i] == self.index]
            state = _Epoch(task, epoch, round_no, Collector(mine, self.ctx.deadline("epoch_s")))
            self.epochs = {k: v for k, v in self.epochs.items() if k[0] >= task - 1}
            self.epochs[key] = state
            self.opened.notify()
            self.ctx.spawn("verdicts", self.publish_verdicts, state)
        return state

    async def epoch_state(self, task: int, epoch: int, parent: bytes, round_no: int) -> _Epoch:
        """The collector of the epoch an update belongs to. An update may overtake the requester's announcement
        (or a node that just restarted may have missed it while the gossip mesh re-forms): after
        ``EARLY_UPDATE_S`` an update trained on the global model the chain holds opens the current epoch.

        Raises:
            Refuse: ``wrong-epoch`` for an update of any other epoch or model.
        """
        await self.opened.holds_within(lambda: (task, epoch) in self.epochs, EARLY_UPDATE_S)
        if (task, epoch) in self.epochs:
            return self.epochs[(task, epoch)]
        book = self.books.get(task)
        if book is None or book.epochs != epoch or book.model != parent or book.final:
            raise Refuse("wrong-epoch", f"task {task} epoch {epoch} is not open here")
        return self.open_epoch(task, epoch, round_no)

    @on(msg.MSG_EPOCH, from_roles=(REQUESTER,))
    async def on_epoch(self, env: Envelope) -> None:
        """An epoch opens: start collecting our workers' updates."""
        self.from_requester(env)
        b = env.body
        book = self.books.get(b["task"])
        if book is None or book.epochs != b["epoch"] or self.index not in book.lowers \
                or not book.lowers[self.index].joined:
            return
        self.open_epoch(b["task"], b["epoch"], env.round)

    @serve(msg.MSG_UPDATE, reply=msg.MSG_UPDATE_ACK, from_roles=(ED,))
    async def on_update(self, env: Envelope) -> dict[str, Any]:
        """A worker's update sent alone: pull its weights by hash, then screen it (:meth:`screen`)."""
        return await self.screen(env, None)

    async def take_update(self, peer: bytes, wire: bytes, blobs: list[bytes]) -> dict[str, Any]:
        """A worker's signed update pushed with its weights (the blob stream's note): screen it."""
        env = open_signed(wire, self.ctx.network_id, msg.MSG_UPDATE)
        if env.sender != peer:
            raise Refuse("not-authorised", "update not signed by the edge device that sent it")
        return await self.screen(env, blobs[0] if len(blobs) == 1 else None)

    async def screen(self, env: Envelope, data: bytes | None) -> dict[str, Any]:
        """Check an update's shape and parent, take its weights (``data``, or pulled by hash), screen it with the
        filter and count it; the answer carries the verdict and the score."""
        b = env.body
        state = await self.epoch_state(b["task"], b["epoch"], b["parent"], env.round)
        book = self.books[b["task"]]
        u = parse_update(env.wire, self.ctx.network_id, self.roster, b["task"], b["epoch"])
        if self.roster.home[u.ed] != self.index:
            raise Refuse("not-authorised", "not one of our edge devices")
        size = self.init_model.size
        if u.size != size or u.parent != book.model:
            raise Refuse("bad-update", f"update of {u.size} values on parent {u.parent.hex()[:12]}; the model has "
                                       f"{size} values, hash {book.model.hex()[:12]}")
        if data is not None:
            self.blobs.take_inline(u.hash, data, size=size)
        try:
            await self.blobs.fetch(u.hash, [env.sender], size=size, timeout=FETCH_TIMEOUT_S)
        except RequestFailed as err:
            raise Refuse("bad-update", f"update weights unavailable: {err.reason}") from err
        await self.ensure(self.needed(book, [u]))
        try:
            res = await self.contract_run(self.reexecute, book, [u])
        except MissingBlob as err:
            raise Refuse("bad-update", f"filter history unavailable: {err}") from err
        ok, score = res.accepted[0], res.scores[0]
        state.updates.offer(env.sender, (u, ok, score))
        self.screened += 1
        if not ok:  # a poisoned update (a Byzantine `poison-update` device): the signed verdicts carry it
            self.ctx.events.warning("update.rejected", ed=self.ctx.name_of(env.sender), task=b["task"],
                                    epoch=b["epoch"], score=score)  # answered with reason cosine-filter
        return {"accepted": ok, "reason": "" if ok else "cosine-filter", "score": score}

    async def publish_verdicts(self, state: _Epoch) -> None:
        """When every worker has sent (or at the deadline): our signed verdicts with our updates' weights, to the
        requester in one push (it re-executes them at once and hands every ES the weights the epoch's block needs)."""
        got = await state.updates.wait()
        rows = sorted(got.answers.values(), key=lambda r: r[0].ed)
        body = {"task": state.task, "epoch": state.epoch, "updates": [r[0].wire for r in rows],
                "accepted": [r[1] for r in rows], "scores": [r[2] for r in rows]}
        verdicts = self.ctx.seal(msg.MSG_VERDICTS, body, round=state.round)
        try:  # one request: the weights, and the verdicts they come with
            answer = await self.blobs.push(self.roster.requester, [r[0].hash for r in rows],
                                           timeout=self.ctx.deadline("epoch_s"), note=verdicts.wire)
        except RequestFailed as err:
            answer = {"accepted": False, "reason": str(err)}
        if not answer["accepted"]:
            self.ctx.events.warning("verdicts.refused", task=state.task, epoch=state.epoch,
                                    error=str(answer.get("reason"))[:200])
            return
        self.ctx.events.info("verdicts.published", task=state.task, epoch=state.epoch, updates=len(rows),
                             rejected=sum(1 for r in rows if not r[1]))

    # ------------------------------------------------------------------ the contract
    @block_prepare
    async def fetch_blobs(self, block: Block) -> None:
        """Pull every blob the block's epoch records need before the contract runs."""
        for rec in self.records(block):
            if rec.body["kind"] != msg.EPOCH_RECORD:
                continue
            book = self.books.get(rec.body["data"]["task"])
            if book is None:
                continue
            try:
                updates, _, _ = self.verdicts_of(rec.body["data"], book)
            except Refuse:
                continue  # the contract refuses the record
            await self.ensure(self.needed(book, updates))

    @block_check
    def contract(self, parent: State, block: Block) -> None:
        """The tbcim market contract (``TbcimRole.check_block``)."""
        self.check_block(parent, block)

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"tasks": len(self.books), "screened": self.screened, "blob_bytes_in": self.blobs.bytes_in}


APP = RoleApp("es", EdgeServer)
