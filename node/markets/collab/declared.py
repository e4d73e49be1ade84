"""The pool's side of the ``declared`` round protocol (docs/adr/0160-collab-declared-round.md): O(1) exchanges.

Each publisher answers the pool's call with its declared portfolio parameters and its signed budget lock (to the
pool alone). The pool regulates the prices locally with the offline code (``run_pricing`` on the offered book
and the declared publishers: the network equals ``bazaar solve collab-pricing`` by construction), then asks, all
at once, every device to sign its final price (it checks its own price path against the gap directions) and
every publisher to sign its final order against the final book and what the earlier publishers leave. A device
that does not sign leaves the book and the regulation is run again without it; a publisher whose order differs
from the one predicted makes the pool ask the later publishers again with what is really left. The settlement
record and its contract are those of the iterative protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from bazaar.ledger.amounts import from_units, to_units
from bazaar.mechanisms.collab import Publisher
from bazaar.mechanisms.collab.pricing import PricingConfig, PricingResult, run_pricing
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope
from bazaar.protocol.markets import collab as msg

from ...rounds.engine import RoundResult, RoundStart
from ..app import serve
from ..context import Refuse, RequestFailed
from .common import PUBLISHER, CollabRole, sellers_of

if TYPE_CHECKING:
    from .pool import _Round

@dataclass
class Book:
    """The offered book of a round: capacities (0 for a device that left), starting prices, φ, θ."""

    caps_f: list[float]
    caps_d: list[float]
    start_f: list[float]
    start_d: list[float]
    phi: list[float]
    theta: list[float]
    offer_wires: list[bytes | None] = field(default_factory=list)

    def sellers(self) -> Any:
        """The sellers at their starting prices."""
        return sellers_of(self.caps_f, self.caps_d, self.start_f, self.start_d, self.phi, self.theta)


def book_of(offers: dict[int, Envelope], n: int) -> Book:
    """The book of the devices' signed offers (device index -> offer; a device with none offers nothing)."""
    cols = [[float(offers[i].body[key]) if i in offers else 0.0 for i in range(n)]
            for key in ("compute_capacity", "data_capacity", "compute_price", "data_price", "phi", "theta")]
    return Book(cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], [offers[i].wire if i in offers else None
                                                                      for i in range(n)])


@dataclass
class Confirmed:
    """What the confirmation exchange produced."""

    trades: list[dict[str, Any]]
    final_wires: list[bytes]
    price_wires: list[bytes | None]
    dropped: list[bytes]


def declared_publisher(body: dict[str, Any], market: dict[str, Any]) -> Publisher:
    """The publisher a ``declare`` states, with the parameter file's market constants.

    Raises:
        Refuse: ``bad-declaration`` (the parameters do not make a publisher).
    """
    try:
        return Publisher(float(body["budget"]), float(body["deadline"]), float(body["own_data"]),
                         float(body["multiplier"]), float(body["omega"]), **market)
    except MechanismError as err:
        raise Refuse("bad-declaration", str(err)[:200]) from err


def regulate(book: Book, publishers: list[Publisher], algorithm: str, pricing: PricingConfig) -> PricingResult:
    """The whole regulation and the trades, as ``bazaar solve collab-pricing`` computes them (history kept)."""
    return run_pricing(book.sellers(), publishers, algorithm, pricing)


def residuals(book: Book, result: PricingResult) -> list[tuple[list[float], list[float]]]:
    """What is left of the book before each publisher's final order (``clear_market``'s bookkeeping)."""
    left_f, left_d = list(book.caps_f), list(book.caps_d)
    out = []
    for port in result.portfolios:
        out.append((list(left_f), list(left_d)))
        for i in range(len(left_f)):
            left_f[i] = max(0.0, left_f[i] - port.compute_purchases[i])
            left_d[i] = max(0.0, left_d[i] - port.data_purchases[i])
    return out


