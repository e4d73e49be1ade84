"""The resource pool's view of the market: demand, supply and the equilibrium test (docs/models/collab.md).

One evaluation at given prices:

1. every potential buyer (budget > 0) plans its portfolio against the full book (its notional demand);
2. the pool fills the plans in publisher order, cheapest first from the capacity still left, compute before
   data, never beyond a publisher's budget — the matched quantities;
3. what a publisher wanted but could not get (every offer sold out, or its budget ran out at the higher prices
   left) is excess demand, spread over the sellers of that resource that sold out, in proportion to capacity.

Per seller and resource: supply = price × capacity, demand = price × (matched + excess), both in money.
A seller is cleared when |demand − supply| ≤ tol × supply, or when its price is 0 and demand < supply (free
disposal: an unsold offer at price zero is an equilibrium too). The market is in equilibrium when every seller
is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import MechanismError
from .book import Book, Ladder
from .model import Publisher, Seller
from .optimize import optimize_portfolio
from .portfolio import Portfolio


@dataclass(frozen=True)
class MarketState:
    """Demand and supply at one price vector.

    Slots are the concatenation of every seller's compute offer (first I entries) and data offer (next I).

    Attributes:
        prices: price per slot.
        capacity: quantity offered per slot (supply in units).
        demand_qty: matched plus excess quantity per slot.
        matched_qty: matched quantity per slot.
        supply: money supply per slot (price × capacity).
        demand: money demand per slot.
        cleared: whether each slot passes the equilibrium test.
        plans: every publisher's planned portfolio.
    """

    prices: tuple[float, ...]
    capacity: tuple[float, ...]
    demand_qty: tuple[float, ...]
    matched_qty: tuple[float, ...]
    supply: tuple[float, ...]
    demand: tuple[float, ...]
    cleared: tuple[bool, ...]
    plans: tuple[Portfolio, ...]

    @property
    def equilibrium(self) -> bool:
        """Every slot cleared."""
        return all(self.cleared)

    @property
    def gap(self) -> float:
        """max |demand − supply| in money over the slots."""
        return max((abs(d - s) for d, s in zip(self.demand, self.supply, strict=True)), default=0.0)

    def direction(self, i: int) -> int:
        """+1 to raise slot i's price, −1 to lower it, 0 when it is cleared."""
        if self.cleared[i]:
            return 0
        return 1 if self.demand_qty[i] > self.capacity[i] else -1

    def relative_gap(self, i: int) -> float:
        """|demand − supply| / supply in quantities (0 for an empty slot)."""
        cap = self.capacity[i]
        return abs(self.demand_qty[i] - cap) / cap if cap > 0 else 0.0


def _take(ladder: Ladder, left: list[float], prices: Sequence[float], want: float, money: float,
          got: list[float]) -> tuple[float, float]:
    """Buy up to ``want`` units cheapest first from ``left`` within ``money``; returns (units, cost)."""
    units = cost = 0.0
    for i in ladder.order:
        if want - units <= 1e-12 or money - cost <= 1e-12:
            break
        if left[i] <= 0:
            continue
        q = min(left[i], want - units)
        if prices[i] > 0:
            q = min(q, (money - cost) / prices[i])
        left[i] -= q
        got[i] += q
        units += q
        cost += q * prices[i]
    return units, cost


def _spread(excess: float, left: list[float], caps: Sequence[float], out: list[float]) -> None:
    """Add ``excess`` to the sold-out offers of one resource in proportion to their capacity."""
    sold = [i for i, c in enumerate(caps) if c > 0 and left[i] <= 1e-9 * max(1.0, c)]
    total = sum(caps[i] for i in sold)
    if excess <= 1e-12 or total <= 0:
        return
    for i in sold:
        out[i] += excess * caps[i] / total


