"""Greedy winner determination by bid density (the paper's Algorithms 1 and 3) and its critical payments.

Candidates ``(buyer, option)`` are taken in decreasing bid density ``v/√q`` (ties: lower buyer index, then lower
option index); each is matched with the first seller, in a fixed seller order, that the buyer may reach, that
still has room and whose ask the bid covers; a buyer trades at most once. Sellers are ordered by their per-unit
ask (``"ask"``, ties by index) or, as the SPEC's literal reading of Algorithm 1, by ``ask/√capacity``
(``"ask_density"``); see docs/models/hierarchical.md for why ``"ask"`` is the default.

The allocation is monotone in a bid: raising ``v[b, o]`` moves the candidate earlier, the candidates processed
before it are then a prefix of those processed before, the state it meets has at least as much room everywhere
and it still wins. A winner's critical bid — the least bid on its option at which it still wins that option — is
found exactly by scanning the positions it could take in the order of the others (:func:`critical_bids`), and by
bisection as a check (:func:`critical_bid_bisection`).
"""

from __future__ import annotations

import math

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .market import NO_TRADE, Allocation, Market, fit_tolerance, fits, welfare_of

SELLER_ORDERS = ("ask", "ask_density")


def seller_order(m: Market, order: str = "ask") -> list[int]:
    """Seller indices in the order the greedy tries them.

    Raises:
        MechanismError: unknown ``order``.
    """
    if order == "ask":
        keys = [(float(m.ask[s]), s) for s in range(m.n_sellers)]
    elif order == "ask_density":
        keys = [
            (float(m.ask[s]) / math.sqrt(m.capacity[s]) if m.capacity[s] > 0 else math.inf, s)
            for s in range(m.n_sellers)
        ]
    else:
        raise MechanismError(f"unknown seller order {order!r} (use one of {', '.join(SELLER_ORDERS)})")
    return [s for _, s in sorted(keys)]


def candidate_order(m: Market) -> list[tuple[int, int]]:
    """Admitted ``(buyer, option)`` pairs by decreasing density ``v/√q``, ties by buyer then option index."""
    adm = m.admitted()
    keys = []
    for b in range(m.n_buyers):
        for o in range(m.n_options):
            if adm[b, o]:
                keys.append((-float(m.value[b, o]) / math.sqrt(float(m.quantity[b, o])), b, o))
    keys.sort()
    return [(b, o) for _, b, o in keys]


def _first_seller(m: Market, b: int, o: int, rem: np.ndarray, sellers: list[int]) -> int:
    q = float(m.quantity[b, o])
    for s in sellers:
        if m.trade_ok(b, o, s) and fits(float(rem[s]), q):
            return s
    return NO_TRADE


def greedy_allocate(m: Market, order: str = "ask") -> Allocation:
    """Allocate greedily by bid density (no payments; see :func:`greedy_clear`).

    Returns:
        An :class:`Allocation` with zero payments.
    """
    sellers = seller_order(m, order)
    rem = m.capacity.astype(float).copy()
    seller = np.full(m.n_buyers, NO_TRADE, dtype=int)
    option = np.full(m.n_buyers, NO_TRADE, dtype=int)
    for b, o in candidate_order(m):
        if seller[b] != NO_TRADE:
            continue
        s = _first_seller(m, b, o, rem, sellers)
        if s != NO_TRADE:
            seller[b], option[b] = s, o
            rem[s] -= m.quantity[b, o]
    return Allocation(seller, option, np.zeros(m.n_buyers), welfare_of(m, seller, option), "greedy")