class DeclaredPool(CollabRole):
    """The declared protocol's handlers and stages, mixed into the pool."""

    current: _Round | None

    @serve(msg.MSG_DECLARE, reply=msg.MSG_DECLARE_ACK, from_roles=(PUBLISHER,))
    async def on_declare(self, env: Envelope) -> dict[str, Any]:
        """A publisher's declared parameters and budget lock for the round in progress."""
        cur = self.current
        if cur is None or env.round != cur.number or cur.declared is None:
            raise Refuse("wrong-round", "no round open for declarations")
        pub = declared_publisher(env.body, dict(self.cfg.params["market"]))
        self.check_lock(env.body["escrow"], env.sender, pub.budget, cur)  # type: ignore[attr-defined]
        cur.declared.offer(env.sender, env)
        cur.publishers[env.sender] = pub
        cur.locks[env.sender] = env.body["escrow"]
        return {"accepted": True, "reason": ""}

    async def run_declared(self, rnd: RoundStart, cur: _Round, devices: list[bytes], pubs: list[bytes],
                           book: Book, left_out: set[bytes]) -> RoundResult:
        """After the offers: the declarations, the local regulation, the confirmation, the settlement."""
        ctx, roster, n = self.ctx, self.roster, len(self.roster.devices)
        assert cur.declared is not None
        got = await cur.declared.wait()
        cur.declared = None
        ctx.events.info("round.declared", round=rnd.number, offers=sum(w is not None for w in book.offer_wires),
                        declared=len(got.answers))
        left_out |= set(got.missing)
        order = [k for k in roster.publishers if k in cur.publishers]
        pricing = self.cfg.pricing()
        start = book.start_f + book.start_d
        result: PricingResult | None = None
        confirmed: Confirmed | None = None
        while order and any(c > 0 for c in book.caps_f + book.caps_d):
            cur.stage = "regulate"
            try:
                result = await self.regulate_locally(rnd, book, [cur.publishers[k] for k in order], pricing)
            except MechanismError as err:
                ctx.events.warning("regulation.failed", round=rnd.number, error=str(err)[:200])
                break
            cur.iteration = result.iterations
            cur.stage = "confirm"
            ctx.events.info("round.regulated", round=rnd.number, iterations=result.iterations,
                            cleared=result.equilibrium)
            confirmed = await self.confirm_outcome(rnd, book, order, result)
            if not confirmed.dropped:
                break
            for k in confirmed.dropped:  # a device that did not sign leaves the book; regulate again without it
                i = roster.devices.index(k)
                book.caps_f[i] = book.caps_d[i] = 0.0
                left_out.add(k)
                ctx.events.warning("device.dropped", round=rnd.number, device=ctx.name_of(k))
            result = confirmed = None
        nonce = None
        if confirmed is not None and result is not None:
            cur.stage = "settle"
            nonce = await self.settle(rnd, cur, book.caps_f, book.caps_d,  # type: ignore[attr-defined]
                                      confirmed.price_wires, confirmed.final_wires)
            trades = confirmed.trades
            path = [list(p) for p, _ in result.history]
            cleared, gap, iterations = result.equilibrium, result.gap, result.iterations
        else:
            trades = [empty_trade(n) for _ in roster.publishers]
            path, cleared, gap, iterations = [start], False, 0.0, 0
        final = path[-1]
        return self.round_result(rnd, devices, pubs, left_out, nonce, iterations, cleared, gap, final, path,
                                 trades, len(got.missing))

    def round_result(self, rnd: RoundStart, devices: list[bytes], pubs: list[bytes], left_out: set[bytes],
                     nonce: int | None, iterations: int, cleared: bool, gap: float, final: list[float],
                     path: list[list[float]], trades: list[dict[str, Any]], missed: int) -> RoundResult:
        """The round's summary: the outcome (what ``bazaar solve collab-pricing`` prints) and the metrics."""
        ctx, n = self.ctx, len(self.roster.devices)
        outcome = {
            "algorithm": self.cfg.algorithm, "iterations": iterations, "cleared": cleared,
            "prices": {"compute": final[:n], "data": final[n:]},
            "price_path": [{"compute": p[:n], "data": p[n:]} for p in path],
            "trades": [{k: tr[k] for k in ("compute", "data", "cost")} for tr in trades],
            "payoff": [tr["payoff"] for tr in trades], "gap": gap,
        }
        metrics = {"iterations": iterations, "cleared": cleared, "gap": gap,
                   "avg_compute_price": sum(final[:n]) / n, "avg_data_price": sum(final[n:]) / n,
                   "total_payoff": sum(tr["payoff"] for tr in trades), "missed_orders": missed,
                   "traded": from_units(sum(to_units(tr["cost"]) for tr in trades))}
        invited = [ctx.name_of(k) for k in (*devices, *pubs)]
        return RoundResult(invited, sorted(ctx.name_of(k) for k in left_out), nonce,
                           3 * ctx.deadline("block_s"), metrics=metrics, outcome=outcome)

    async def regulate_locally(self, rnd: RoundStart, book: Book, publishers: list[Publisher],
                               pricing: PricingConfig) -> PricingResult:
        """The regulation on the pool (counted as the pool's own work).

        Raises:
            MechanismError: the book cannot make a market (no capacity left).
        """
        with self.work.timed(rnd.number):
            return await self.ctx.compute(regulate, book, publishers, self.cfg.algorithm, pricing)

    async def confirm_outcome(self, rnd: RoundStart, book: Book, order: list[bytes], result: PricingResult
                              ) -> Confirmed:
        """Ask every device with capacity to sign its final price and every declared publisher (``order``, in
        roster order) to sign its final order, all at once."""
        ctx, n = self.ctx, len(self.roster.devices)
        path = [p for p, _ in result.history]
        dirs = [d for _, d in result.history[:-1]]
        final = path[-1]
        live = [k for i, k in enumerate(self.roster.devices) if (book.caps_f[i] > 0 or book.caps_d[i] > 0)
                and result.iterations > 0]  # no regulation: the signed offers are the final prices
        prices: dict[bytes, Envelope] = {}
        finals: dict[bytes, Envelope | None] = {}
        lefts = residuals(book, result)
        price_s, order_s = ctx.deadline("price_s"), ctx.deadline("order_s")

        async def ask_device(k: bytes) -> None:
            i = self.roster.devices.index(k)
            body = {"iteration": result.iterations, "compute_path": [p[i] for p in path],
                    "data_path": [p[n + i] for p in path], "compute_directions": [d[i] for d in dirs],
                    "data_directions": [d[n + i] for d in dirs]}
            try:
                ans = await ctx.ask(k, msg.MSG_OUTCOME, body, round=rnd.number, timeout=price_s)
            except RequestFailed as err:
                ctx.events.warning("outcome.missing", round=rnd.number, device=ctx.name_of(k), error=str(err)[:200])
                return
            if ans.type != msg.MSG_PRICE or ans.round != rnd.number or ans.body["iteration"] != result.iterations \
                    or (ans.body["compute_price"], ans.body["data_price"]) != (final[i], final[n + i]):
                ctx.events.warning("price.refused", round=rnd.number, device=ctx.name_of(k), reason="over-step")
                return
            prices[k] = ans

        async def ask_publisher(j: int, k: bytes) -> None:
            finals[k] = await self.final_one(rnd, k, book, final, lefts[j], result.iterations, order_s)

        async with trio.open_nursery() as nursery:
            for k in live:
                nursery.start_soon(ask_device, k)
            for j, k in enumerate(order):
                nursery.start_soon(ask_publisher, j, k)
        dropped = [k for k in live if k not in prices]
        wires: list[bytes | None] = list(book.offer_wires)
        for k, env in prices.items():
            wires[self.roster.devices.index(k)] = env.wire
        trades, final_wires = await self.walk_finals(rnd, book, final, order, lefts, finals, result.iterations)
        return Confirmed(trades, final_wires, wires, dropped)

    async def walk_finals(self, rnd: RoundStart, book: Book, final: tuple[float, ...], order: list[bytes],
                          lefts: list[tuple[list[float], list[float]]], finals: dict[bytes, Envelope | None],
                          iteration: int) -> tuple[list[dict[str, Any]], list[bytes]]:
        """Take the final orders in publisher order against what is really left: ``(trades per roster publisher,
        signed final orders)``. A publisher that was asked with a residual an earlier publisher's actual order
        changed is asked again with what is left (sequentially, as in the iterative protocol)."""
        ctx, n = self.ctx, len(self.roster.devices)
        left_f, left_d = list(book.caps_f), list(book.caps_d)
        trades = [empty_trade(n) for _ in self.roster.publishers]
        wires: list[bytes] = []
        for j, k in enumerate(order):
            ans = finals.get(k)
            if (left_f, left_d) != lefts[j]:
                ctx.events.warning("final.again", round=rnd.number, publisher=ctx.name_of(k))
                ans = await self.final_one(rnd, k, book, final, (list(left_f), list(left_d)), iteration,
                                           ctx.deadline("order_s"))
            if ans is None:
                continue
            if ans.type != msg.MSG_FINAL_ORDER or ans.round != rnd.number \
                    or not take_final(ans.body, left_f, left_d, book.caps_f, book.caps_d):
                ctx.events.warning("final.refused", round=rnd.number, publisher=ctx.name_of(k), reason="over-offer")
                continue
            wires.append(ans.wire)
            trades[self.roster.publishers.index(k)] = trade_of(ans.body)
        return trades, wires

    async def final_one(self, rnd: RoundStart, k: bytes, book: Book, final: tuple[float, ...],
                        left: tuple[list[float], list[float]], iteration: int, timeout: float) -> Envelope | None:
        """One publisher's signed final order against ``left`` at the final prices (None: none, or refused)."""
        ctx, n = self.ctx, len(self.roster.devices)
        body = {"iteration": iteration, "compute_capacity": book.caps_f, "data_capacity": book.caps_d,
                "compute_price": list(final[:n]), "data_price": list(final[n:]), "phi": book.phi,
                "theta": book.theta, "compute_left": left[0], "data_left": left[1]}
        try:
            ans = await ctx.ask(k, msg.MSG_FINAL_BOOK, body, round=rnd.number, timeout=timeout)
        except RequestFailed as err:
            ctx.events.warning("final.missing", round=rnd.number, publisher=ctx.name_of(k), error=str(err)[:200])
            return None
        return ans


