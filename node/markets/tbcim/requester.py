"""The requester (the task allocation system): leads rounds. A round is one global epoch; the first epoch of a
task also runs the task's auction and lower games.

Epoch ``e`` of task ``t`` is round ``(t - 1) * epochs + e + 1``. Its first round publishes the task with the
signed budget lock, collects the ESs' bids, runs RANet and the draw, submits the auction (payments escrowed
from the budget, proposer weights = revenue shares) and waits for the winners' lower results to be on chain.
Every round then announces the epoch, collects the ESs' verdicts, re-executes them (the same contract the ESs
run), submits the epoch record with the new global model's hash, and after the last epoch measures accuracy
on its held-out split and releases every escrow of the task with the final record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from bazaar.ledger.amounts import from_units, to_units
from bazaar.ledger.txs import WEIGHTS_RECORD
from bazaar.mechanisms.tbcim import market as mk
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import tbcim as msg

from ...rounds.collector import Collector
from ...rounds.engine import RoundError, RoundResult, RoundStart
from ..app import RoleApp, lifespan, on, serve
from ..context import Refuse, RequestFailed
from .blobs import to_bytes
from .common import ES, TbcimRole, escrow_lock_body
from .contract import (
    Auction,
    EpochResult,
    MissingBlob,
    TaskBook,
    Update,
    derive_auction,
    escrow_id,
    open_signed,
    parse_bid,
    parse_lower,
    parse_task,
    parse_update,
)
from .outcome import TaskOutcome

MARGIN_S = 0.5
PUSH_TIMEOUT_S = 1.0
"""How long the requester waits for an ES to take an epoch's update weights before it submits the record anyway."""


@dataclass
class _Task:
    number: int
    wire: bytes
    bids: Collector[bytes]
    lowers: Collector[Envelope] | None = None
    auction: Auction | None = None


@dataclass
class _Epoch:
    task: int
    epoch: int
    verdicts: Collector[Envelope]


