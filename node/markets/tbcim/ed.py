"""An edge device: reports its shard (size, label histogram, EMD) and its costs to its ES, answers its ES's
price with its best response, and in every epoch it works in takes the global model (from the announcement, or
pulled by hash), trains locally for the epochs its compute buys, and pushes its ES the signed hash of its update
with the weights, in one request over the blob stream. A device named in ``[mechanism] poisoners`` poisons its
updates (a Byzantine device)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import trio

from bazaar.mechanisms.tbcim import market as mk
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import tbcim as msg

from ...byzantine import POISON_UPDATE
from ..app import RoleApp, lifespan, on
from ..context import RequestFailed
from .common import ES, FETCH_TIMEOUT_S, REQUESTER, TbcimRole

POISON_SCALE = 3.0
REPORT_RETRY_S = 0.02
"""A report our ES refused ``wrong-task`` (the requester's task reached us first) is sent again this much later."""
"""A ``poison-update`` device sends ``-3 x`` its honest update (the shipped ``tbcim-poison`` attack)."""


class EdgeDevice(TbcimRole):
    """An ED (a data owner and FL worker)."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.compute: dict[int, float] = {}
        self.trained = 0
        self._report: mk.EdReport | None = None

    @property
    def index(self) -> int:
        """Our ED index."""
        return self.roster.ed.index(self.ctx.key.public)

    @property
    def worker_cfg(self) -> mk.MarketConfig:
        """The market's config as our training sees it: a Byzantine ``poison-update`` device joins the scenario's
        poisoners with the shipped attack (sign-flipped, x3 scaled updates from ``attack_start``; the filter
        needs one honest update of ours first, so never before epoch 1)."""
        if POISON_UPDATE not in self.ctx.byzantine:
            return self.cfg
        return replace(self.cfg, poisoners=tuple(sorted({*self.cfg.poisoners, self.index})), attack="sign_flip",
                       attack_scale=POISON_SCALE, attack_start=max(1, self.cfg.attack_start))

    @property
    def home(self) -> bytes:
        """Our ES's key."""
        return self.roster.es[self.roster.home[self.index]]

    @on(msg.MSG_TASK, from_roles=(REQUESTER,), slow=True)
    async def on_task(self, env: Envelope) -> None:
        """Report our shard and costs to our ES."""
        self.from_requester(env)
        if self.home not in env.body["es"]:
            return
        report = await self.my_report()
        body = {"task": env.body["task"], "d": report.d, "histogram": list(report.histogram), "theta": report.theta,
                "gamma": report.gamma, "beta": report.beta, "compute": report.compute, "c_m": report.c_m}
        deadline_ms = env.body["report_deadline_ms"]
        while True:
            timeout = max(0.1, (deadline_ms - now_ms()) / 1000)
            try:
                await self.ctx.ask(self.home, msg.MSG_REPORT, body, round=env.round, timeout=timeout)
                return
            except RequestFailed as err:
                # the requester's task reached us before our ES took it (it is pushed to every node at once,
                # docs/adr/0194): ask again shortly, until the report deadline
                if err.reason == "refused" and err.detail == "wrong-task" \
                        and now_ms() + REPORT_RETRY_S * 1000 < deadline_ms:
                    await trio.sleep(REPORT_RETRY_S)
                    continue
                self.ctx.events.warning("report.refused", task=env.body["task"], error=str(err)[:200])
                return

    @on(msg.MSG_PRICE, from_roles=(ES,), slow=True)
    async def on_price(self, env: Envelope) -> None:
        """Our ES's unit price: join iff our best response earns a non-negative profit."""
        if env.sender != self.home or self.ctx.key.public not in env.body["eds"]:
            return
        task = env.body["task"]
        report = await self.my_report()
        join, compute, fee = mk.best_response(self.cfg, report, float(env.body["price"]))
        if join:
            self.compute[task] = compute
        timeout = max(0.1, (env.body["answer_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.ctx.ask(self.home, msg.MSG_ANSWER, {"task": task, "price": env.body["price"], "join": join,
                                                           "compute": compute}, round=env.round, timeout=timeout)
        except RequestFailed as err:
            self.ctx.events.warning("answer.refused", task=task, error=str(err)[:200])
            return
        self.ctx.events.info("answer.sent", task=task, join=join, compute=compute, fee=fee)

    @on(msg.MSG_EPOCH, from_roles=(REQUESTER,), slow=True)
    async def on_epoch(self, env: Envelope) -> None:
        """Train on the global model and send our update's commitment to our ES."""
        self.from_requester(env)
        b = env.body
        if self.ctx.key.public not in b["workers"]:
            return
        compute = self.compute.get(b["task"])
        book = self.books.get(b["task"])
        if compute is None and book is not None:
            compute = book.workers().get(self.index)
        if compute is None:
            self.ctx.events.warning("epoch.no_compute", task=b["task"])
            return
        if b.get("weights") is not None:
            self.blobs.take_inline(b["model"], b["weights"], size=self.init_model.size)
        try:
            model = await self.blobs.fetch(b["model"], [self.roster.requester, self.home],
                                           size=self.init_model.size, timeout=FETCH_TIMEOUT_S)
        except RequestFailed as err:
            self.ctx.events.warning("epoch.no_model", task=b["task"], error=str(err)[:200])
            return
        with self.work.timed(env.round):  # local training
            delta = await self.ctx.compute(mk.ed_update, self.worker_cfg, self.data, self.index, b["epoch"], model,
                                           compute)
        h = self.blobs.put(delta)
        body = {"task": b["task"], "epoch": b["epoch"], "parent": b["model"], "hash": h, "size": int(delta.size),
                "samples": int(self.data.parts[self.index].size)}
        timeout = max(0.2, (b["deadline_ms"] - now_ms()) / 1000)
        update = self.ctx.seal(msg.MSG_UPDATE, body, round=env.round)
        try:  # one request: the signed update with its weights
            ack = await self.blobs.push(self.home, [h], timeout=timeout, note=update.wire)
        except RequestFailed as err:
            self.ctx.events.warning("update.refused", task=b["task"], epoch=b["epoch"], error=str(err)[:200])
            return
        if "score" not in ack:  # refused: the ES said why
            self.ctx.events.warning("update.refused", task=b["task"], epoch=b["epoch"],
                                    error=str(ack.get("reason"))[:200])
            return
        self.trained += 1
        self.ctx.events.info("update.sent", task=b["task"], epoch=b["epoch"], accepted=ack["accepted"],
                             score=ack["score"])
        cfg = self.worker_cfg
        if POISON_UPDATE in self.ctx.byzantine and b["epoch"] >= cfg.attack_start:  # what a testnet matches
            self.ctx.events.warning("byzantine.poisoned", task=b["task"], epoch=b["epoch"])

    @lifespan
    async def warm_up(self) -> None:
        """Load the data split and compute our report at start-up (a task's report deadline is short)."""
        await self.my_report()

    async def my_report(self) -> mk.EdReport:
        """Our shard's report (computed once)."""
        if self._report is None:
            await self.load_data()
            self._report = await self.ctx.compute(mk.ed_report, self.cfg, self.data, self.index)
        return self._report

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"trained": self.trained, "blob_bytes_in": self.blobs.bytes_in}


APP = RoleApp("ed", EdgeDevice)