def take_final(body: dict[str, Any], left_f: list[float], left_d: list[float], caps_f: list[float],
               caps_d: list[float]) -> bool:
    """Take a final order's purchases from what is left (in place); False (nothing taken) when it names another
    number of devices or takes more than a device has left."""
    n = len(left_f)
    qf, qd = [float(x) for x in body["compute_purchases"]], [float(x) for x in body["data_purchases"]]
    if len(qf) != n or len(qd) != n or any(qf[i] > left_f[i] + 1e-9 * max(1.0, caps_f[i])
                                           or qd[i] > left_d[i] + 1e-9 * max(1.0, caps_d[i]) for i in range(n)):
        return False
    for i in range(n):
        left_f[i] = max(0.0, left_f[i] - qf[i])
        left_d[i] = max(0.0, left_d[i] - qd[i])
    return True


def empty_trade(n: int) -> dict[str, Any]:
    """The trade of a publisher that bought nothing."""
    return {"compute": [0.0] * n, "data": [0.0] * n, "cost": 0.0, "payoff": 0.0}


def trade_of(order: dict[str, Any]) -> dict[str, Any]:
    """The trade a signed final order states (its purchases, what it spent, its payoff)."""
    return {"compute": [float(x) for x in order["compute_purchases"]],
            "data": [float(x) for x in order["data_purchases"]], "cost": float(order["spent"]),
            "payoff": float(order["payoff"])}