def critical_bids(m: Market, alloc: Allocation, order: str = "ask") -> np.ndarray:
    """Exact critical bid of every winner (``nan`` for losers).

    For winner ``b`` on option ``o`` the other candidates keep their order; inserting ``(b, o)`` before the
    ``p``-th of them corresponds to the bid interval ``(δ_p·√q, δ_{p−1}·√q]`` (``δ``: their densities). There it
    wins iff it is still untraded and some reachable seller has room (the state is the one after the first ``p``
    others) and the bid covers that seller's ask and the base price. The least such bid over all positions is
    the critical bid. Cost: one greedy pass per winner.
    """
    sellers = seller_order(m, order)
    cands = candidate_order(m)
    # plain Python floats and lists (the same IEEE values as the arrays' elements): this loop is on every node's
    # block check, and numpy's per-element indexing made it several times slower (docs/adr/0177)
    qty = np.asarray(m.quantity, float).tolist()
    val = np.asarray(m.value, float).tolist()
    allowed = np.asarray(m.allowed, bool).tolist()
    price = [max(float(a), m.base_price) for a in m.ask]
    capacity = np.asarray(m.capacity, float).tolist()
    # where each candidate may trade, in seller order (trade_ok does not depend on the remaining capacity)
    ok = [[s for s in sellers if m.trade_ok(b, o, s)] for b, o in cands]
    dens = [val[b][o] / math.sqrt(qty[b][o]) for b, o in cands]
    tol = [fit_tolerance(qty[b][o]) for b, o in cands]  # fits(rem, q) is q <= rem + fit_tolerance(q)
    out = np.full(m.n_buyers, np.nan)
    for b in range(m.n_buyers):
        if alloc.seller[b] == NO_TRADE:
            continue
        o = int(alloc.option[b])
        q = qty[b][o]
        sq = math.sqrt(q)
        tol_q = fit_tolerance(q)
        reach = [(s, price[s] * q) for s in sellers if allowed[b][s]]
        others = [i for i, c in enumerate(cands) if c != (b, o)]
        rem = list(capacity)
        taken = [False] * m.n_buyers
        best = math.inf
        upper = math.inf
        for p in range(len(others) + 1):
            lower = dens[others[p]] * sq if p < len(others) else 0.0
            if not taken[b]:
                thr = math.inf
                for s, cost in reach:
                    if q <= rem[s] + tol_q:
                        thr = min(thr, cost)
                vmin = max(lower, thr)
                if vmin <= upper * (1 + 1e-12) and vmin < best:
                    best = vmin
            if p == len(others):
                break
            i = others[p]
            ib, io = cands[i]
            if not taken[ib]:
                qi, tol_i = qty[ib][io], tol[i]
                for s in ok[i]:
                    if qi <= rem[s] + tol_i:
                        taken[ib] = True
                        rem[s] -= qi
                        break
            upper = lower
        out[b] = best
    return out


def critical_bid_bisection(m: Market, b: int, o: int, order: str = "ask", tol: float = 1e-9) -> float:
    """Critical bid of buyer ``b`` on option ``o`` by bisection on its bid (the slow check).

    Raises:
        MechanismError: the buyer does not win option ``o`` at its current bid.
    """
    q = float(m.quantity[b, o])

    def wins(v: float) -> bool:
        a = greedy_allocate(m.with_value(b, o, v), order)
        return bool(a.seller[b] != NO_TRADE and a.option[b] == o)

    hi = float(m.value[b, o])
    if not wins(hi):
        raise MechanismError(f"buyer {b} does not win option {o} at its bid")
    lo = m.base_price * q
    if wins(lo):
        return lo
    while hi - lo > tol * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if wins(mid):
            hi = mid
        else:
            lo = mid
    return hi


def greedy_clear(m: Market, order: str = "ask") -> Allocation:
    """Greedy allocation with critical payments ``max(base·q, critical bid)`` for the winners."""
    alloc = greedy_allocate(m, order)
    crit = critical_bids(m, alloc, order)
    pay = np.zeros(m.n_buyers)
    for b in range(m.n_buyers):
        if alloc.seller[b] != NO_TRADE:
            o = int(alloc.option[b])
            pay[b] = min(max(m.base_price * float(m.quantity[b, o]), float(crit[b])), float(m.value[b, o]))
    alloc.payment = pay
    return alloc
