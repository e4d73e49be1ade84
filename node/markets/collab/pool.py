"""The resource pool: leads rounds. A round is one regulation to equilibrium (or the cap) and its settlement.

With the ``declared`` protocol (the default for the pool's rules) the round is O(1) exchanges
(``declared.DeclaredPool``). With ``iterative`` (the paper's) it collects the devices' offers, then per
iteration publishes the book, collects the publishers' orders,
fills them (``fill_market``, the offline evaluation's own code), and — unless every seller is cleared or the
cap is reached — moves the prices by the round's rule and collects each device's signed new price. Then it
asks each publisher in turn for its final order against what the earlier ones left and settles every trade
through the publishers' escrow locks (``escrow_split``), with the record every validator replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bazaar.ledger.amounts import from_units, to_units
from bazaar.mechanisms.collab import Publisher
from bazaar.mechanisms.collab.agents import make_agent
from bazaar.mechanisms.collab.book import Book
from bazaar.mechanisms.collab.market import fill_market
from bazaar.mechanisms.collab.portfolio import Portfolio
from bazaar.mechanisms.collab.pricing import Regulator
from bazaar.mechanisms.collab.problem import PortfolioProblem
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import collab as msg

from ...rounds.collector import Collector
from ...rounds.engine import RoundError, RoundResult, RoundStart
from ..app import RoleApp, serve
from ..context import Refuse, RequestFailed
from .common import (
    DEVICE,
    PUBLISHER,
    CollabRole,
    escrow_id,
    escrow_ref,
    portfolio_of,
    replay_settlement,
    sellers_of,
)
from .declared import DeclaredPool, book_of, empty_trade, take_final, trade_of

MARGIN_S = 0.2


@dataclass
class _Round:
    number: int
    expires: int
    offers: Collector[Envelope]
    orders: Collector[Envelope] | None = None
    prices: Collector[Envelope] | None = None
    iteration: int = 0
    instructed: dict[int, tuple[float, float]] = field(default_factory=dict)
    directions: list[int] = field(default_factory=list)
    locks: dict[bytes, bytes] = field(default_factory=dict)
    declared: Collector[Envelope] | None = None
    publishers: dict[bytes, Publisher] = field(default_factory=dict)
    stage: str = "offers"


class Pool(DeclaredPool, CollabRole):
    """The resource pool (its :class:`RoundPlan` drives the market)."""

    current: _Round | None = None

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status`` (the regulation iteration in progress, if any)."""
        cur = self.current
        return {"settled_rounds": self.settled, "round": cur.number if cur else None,
                "iteration": cur.iteration if cur else None, "stage": cur.stage if cur else None}

    @serve(msg.MSG_OFFER, reply=msg.MSG_OFFER_ACK, from_roles=(DEVICE,))
    async def on_offer(self, env: Envelope) -> dict[str, Any]:
        """A device's offer for the round in progress."""
        cur = self.current
        if cur is None or env.round != cur.number:
            raise Refuse("wrong-round", "no round open")
        cur.offers.offer(env.sender, env)
        return {"accepted": True, "reason": ""}

    @serve(msg.MSG_ORDER, reply=msg.MSG_ORDER_ACK, from_roles=(PUBLISHER,))
    async def on_order(self, env: Envelope) -> dict[str, Any]:
        """A publisher's order for the iteration in progress (with its budget lock in iteration 0)."""
        cur = self.current
        if cur is None or cur.orders is None or env.round != cur.number or env.body["iteration"] != cur.iteration:
            raise Refuse("wrong-iteration", "no book open for this iteration")
        j = self.roster.publishers.index(env.sender)
        budget = self.budgets[j]
        n = len(self.roster.devices)
        b = env.body
        if len(b["compute_purchases"]) != n or len(b["data_purchases"]) != n:
            raise Refuse("bad-order", "an order must name every device")
        if b["spent"] > budget * (1 + 1e-9):
            raise Refuse("over-budget", f"the order spends {b['spent']:.6g} > budget {budget:.6g}")
        if b["compute"] > self.book_caps[0] * (1 + 1e-9) + 1e-9 or b["data"] > self.book_caps[1] * (1 + 1e-9) + 1e-9:
            raise Refuse("over-offer", "the order asks for more units than the devices offer")
        problem = PortfolioProblem(self.publishers_all[j], Book.from_sellers(self.book_sellers))
        if b["feasible"] and not problem.feasible(float(b["compute"]), float(b["data"])):
            raise Refuse("over-cppi", "the portfolio breaks the publisher's budget, deadline or CPPI constraint")
        if cur.iteration == 0:
            if b["escrow"] is None:
                raise Refuse("bad-escrow", "the first order must carry the budget lock")
            self.check_lock(b["escrow"], env.sender, budget, cur)
            cur.locks[env.sender] = b["escrow"]
        cur.orders.offer(env.sender, env)
        return {"accepted": True, "reason": ""}

    @serve(msg.MSG_PRICE, reply=msg.MSG_PRICE_ACK, from_roles=(DEVICE,))
    async def on_price(self, env: Envelope) -> dict[str, Any]:
        """A device's new prices: exactly what the rule moved them to."""
        cur = self.current
        if cur is None or cur.prices is None or env.round != cur.number or env.body["iteration"] != cur.iteration:
            raise Refuse("wrong-iteration", "no regulation open for this iteration")
        i = self.roster.devices.index(env.sender)
        want = cur.instructed.get(i)
        if want is None:
            raise Refuse("unknown-participant", "this device is not in the book")
        got = (float(env.body["compute_price"]), float(env.body["data_price"]))
        n = len(self.roster.devices)
        old = (self.prices[i], self.prices[n + i])
        if self.cfg.device_side:  # the device chose its step: with its gap, at most the agent's largest step
            for slot, (g, o) in enumerate(zip(got, old, strict=True)):
                d = cur.directions[i + slot * n]
                if (g - o) * d < 0 or (d == 0 and g != o):
                    raise Refuse("wrong-direction", f"price moved from {o:.6g} to {g:.6g} against its gap")
                if abs(g - o) > self.max_step * (1 + 1e-12) or g > self.pmax[slot]:
                    raise Refuse("over-step", f"price moved by {abs(g - o):.6g} > {self.max_step:.6g}")
        else:
            for g, w, o in zip(got, want, old, strict=True):
                if (g - o) * (w - o) < 0 or (w == o and g != o):
                    raise Refuse("wrong-direction", f"price moved from {o:.6g} to {g:.6g}; the rule says {w:.6g}")
                if g != w:
                    raise Refuse("over-step", f"price moved from {o:.6g} to {g:.6g}; the rule allows {w:.6g}")
        cur.prices.offer(env.sender, env)
        return {"accepted": True, "reason": ""}

    def check_lock(self, raw: bytes, payer: bytes, budget: float, cur: _Round) -> None:
        """A publisher's budget lock for this round, with the pool as payee and arbiter.

        Raises:
            Refuse: ``bad-escrow``.
        """
        from bazaar.ledger.txs import decode_tx
        from bazaar.protocol import ProtocolError

        try:
            lock = decode_tx(raw, self.ctx.network_id)
        except ProtocolError as err:
            raise Refuse("bad-escrow", f"budget lock: {err.reason}") from err
        b = lock.body
        if (lock.type != "tx/escrow_lock" or lock.sender != payer or b["amount"] != to_units(budget)
                or b["id"] != escrow_id(cur.number, payer) or b.get("arbiter") != self.roster.pool
                or b["payee"] != self.roster.pool or b.get("ref") != escrow_ref(cur.number)
                or b["expires"] != cur.expires):
            raise Refuse("bad-escrow", "the lock must lock the budget under this round's id with the pool as "
                                       "payee and arbiter, expiring at the round's height")

    # ------------------------------------------------------------------ rounds
    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """Offers, the regulation loop, the final orders, the settlement."""
        ctx, roster = self.ctx, self.roster
        connected = ctx.connected()
        devices = [k for k in roster.devices if k in connected]
        pubs = [k for k in roster.publishers if k in connected]
        if not devices or not pubs:
            raise RoundError("no device or no publisher is connected")
        offer_s = ctx.deadline("offer_s")
        expires = ctx.chain.height + self.cfg.escrow_expiry
        cur = _Round(rnd.number, expires, Collector(devices, offer_s + MARGIN_S))
        if self.cfg.declared:
            cur.declared = Collector(pubs, offer_s + MARGIN_S)
        self.current = cur
        try:
            return await self._run(rnd, cur, devices, pubs, offer_s)
        finally:
            self.current = None

    async def _run(self, rnd: RoundStart, cur: _Round, devices: list[bytes], pubs: list[bytes],
                   offer_s: float) -> RoundResult:
        ctx, roster, n = self.ctx, self.roster, len(self.roster.devices)
        await ctx.publish(msg.MSG_CALL, {"devices": devices, "publishers": pubs,
                                         "offer_deadline_ms": now_ms() + int(offer_s * 1000),
                                         "expires": cur.expires}, round=rnd.number)
        got = await cur.offers.wait()
        offers = {roster.devices.index(k): e for k, e in got.answers.items()}
        book = book_of(offers, n)
        self.prices = book.start_f + book.start_d
        left_out: set[bytes] = set(devices) - set(got.answers)
        if self.cfg.declared:
            return await self.run_declared(rnd, cur, devices, pubs, book, left_out)
        caps_f, caps_d, phi, theta = book.caps_f, book.caps_d, book.phi, book.theta
        cur.stage = "regulate"
        price_wires: list[bytes | None] = list(book.offer_wires)
        pricing = self.cfg.pricing()
        regulator = None
        if not self.cfg.device_side:
            try:
                regulator = Regulator(self.cfg.algorithm, pricing, n)
            except MechanismError as err:
                raise RoundError(str(err)) from err
        self.max_step = make_agent(self.cfg.algorithm, pricing, 0).max_step() if self.cfg.device_side else 0.0
        self.pmax = (pricing.p_max_compute, pricing.p_max_data)
        self.publishers_all = self.cfg.publishers()
        self.budgets = [p.budget for p in self.publishers_all]
        order_s, price_s = ctx.deadline("order_s"), ctx.deadline("price_s")
        path: list[list[float]] = []
        missed_orders = 0
        t = 0
        while True:
            cur.iteration = t
            self.book_caps = (sum(caps_f), sum(caps_d))
            self.book_sellers = sellers_of(caps_f, caps_d, self.prices[:n], self.prices[n:], phi, theta)
            active = [k for k in pubs if t == 0 or k in cur.locks]
            cur.orders = Collector(active, order_s + MARGIN_S)
            await ctx.publish(msg.MSG_BOOK, {
                "iteration": t, "compute_capacity": caps_f, "data_capacity": caps_d,
                "compute_price": self.prices[:n], "data_price": self.prices[n:], "phi": phi, "theta": theta,
                "order_deadline_ms": now_ms() + int(order_s * 1000)}, round=rnd.number)
            orders = await cur.orders.wait()
            cur.orders = None
            missed_orders += len(orders.missing)
            left_out |= set(orders.missing)
            plans = [portfolio_of(orders.answers[k].body, pricing.method) if k in orders.answers else _nothing(n)
                     for k in roster.publishers]
            sellers = sellers_of(caps_f, caps_d, self.prices[:n], self.prices[n:], phi, theta)
            with self.work.timed(rnd.number):
                state = await ctx.compute(fill_market, sellers, self.budgets, plans, pricing.tol)
            path.append(list(self.prices))
            if state.equilibrium or t >= pricing.max_iter:
                break
            new = regulator.next_prices(t, list(self.prices), state) if regulator else list(self.prices)
            live = [k for k in devices if caps_f[roster.devices.index(k)] > 0 or caps_d[roster.devices.index(k)] > 0]
            cur.instructed = {roster.devices.index(k): (new[roster.devices.index(k)], new[n + roster.devices.index(k)])
                              for k in live}
            cur.prices = Collector(live, price_s + MARGIN_S)
            await ctx.publish(msg.MSG_REGULATE, {
                "iteration": t, "compute_price": new[:n], "data_price": new[n:],
                "directions": [state.direction(i) for i in range(2 * n)],
                "gaps": [state.relative_gap(i) for i in range(2 * n)],
                "price_deadline_ms": now_ms() + int(price_s * 1000)}, round=rnd.number)
            cur.directions = [state.direction(i) for i in range(2 * n)]
            answers = await cur.prices.wait()
            cur.prices = None
            for k in live:  # a device that did not answer leaves the book (its offer is gone)
                i = roster.devices.index(k)
                if k in answers.answers:
                    price_wires[i] = answers.answers[k].wire
                    new[i] = float(answers.answers[k].body["compute_price"])
                    new[n + i] = float(answers.answers[k].body["data_price"])
                else:
                    caps_f[i] = caps_d[i] = 0.0
                    left_out.add(k)
                    ctx.events.warning("device.dropped", round=rnd.number, device=ctx.name_of(k), iteration=t)
            self.prices = new
            t += 1
        cur.stage = "final"
        trades, final_wires = await self.final_orders(rnd, cur, caps_f, caps_d, phi, theta, pricing.method)
        cur.stage = "settle"
        nonce = await self.settle(rnd, cur, caps_f, caps_d, price_wires, final_wires)
        return self.round_result(rnd, devices, pubs, left_out, nonce, t, state.equilibrium, state.gap,
                                 list(self.prices), path, trades, missed_orders)

    async def final_orders(self, rnd: RoundStart, cur: _Round, caps_f: list[float], caps_d: list[float],
                           phi: list[float], theta: list[float], method: str) -> tuple[list[dict[str, Any]],
                                                                                        list[bytes]]:
        """Each publisher in turn buys from what the earlier ones left (``clear_market`` over the network)."""
        ctx, roster, n = self.ctx, self.roster, len(self.roster.devices)
        left_f, left_d = list(caps_f), list(caps_d)
        trades, wires = [], []
        for k in roster.publishers:
            if k not in cur.locks:
                trades.append(empty_trade(n))
                continue
            try:
                ans = await ctx.ask(k, msg.MSG_FINAL, {"compute_left": left_f, "data_left": left_d,
                                                       "compute_price": self.prices[:n],
                                                       "data_price": self.prices[n:]},
                                    round=rnd.number, timeout=ctx.deadline("order_s"))
            except RequestFailed as err:
                ctx.events.warning("final.missing", round=rnd.number, publisher=ctx.name_of(k), error=str(err)[:200])
                trades.append(empty_trade(n))
                continue
            b = ans.body
            if ans.type != msg.MSG_FINAL_ORDER or ans.round != rnd.number or not take_final(b, left_f, left_d,
                                                                                            caps_f, caps_d):
                ctx.events.warning("final.refused", round=rnd.number, publisher=ctx.name_of(k), reason="over-offer")
                trades.append(empty_trade(n))
                continue
            wires.append(ans.wire)
            trades.append(trade_of(b))
        return trades, wires

    async def settle(self, rnd: RoundStart, cur: _Round, caps_f: list[float], caps_d: list[float],
                     price_wires: list[bytes | None], final_wires: list[bytes]) -> int | None:
        """The locks, the record, one split per publisher (its trades, the rest refunded)."""
        ctx, roster = self.ctx, self.roster
        if not cur.locks:
            return None
        data = {"round": rnd.number, "compute_capacity": caps_f, "data_capacity": caps_d,
                "prices": price_wires, "orders": final_wires}
        amounts = {k: to_units(cur.publishers[k].budget if k in cur.publishers
                               else self.budgets[roster.publishers.index(k)]) for k in cur.locks}
        try:
            splits = replay_settlement(data, ctx.network_id, roster, amounts)
        except Refuse as err:
            ctx.events.error("settle.inconsistent", round=rnd.number, error=str(err)[:200])
            return None
        txs = list(cur.locks.values())
        record = ctx.chain.sign_tx("record", {"kind": msg.SETTLEMENT_RECORD, "data": data}, round=rnd.number)
        txs.append(record.wire)
        last = record
        for k in roster.publishers:
            if k in cur.locks:
                last = ctx.chain.sign_tx("escrow_split", {"id": escrow_id(rnd.number, k), "to": splits.get(k, {})},
                                         round=rnd.number)
                txs.append(last.wire)
        await ctx.chain.submit(txs, seal=True)  # the round's whole settlement: a proposer seals at once
        ctx.events.info("round.settlement", round=rnd.number, txs=len(txs),
                        moved=from_units(sum(sum(p.values()) for p in splits.values())))
        return int(last.body["nonce"])

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Name the settling block's proposer."""
        block = self.ctx.chain.block(summary["height"]) if summary["height"] else None
        if block is not None:
            summary["proposer"] = self.ctx.name_of(block.header.proposer)
            self.settled += 1


def _nothing(n: int) -> Portfolio:
    """The plan of a publisher that sent no order this iteration (it is left out of the iteration)."""
    return Portfolio(0.0, 0.0, (0.0,) * n, (0.0,) * n, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False, "none")


APP = RoleApp("pool", Pool)
