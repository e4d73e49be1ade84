"""Algorithm 2: exact dynamic programming for the single-seller upper level (multiple-choice knapsack).

Every buyer (MESP) takes at most one option (bundle) whose quantity is a multiple of ``step``; the one seller
(the CCSP) has ``capacity`` units and asks ``ask`` per unit. State: the number of ``step``-units used by the
first ``j`` buyers; ``f[j+1][c] = max(f[j][c], max_o f[j][c − k_o] + v_jo − ask·q_jo)``. Cost ``O(B·K·O)`` with
``K = ⌊capacity/step⌋``. Ties go to "no trade", then the lower option index (strict improvement only).
"""

from __future__ import annotations

import math

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .market import NO_TRADE, Allocation, Market, welfare_of


def _steps(q: float, step: float) -> int:
    k = q / step
    r = round(k)
    if abs(k - r) > 1e-9 * max(1.0, k):
        raise MechanismError(f"quantity {q} is not a multiple of the bundle step {step}")
    return int(r)


def dp_allocate(m: Market, step: float) -> Allocation:
    """Optimal single-seller allocation by dynamic programming over capacity in units of ``step``.

    Raises:
        MechanismError: more than one seller, non-positive step, or a quantity off the step grid.
    """
    if m.n_sellers != 1:
        raise MechanismError("the DP solves the single-seller upper level only")
    if not (step > 0 and math.isfinite(step)):
        raise MechanismError(f"bundle step must be positive, got {step}")
    cap = math.floor(float(m.capacity[0]) / step + 1e-9)
    nb, no = m.n_buyers, m.n_options
    adm = m.admitted()
    k_of = np.zeros((nb, no), dtype=int)
    net = np.full((nb, no), -math.inf)
    for b in range(nb):
        for o in range(no):
            if adm[b, o] and m.trade_ok(b, o, 0):
                k_of[b, o] = _steps(float(m.quantity[b, o]), step)
                net[b, o] = float(m.value[b, o] - m.ask[0] * m.quantity[b, o])
    f = np.zeros((nb + 1, cap + 1))
    choice = np.full((nb, cap + 1), NO_TRADE, dtype=int)
    for b in range(nb):
        best = f[b].copy()
        arg = np.full(cap + 1, NO_TRADE, dtype=int)
        for o in range(no):
            k = int(k_of[b, o])
            if not math.isfinite(net[b, o]) or k > cap:
                continue
            cand = np.full(cap + 1, -math.inf)
            cand[k:] = f[b, : cap + 1 - k] + net[b, o]
            better = cand > best + 1e-12 * np.maximum(1.0, np.abs(best))
            best = np.where(better, cand, best)
            arg = np.where(better, o, arg)
        f[b + 1] = best
        choice[b] = arg
    seller = np.full(nb, NO_TRADE, dtype=int)
    option = np.full(nb, NO_TRADE, dtype=int)
    c = cap
    for b in range(nb - 1, -1, -1):
        o = int(choice[b, c])
        if o != NO_TRADE:
            seller[b], option[b] = 0, o
            c -= int(k_of[b, o])
    return Allocation(seller, option, np.zeros(nb), welfare_of(m, seller, option), "dp")


def dp_clear(m: Market, step: float) -> Allocation:
    """DP allocation with VCG payments (each winner's optimum-without-it is another DP)."""
    alloc = dp_allocate(m, step)
    pay = np.zeros(m.n_buyers)
    for b in range(m.n_buyers):
        if alloc.seller[b] == NO_TRADE:
            continue
        o = int(alloc.option[b])
        v = float(m.value[b, o])
        p = dp_allocate(m.without_buyer(b), step).welfare - alloc.welfare + v
        pay[b] = min(max(m.base_price * float(m.quantity[b, o]), p), v)
    alloc.payment = pay
    return alloc