def evaluate_market(sellers: Sequence[Seller], publishers: Sequence[Publisher], tol: float = 0.05,
                    method: str = "sgsa", integral: bool = False) -> MarketState:
    """Demand, supply and the equilibrium test at the sellers' current prices.

    Args:
        sellers: the offers (capacities and prices).
        publishers: the buyers, served in this order.
        tol: relative equilibrium tolerance per seller.
        method: portfolio solver of the publishers.
        integral: whether publishers buy whole units.

    Raises:
        MechanismError: no sellers or no publishers, or ``tol`` < 0.
    """
    if not sellers or not publishers:
        raise MechanismError("a market needs at least one seller and one publisher")
    if tol < 0:
        raise MechanismError("equilibrium tolerance must be >= 0")
    book = Book.from_sellers(sellers)
    plans = [optimize_portfolio(pub, book, method, integral) for pub in publishers]
    return fill_market(sellers, [p.budget for p in publishers], plans, tol)


def fill_market(sellers: Sequence[Seller], budgets: Sequence[float], plans: Sequence[Portfolio],
                tol: float = 0.05) -> MarketState:
    """Steps 2 and 3 of an evaluation: fill the publishers' plans (in order) from the book and test the
    equilibrium — what the resource pool computes from the orders it received (each publisher computes its own
    plan, step 1, against the book the pool published).

    Raises:
        MechanismError: no sellers, ``budgets`` and ``plans`` of different lengths, or ``tol`` < 0.
    """
    if not sellers:
        raise MechanismError("a market needs at least one seller")
    if len(budgets) != len(plans):
        raise MechanismError(f"{len(plans)} plans for {len(budgets)} publishers")
    if tol < 0:
        raise MechanismError("equilibrium tolerance must be >= 0")
    n = len(sellers)
    book = Book.from_sellers(sellers)
    pf = [s.compute_price for s in sellers]
    pd = [s.data_price for s in sellers]
    cf = [s.compute_capacity for s in sellers]
    cd = [s.data_capacity for s in sellers]
    left_f, left_d = list(cf), list(cd)
    got_f, got_d = [0.0] * n, [0.0] * n
    excess_f = excess_d = 0.0
    for budget, plan in zip(budgets, plans, strict=True):
        if not plan.feasible:
            continue
        xf, spent = _take(book.compute, left_f, pf, plan.compute, budget, got_f)
        xd, _ = _take(book.data, left_d, pd, plan.data, budget - spent, got_d)
        excess_f += max(0.0, plan.compute - xf)
        excess_d += max(0.0, plan.data - xd)
    dem_f, dem_d = list(got_f), list(got_d)
    _spread(excess_f, left_f, cf, dem_f)
    _spread(excess_d, left_d, cd, dem_d)
    prices = (*pf, *pd)
    caps = (*cf, *cd)
    dq = (*dem_f, *dem_d)
    cleared = tuple(c <= 0 or abs(q - c) <= tol * c or (p <= 0 and q < c)
                    for p, c, q in zip(prices, caps, dq, strict=True))
    supply = tuple(p * c for p, c in zip(prices, caps, strict=True))
    demand = tuple(p * q for p, q in zip(prices, dq, strict=True))
    return MarketState(prices, caps, dq, (*got_f, *got_d), supply, demand, cleared, tuple(plans))


def clear_market(sellers: Sequence[Seller], publishers: Sequence[Publisher], method: str = "sgsa",
                 integral: bool = False) -> list[Portfolio]:
    """Settle the trades: publishers in order re-plan against what is left of the book and buy it.

    Every returned portfolio is feasible for its publisher against the residual book it saw, so the
    trades never exceed a seller's capacity or a publisher's budget.
    """
    left_f = [s.compute_capacity for s in sellers]
    left_d = [s.data_capacity for s in sellers]
    out = []
    for pub in publishers:
        book = Book.from_sellers(sellers, left_f, left_d)
        port = optimize_portfolio(pub, book, method, integral)
        for i in range(len(sellers)):
            left_f[i] = max(0.0, left_f[i] - port.compute_purchases[i])
            left_d[i] = max(0.0, left_d[i] - port.data_purchases[i])
        out.append(port)
    return out
