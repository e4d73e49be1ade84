"""A task publisher: answers every book with its portfolio (SGSA by default) and, in the first iteration, its
signed budget lock; at the end buys from what the earlier publishers left. With the declared protocol it
declares its parameters and lock to the pool once, and signs its final order against the final book."""

from __future__ import annotations

from typing import Any

from bazaar.ledger.amounts import to_units
from bazaar.mechanisms.collab import optimize_portfolio
from bazaar.mechanisms.collab.book import Book
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import collab as msg

from ...reasons import NodeReason
from ..app import RoleApp, on, serve
from ..context import Refuse, RequestFailed, RoleContext
from .common import POOL, CollabRole, escrow_id, escrow_ref, order_body, sellers_of


class Publisher(CollabRole):
    """A buyer of compute shares and data units."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.me = self.cfg.publishers()[self.roster.publishers.index(ctx.key.public)]
        self.pricing = self.cfg.pricing()
        self.book: dict[str, Any] | None = None
        self.expires: dict[int, int] = {}
        self.locked: dict[int, int] = {}

    @on(msg.MSG_CALL, from_roles=(POOL,))
    async def on_call(self, env: Envelope) -> None:
        """A round opens: note its escrow expiry and forget the locks of earlier rounds that never landed. A
        second call for a round already called, or a call for an older round, changes nothing (round numbers
        only grow; a forged or repeated call must not wipe the lock of the round in progress)."""
        self.from_pool(env)
        if env.round in self.expires or any(r > env.round for r in self.expires):
            self.ctx.events.warning("call.ignored", round=env.round, reason="wrong-round")
            return
        self.expires = {r: e for r, e in self.expires.items() if r >= env.round - 8}
        self.expires[env.round] = int(env.body["expires"])
        chain, me = self.ctx.chain, self.ctx.key.public
        for r, nonce in list(self.locked.items()):  # an earlier round that never settled: its lock never lands
            if chain.state.nonce(me) < nonce:
                chain.forget_nonce(nonce)
                self.ctx.events.warning("lock.forgotten", round=r)
            self.locked.pop(r, None)
        if self.cfg.declared and me in env.body["publishers"]:
            self.ctx.spawn("collab.declare", self.declare, env.round, int(env.body["offer_deadline_ms"]))

    async def declare(self, round_no: int, deadline_ms: int) -> None:
        """Send our parameters and our budget lock to the pool (declared protocol)."""
        lock = self.lock(round_no)
        me = self.me
        body = {"budget": me.budget, "deadline": me.deadline, "own_data": me.own_data, "multiplier": me.multiplier,
                "omega": me.omega, "escrow": lock.wire}
        try:
            await self.ctx.ask(self.roster.pool, msg.MSG_DECLARE, body, round=round_no,
                               timeout=max(0.1, (deadline_ms - now_ms()) / 1000))
        except RequestFailed as err:
            self.ctx.events.warning("declare.refused", round=round_no, error=str(err)[:200])
            self.ctx.chain.forget_nonce(lock.body["nonce"])
            return
        self.locked[round_no] = int(lock.body["nonce"])

    def lock(self, round_no: int) -> Envelope:
        """Our signed budget lock for a round (payee and arbiter the pool, the round's expiry)."""
        return self.ctx.chain.sign_tx("escrow_lock", {
            "id": escrow_id(round_no, self.ctx.key.public), "payee": self.roster.pool,
            "amount": to_units(self.me.budget), "expires": self.expires[round_no], "arbiter": self.roster.pool,
            "ref": escrow_ref(round_no)}, round=round_no)

    @on(msg.MSG_BOOK, from_roles=(POOL,), slow=True)
    async def on_book(self, env: Envelope) -> None:
        """Plan against the book and send the order (with the budget lock in iteration 0)."""
        self.from_pool(env)
        b = env.body
        if env.round not in self.expires or (b["iteration"] > 0 and env.round not in self.locked):
            return
        self.per_device(b, BOOK_LISTS)
        self.book = b
        sellers = sellers_of(b["compute_capacity"], b["data_capacity"], b["compute_price"], b["data_price"],
                             b["phi"], b["theta"])
        with self.work.timed(env.round):
            plan = await self.plan(Book.from_sellers, sellers)
        lock = self.lock(env.round) if b["iteration"] == 0 else None
        timeout = max(0.1, (b["order_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.ctx.ask(self.roster.pool, msg.MSG_ORDER, order_body(plan, b["iteration"],
                                                                           lock.wire if lock else None),
                               round=env.round, timeout=timeout)
        except RequestFailed as err:
            self.ctx.events.warning("order.refused", round=env.round, iteration=b["iteration"], error=str(err)[:200])
            if lock is not None:
                self.ctx.chain.forget_nonce(lock.body["nonce"])
            return
        if lock is not None:
            self.locked[env.round] = int(lock.body["nonce"])

    @serve(msg.MSG_FINAL, reply=msg.MSG_FINAL_ORDER, from_roles=(POOL,))
    async def on_final(self, env: Envelope) -> dict[str, Any]:
        """Our final order against what the earlier publishers left (``clear_market``'s step)."""
        self.from_pool(env)
        b, book = env.body, self.book
        self.per_device(b, FINAL_LISTS)
        if book is None:
            raise Refuse("wrong-round", "no book seen this round")
        sellers = sellers_of(book["compute_capacity"], book["data_capacity"], b["compute_price"], b["data_price"],
                             book["phi"], book["theta"])
        with self.work.timed(env.round):
            plan = await self.plan(Book.from_sellers, sellers, b["compute_left"], b["data_left"])
        return order_body(plan, int(book["iteration"]))

    @serve(msg.MSG_FINAL_BOOK, reply=msg.MSG_FINAL_ORDER, from_roles=(POOL,))
    async def on_final_book(self, env: Envelope) -> dict[str, Any]:
        """Our final order against the final book and what the earlier publishers leave (declared protocol)."""
        self.from_pool(env)
        b = env.body
        if env.round not in self.locked:
            raise Refuse("wrong-round", "we declared nothing in this round")
        self.per_device(b, FINAL_BOOK_LISTS)
        sellers = sellers_of(b["compute_capacity"], b["data_capacity"], b["compute_price"], b["data_price"],
                             b["phi"], b["theta"])
        with self.work.timed(env.round):
            plan = await self.plan(Book.from_sellers, sellers, b["compute_left"], b["data_left"])
        return order_body(plan, int(b["iteration"]))

    def per_device(self, body: dict[str, Any], keys: tuple[str, ...]) -> None:
        """Refuse a pool message whose per-device lists do not hold one entry per device of the roster.

        Raises:
            Refuse: ``out-of-range``.
        """
        n = len(self.roster.devices)
        wrong = [k for k in keys if len(body[k]) != n]
        if wrong:
            raise Refuse(NodeReason.OUT_OF_RANGE, f"{', '.join(wrong)}: want one entry per device ({n})")

    async def plan(self, book: Any, *args: Any) -> Any:
        """Our portfolio against the pool's book (built by ``book(*args)``).

        Raises:
            Refuse: ``out-of-range`` when the pool's numbers are outside what the mechanism takes (no seller
                with capacity, inconsistent sizes).
        """
        try:
            return await self.ctx.compute(optimize_portfolio, self.me, book(*args), self.pricing.method,
                                          self.pricing.integral)
        except MechanismError as err:
            raise Refuse(NodeReason.OUT_OF_RANGE, f"the pool's book: {err}") from err


BOOK_LISTS = ("compute_capacity", "data_capacity", "compute_price", "data_price", "phi", "theta")
"""The per-device lists of a ``collab/book``."""
FINAL_LISTS = ("compute_left", "data_left", "compute_price", "data_price")
"""The per-device lists of a ``collab/final``."""
FINAL_BOOK_LISTS = (*BOOK_LISTS, "compute_left", "data_left")
"""The per-device lists of a ``collab/final-book``."""

APP = RoleApp("publisher", Publisher)