class Requester(TbcimRole):
    """The task's buyer; its :class:`RoundPlan` drives the market."""

    current: _Task | None = None
    epoch: _Epoch | None = None

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx, pushers=lambda: self.roster.es, on_note=self.take_verdicts)
        self.accuracy: dict[int, list[float]] = {}

    # ------------------------------------------------------------------ handlers
    @serve(msg.MSG_BID, reply=msg.MSG_BID_ACK, from_roles=(ES,))
    async def on_bid(self, env: Envelope) -> dict[str, Any]:
        """An ES's bid for the task being auctioned (checked as the contract will check it)."""
        cur = self.current
        if cur is None or env.body["task"] != cur.number:
            raise Refuse("wrong-task", "no auction open for this task")
        t = self.task_body(cur)
        parse_bid(env.wire, self.ctx.network_id, self.roster, cur.number, t["p_ref"], self.cfg.data_unit,
                  t["reserve"])
        cur.bids.offer(env.sender, env.wire)
        return {"accepted": True, "reason": ""}

    @on(msg.MSG_LOWER, from_roles=(ES,))
    async def on_lower(self, env: Envelope) -> None:
        """A winning ES's lower result (its price and its EDs' answers)."""
        cur = self.current
        if cur is None or cur.lowers is None or cur.auction is None or env.body["task"] != cur.number:
            raise Refuse("wrong-task", "no lower results expected now")
        parse_lower(env.sender, env.body, self.ctx.network_id, self.roster, cur.auction, self.cfg.kappa)
        cur.lowers.offer(env.sender, env)

    @serve(msg.MSG_VERDICTS, reply=msg.MSG_VERDICTS_ACK, from_roles=(ES,))
    async def on_verdicts(self, env: Envelope) -> dict[str, Any]:
        """An ES's verdicts on its EDs' updates of the epoch in progress (sent alone)."""
        self.offer_verdicts(env)
        return {"accepted": True, "reason": ""}

    async def take_verdicts(self, peer: bytes, wire: bytes, blobs: list[bytes]) -> dict[str, Any]:
        """An ES's signed verdicts pushed with its updates' weights (the blob stream's note): keep the weights, then
        count the verdicts.

        Raises:
            Refuse: not verdicts signed by the ES that pushed them, or not of the epoch in progress.
        """
        env = open_signed(wire, self.ctx.network_id, msg.MSG_VERDICTS)
        if env.sender != peer or peer not in self.roster.es:
            raise Refuse("not-authorised", "verdicts not signed by the edge server that sent them")
        self.blobs.take(peer, blobs)
        self.offer_verdicts(env)
        return {}

    def offer_verdicts(self, env: Envelope) -> None:
        """Count an ES's verdicts for the epoch in progress (raises ``Refuse``)."""
        ep = self.epoch
        if ep is None or env.body["task"] != ep.task or env.body["epoch"] != ep.epoch:
            raise Refuse("wrong-epoch", "no epoch open for these verdicts")
        ep.verdicts.offer(env.sender, env)

    def task_body(self, cur: _Task) -> dict[str, Any]:
        """The body of our own task message."""
        return parse_task(cur.wire, self.ctx.network_id, self.roster).body

    # ------------------------------------------------------------------ rounds
    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """One global epoch (with the task's auction first when it is epoch 0)."""
        task, epoch = divmod(rnd.number - 1, self.cfg.epochs)
        task += 1
        invited = [self.ctx.name_of(k) for k in (*self.roster.es, *self.roster.ed)]
        left_out: list[str] = []
        if epoch == 0:
            left_out = await self.auction(rnd, task)
        book = self.books.get(task)
        if book is None:
            raise RoundError(f"task {task} has no settled auction (round {rnd.number})")
        if not book.lowers:
            return RoundResult(invited, invited, None, 0.0, metrics={"winners": 0},
                               outcome=self.outcome(book).doc(), fields={"task": task, "epoch": epoch})
        result, missing = await self.run_epoch(rnd, book, epoch)
        left_out = sorted(set(left_out) | set(missing))
        nonce = result["nonce"]
        if epoch == self.cfg.epochs - 1:
            nonce = await self.finish(rnd, book, nonce)
        outcome = self.outcome(book, extra_epoch=result)
        metrics = {"accuracy": result["accuracy"], "workers": len(book.workers()),
                   "updates": result["updates"], "rejected": result["rejected"],
                   "winners": len(book.lowers), "paid": sum(outcome.paid.values()),
                   "requester_utility": outcome.requester_utility, "blob_bytes_in": self.blobs.bytes_in}
        return RoundResult(invited, left_out, nonce, 5 * self.ctx.deadline("block_s"), metrics=metrics,
                           outcome=outcome.doc(), fields={"task": task, "epoch": epoch})

    async def auction(self, rnd: RoundStart, task: int) -> list[str]:
        """Publish the task, collect bids, allocate, submit, and wait for the lower results on chain."""
        ctx, cfg = self.ctx, self.cfg
        connected = ctx.connected()
        es_live = [k for k in self.roster.es if k in connected]
        if not es_live:
            raise RoundError("no edge server is connected")
        report_s, bid_s, answer_s = ctx.deadline("report_s"), ctx.deadline("bid_s"), ctx.deadline("answer_s")
        budget = self.settings.budget
        if ctx.chain.state.balance(ctx.key.public) < to_units(budget):
            raise RoundError(f"the requester cannot cover its budget of {budget:g} tokens")
        expires = ctx.chain.height + self.settings.escrow_expiry
        me = ctx.key.public
        lock = ctx.chain.sign_tx("escrow_lock", escrow_lock_body("budget", task, me, me, to_units(budget), me,
                                                                 expires), round=rnd.number)
        start = now_ms()
        body = {"task": task, "epochs": cfg.epochs, "p_ref": [float(x) for x in self.data.p_ref],
                "reserve": mk.reserve_of(cfg.n_es), "budget": budget, "eval_size": int(self.data.y_eval.size),
                "eval_hash": mk.eval_commitment(self.data), "es": list(self.roster.es),
                "report_deadline_ms": start + int(report_s * 1000),
                "bid_deadline_ms": start + int((report_s + bid_s) * 1000), "expires": expires, "escrow": lock.wire}
        cur = _Task(task, ctx.seal(msg.MSG_TASK, body, round=rnd.number).wire,
                    Collector(es_live, report_s + bid_s + MARGIN_S))
        self.current = cur
        await ctx.publish(msg.MSG_TASK, body, round=rnd.number)
        got = await cur.bids.wait()
        bid_wires = [got.answers[k] for k in self.roster.es if k in got.answers]
        try:
            with self.work.timed(rnd.number):
                auction = await ctx.compute(derive_auction, cur.wire, bid_wires, ctx.network_id, self.roster,
                                            cfg.data_unit)
        except Refuse as err:
            self.current = None
            raise RoundError(f"the bids do not form an auction: {err}") from err
        cur.auction = auction
        winners = [self.roster.es[s] for s in auction.allocation.winners]
        cur.lowers = Collector(winners, answer_s + 2 * MARGIN_S)
        alloc = auction.allocation
        await ctx.publish(msg.MSG_ALLOCATION, {
            "task": task, "bids": bid_wires, "z": [float(x) for x in alloc.z],
            "expected": [float(x) for x in alloc.expected], "winners": list(alloc.winners),
            "paid": [alloc.paid[s] for s in alloc.winners]}, round=rnd.number)
        txs = [lock.wire, ctx.chain.sign_tx("record", {"kind": msg.AUCTION_RECORD, "data": {
            "task": cur.wire, "bids": bid_wires}}, round=rnd.number).wire,
            ctx.chain.sign_tx("escrow_refund", {"id": escrow_id("budget", task, me)}, round=rnd.number).wire]
        for s, units in auction.paid_units().items():
            es = self.roster.es[s]
            txs.append(ctx.chain.sign_tx("escrow_lock", escrow_lock_body("pay", task, me, es, units, me, expires),
                                         round=rnd.number).wire)
        weights = self.weights_of(auction)
        if weights and ctx.scenario.consensus == "pos":
            txs.append(ctx.chain.sign_tx("record", {"kind": WEIGHTS_RECORD, "data": {"weights": weights}},
                                         round=rnd.number).wire)
        await ctx.chain.submit(txs, seal=True)  # the auction's whole batch: a proposer seals at once
        ctx.events.info("auction.submitted", task=task, bids=len(bid_wires), winners=len(winners),
                        paid=from_units(sum(auction.paid_units().values())))
        lowers = await cur.lowers.wait()
        answered = set(lowers.answers)
        try:
            await ctx.chain.wait_for(lambda: task in self.books and answered <= {
                self.roster.es[s] for s in self.books[task].lowers}, timeout=4 * ctx.deadline("block_s"))
        except trio.TooSlowError:
            ctx.events.warning("auction.unsettled", task=task)
        self.current = None
        reported = {i for bid in auction.bids.values() for i in bid.reports}
        left = [ctx.name_of(k) for k in self.roster.es if k not in got.answers]
        left += [ctx.name_of(k) for i, k in enumerate(self.roster.ed) if i not in reported]
        return left + [ctx.name_of(k) for k in winners if k not in answered]

    async def run_epoch(self, rnd: RoundStart, book: TaskBook, epoch: int) -> tuple[dict[str, Any], list[str]]:
        """Announce, collect verdicts, re-execute, submit the epoch record."""
        ctx = self.ctx
        if book.epochs != epoch:
            raise RoundError(f"task {book.task} is at epoch {book.epochs} on chain, round {rnd.number} wants {epoch}")
        epoch_s = ctx.deadline("epoch_s")
        workers = sorted(book.workers())
        connected = ctx.connected()
        active = [self.roster.es[s] for s in sorted(book.lowers) if book.lowers[s].joined]
        expected = [k for k in active if k in connected]
        self.epoch = _Epoch(book.task, epoch, Collector(expected, epoch_s + MARGIN_S))
        announce: dict[str, Any] = {"task": book.task, "epoch": epoch, "model": book.model,
                                    "workers": [self.roster.ed[i] for i in workers],
                                    "deadline_ms": now_ms() + int(epoch_s * 1000)}
        model = self.blobs.get(book.model)
        if model is not None and 8 * model.size <= msg.MAX_INLINE_MODEL:  # the workers need not pull it
            announce["weights"] = to_bytes(model)
        await ctx.publish(msg.MSG_EPOCH, announce, round=rnd.number)
        got = await self.epoch.verdicts.wait()
        self.epoch = None
        envs = [got.answers[k] for k in active if k in got.answers]
        result, kept = await self.aggregate(book, epoch, envs)
        record = ctx.chain.sign_tx("record", {"kind": msg.EPOCH_RECORD, "data": {
            "task": book.task, "epoch": epoch, "parent": book.model, "model": result.model_hash,
            "verdicts": [e.wire for e in kept]}}, round=rnd.number)
        await ctx.chain.submit([record.wire], seal=True)
        acc = mk.accuracy(self.cfg, self.data, result.model)
        self.accuracy.setdefault(book.task, [])[epoch:] = [acc]
        missing = [ctx.name_of(k) for k in active if k not in got.answers]
        sent = {u.ed for u in result.updates}
        missing += [ctx.name_of(self.roster.ed[i]) for i in workers if i not in sent]
        ctx.events.info("epoch.submitted", task=book.task, epoch=epoch, updates=len(result.updates),
                        rejected=result.accepted.count(False), accuracy=round(acc, 4))
        return {"nonce": int(record.body["nonce"]), "accuracy": acc, "updates": len(result.updates),
                "rejected": result.accepted.count(False), "model": result.model_hash}, missing

    async def aggregate(self, book: TaskBook, epoch: int, envs: list[Envelope]) -> tuple[EpochResult, list[Envelope]]:
        """Re-execute the ESs' verdicts; drop an ES whose verdicts the contract would refuse."""
        parsed: list[tuple[Envelope, list[Update]]] = []
        for env in envs:
            try:
                updates = [parse_update(w, self.ctx.network_id, self.roster, book.task, epoch)
                           for w in env.body["updates"]]
                if any(self.roster.home[u.ed] != self.roster.es.index(env.sender) for u in updates):
                    raise Refuse("not-authorised", "a verdict on another ES's edge device")
            except Refuse as err:
                self.ctx.events.warning("verdicts.dropped", es=self.ctx.name_of(env.sender), error=str(err)[:200])
                continue
            parsed.append((env, updates))
        await self.ensure([w for _, updates in parsed for w in self.needed(book, updates)])  # held when pushed
        # the ESs take the weights while we re-execute; the record waits for them: a drawn proposer that got the
        # record first would pull the weights itself (docs/adr/0162)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.hand_out, [u for _, updates in parsed for u in updates])
            result, kept, dropped = await self.contract_run(self.judge, book, parsed)
        for env, reason in dropped:
            self.ctx.events.warning("verdicts.dropped", es=self.ctx.name_of(env.sender), error=reason[:200])
        self.blobs.put(result.model)
        return result, kept

    async def hand_out(self, updates: list[Update]) -> None:
        """Push every validating ES the epoch's update weights it does not hold (those of the other ESs' EDs), all
        at once and before the record: its block then re-executes at once (a failed push is fetched instead)."""
        ctx = self.ctx
        connected = ctx.connected()

        async def one(s: int, es: bytes) -> None:
            try:
                await self.blobs.push(es, [u.hash for u in updates if self.roster.home[u.ed] != s],
                                      timeout=PUSH_TIMEOUT_S)
            except RequestFailed as err:
                ctx.events.warning("blobs.push_failed", es=ctx.name_of(es), error=str(err)[:200])

        async with trio.open_nursery() as nursery:
            for s, es in enumerate(self.roster.es):
                if es in connected:
                    nursery.start_soon(one, s, es)

    def judge(self, book: TaskBook, parsed: list[tuple[Envelope, list[Update]]]) -> tuple[
            EpochResult, list[Envelope], list[tuple[Envelope, str]]]:
        """The contract over every ES's updates at once: an update's verdict depends only on its own ED's history,
        so one run gives every verdict; an ES whose verdicts differ is dropped and FedAvg re-runs without it. Any
        refusal of the joint run falls back to one run per ES (the ES at fault is dropped)."""
        kept: list[Envelope] = []
        dropped: list[tuple[Envelope, str]] = []
        try:
            joint: EpochResult | None = self.reexecute(book, [u for _, updates in parsed for u in updates])
        except (Refuse, MissingBlob):
            joint = None
        for env, updates in parsed:
            claimed = [bool(x) for x in env.body["accepted"]]
            try:
                if joint is not None:
                    verdict = {u.ed: ok for u, ok in zip(joint.updates, joint.accepted, strict=True)}
                    mine = [verdict[u.ed] for u in sorted(updates, key=lambda u: u.ed)]
                else:
                    mine = self.reexecute(book, updates).accepted
                if mine != claimed:
                    raise Refuse("filter-mismatch", "verdicts differ from the re-executed filter")
                kept.append(env)
            except (Refuse, MissingBlob) as err:
                dropped.append((env, str(err)))
        if joint is not None and len(kept) == len(parsed):
            return joint, kept, dropped
        every = [u for env, updates in parsed if env in kept for u in updates]
        return self.reexecute(book, every), kept, dropped

    async def finish(self, rnd: RoundStart, book: TaskBook, epoch_nonce: int) -> int:
        """After the last epoch settles: accuracy, the final record and every escrow of the task released."""
        ctx = self.ctx
        try:
            await ctx.chain.wait_for(lambda: book.epochs >= self.cfg.epochs, timeout=4 * ctx.deadline("block_s"))
        except trio.TooSlowError:
            ctx.events.warning("final.unsettled", task=book.task)
            return epoch_nonce
        acc = self.accuracy.get(book.task, [])
        txs = [ctx.chain.sign_tx("record", {"kind": msg.FINAL_RECORD, "data": {
            "task": book.task, "accuracy": acc[-1] if acc else 0.0, "model": book.model}}, round=rnd.number)]
        state = ctx.chain.state
        ids = [escrow_id("pay", book.task, self.roster.es[s]) for s in sorted(book.lowers)]
        ids += [escrow_id("fee", book.task, self.roster.ed[i]) for i in sorted(book.workers())]
        for eid in ids:
            if eid in state.escrows:
                txs.append(ctx.chain.sign_tx("escrow_release", {"id": eid}, round=rnd.number))
        await ctx.chain.submit([t.wire for t in txs], seal=True)
        ctx.events.info("task.final", task=book.task, released=len(txs) - 1)
        return int(txs[-1].body["nonce"])

    def outcome(self, book: TaskBook, extra_epoch: dict[str, Any] | None = None) -> TaskOutcome:
        """The outcome so far, by name (the epoch just submitted included)."""
        name = self.ctx.name_of
        a = book.auction
        out = TaskOutcome(book.task)
        for s, bid in a.bids.items():
            es = name(self.roster.es[s])
            out.bids[es] = bid.bid.bid
            out.allocation[es] = float(a.allocation.z[s])
            out.expected[es] = float(a.allocation.expected[s])
        for s, v in a.allocation.paid.items():
            out.paid[name(self.roster.es[s])] = v
        for s, low in book.lowers.items():
            es = name(self.roster.es[s])
            out.price[es] = low.price
            out.participants[es] = [name(self.roster.ed[i]) for i in low.joined]
            for i, (c, fee) in low.joined.items():
                out.compute[name(self.roster.ed[i])] = c
                out.fees[name(self.roster.ed[i])] = fee
        out.requester_utility = mk.requester_utility(self.cfg, {s: b.bid for s, b in a.bids.items()}, a.allocation)
        out.accuracy = list(self.accuracy.get(book.task, []))
        out.model_hash = (extra_epoch["model"] if extra_epoch else book.model).hex()
        out.rejected = [{"epoch": e, "ed": name(self.roster.ed[i]), "score": s} for e, i, s in book.rejected]
        return out

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Name the settling block's proposer; refresh the rejected updates now on chain."""
        block = self.ctx.chain.block(summary["height"]) if summary["height"] else None
        if block is not None:
            summary["proposer"] = self.ctx.name_of(block.header.proposer)
        task = result.fields.get("task")
        book = self.books.get(task) if isinstance(task, int) else None
        if book is not None:
            summary["outcome"]["rejected_updates"] = [
                {"epoch": e, "ed": self.ctx.name_of(self.roster.ed[i]), "score": s} for e, i, s in book.rejected]

    @lifespan
    async def warm_up(self) -> None:
        """Load the data split at start-up."""
        await self.load_data()

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"tasks": len(self.books), "blob_bytes_in": self.blobs.bytes_in}


APP = RoleApp("requester", Requester)
