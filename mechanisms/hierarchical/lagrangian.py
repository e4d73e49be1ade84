"""Lagrangian relaxation of the multi-seller double-auction WDP (Section 5 of the paper, docs/models/hierarchical.md).

Relaxing the sellers' capacity constraints with multipliers ``λ_s ≥ 0`` gives
``L(λ) = Σ_b max(0, max_{o,s} v_bo − (ask_s + λ_s) q_bo) + Σ_s λ_s cap_s``: each buyer's sub-problem picks its
best (option, seller) at the shadow prices, each seller's sub-problem sells its whole capacity at ``λ_s`` —
both in closed form, and ``L(λ)`` bounds the optimum from above. (Relaxing the one-seller-per-buyer constraint
as well, with ``ν_b``, gives a bound that is never tighter: the buyer sub-problem keeps it here.) The dual is
minimised by projected subgradient ``λ ← max(0, λ + θ_t (demand − cap))`` with Polyak's step
``θ_t = μ_t (L(λ_t) − LB) / ‖g‖²`` (``μ`` halves after ``patience`` iterations without a better bound); every
iteration repairs the relaxed choice into a feasible allocation (keep the choices that fit, by decreasing
reduced profit, then give every buyer left out its best option that still fits), improves it by a 1-opt local
search (each buyer in turn moves to its best option that fits) and keeps the best one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .market import NO_TRADE, Allocation, Market, fits, welfare_of


@dataclass
class LagrangianResult:
    """Outcome of the Lagrangian heuristic.

    Attributes:
        allocation: the best feasible allocation found (with paper-style VCG-like payments if requested).
        dual_bound: the least ``L(λ)`` seen (an upper bound on the optimum).
        multipliers: the ``λ`` that attained it.
        iterations: subgradient iterations run.
        bound_history: ``L(λ_t)`` per iteration.
    """

    allocation: Allocation
    dual_bound: float
    multipliers: np.ndarray
    iterations: int
    bound_history: np.ndarray

    @property
    def duality_gap(self) -> float:
        """``(L* − primal) / |L*|`` (0 when both vanish)."""
        if abs(self.dual_bound) < 1e-12:
            return 0.0
        return float((self.dual_bound - self.allocation.welfare) / abs(self.dual_bound))


def _tensor(m: Market) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nb, no, ns = m.n_buyers, m.n_options, m.n_sellers
    ok = np.zeros((nb, no, ns), dtype=bool)
    adm = m.admitted()
    for b in range(nb):
        for o in range(no):
            if adm[b, o]:
                for s in range(ns):
                    ok[b, o, s] = m.trade_ok(b, o, s)
    q = np.broadcast_to(m.quantity[:, :, None], ok.shape)
    v = np.broadcast_to(m.value[:, :, None], ok.shape)
    return ok, q, v


def _repair(m: Market, ok: np.ndarray, reduced: np.ndarray, choice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nb = m.n_buyers
    seller = np.full(nb, NO_TRADE, dtype=int)
    option = np.full(nb, NO_TRADE, dtype=int)
    rem = m.capacity.astype(float).copy()
    chosen = [b for b in range(nb) if choice[b] >= 0]
    chosen.sort(key=lambda b: (-float(reduced.reshape(nb, -1)[b, choice[b]]), b))
    ns = m.n_sellers
    for b in chosen:
        o, s = divmod(int(choice[b]), ns)
        if fits(float(rem[s]), float(m.quantity[b, o])):
            seller[b], option[b] = s, o
            rem[s] -= m.quantity[b, o]
    true_surplus = np.where(ok, m.value[:, :, None] - m.ask[None, None, :] * m.quantity[:, :, None], -np.inf)
    left = [b for b in range(nb) if seller[b] == NO_TRADE]
    left.sort(key=lambda b: (-float(np.max(true_surplus[b])), b))
    for b in left:
        flat = true_surplus[b].reshape(-1)
        for idx in np.argsort(-flat, kind="stable"):
            if not math.isfinite(flat[idx]):
                break
            o, s = divmod(int(idx), ns)
            if fits(float(rem[s]), float(m.quantity[b, o])):
                seller[b], option[b] = s, o
                rem[s] -= m.quantity[b, o]
                break
    return seller, option


def _improve(m: Market, ok: np.ndarray, seller: np.ndarray, option: np.ndarray, passes: int = 3) -> None:
    """1-opt local search in place: each buyer in turn moves to its best (option, seller) that fits."""
    ns = m.n_sellers
    surplus = np.where(ok, m.value[:, :, None] - m.ask[None, None, :] * m.quantity[:, :, None], -np.inf)
    used = np.zeros(ns)
    for b in range(m.n_buyers):
        if seller[b] != NO_TRADE:
            used[seller[b]] += m.quantity[b, option[b]]
    for _ in range(passes):
        changed = False
        for b in range(m.n_buyers):
            cur = 0.0
            if seller[b] != NO_TRADE:
                cur = float(surplus[b, option[b], seller[b]])
                used[seller[b]] -= m.quantity[b, option[b]]
            best, pick = cur, (int(seller[b]), int(option[b]))
            for o in range(m.n_options):
                for s in range(ns):
                    val = float(surplus[b, o, s])
                    if val > best + 1e-12 and fits(float(m.capacity[s] - used[s]), float(m.quantity[b, o])):
                        best, pick = val, (s, o)
            seller[b], option[b] = pick
            if pick[0] != NO_TRADE:
                used[pick[0]] += m.quantity[b, pick[1]]
            changed = changed or best > cur + 1e-12
        if not changed:
            break


def lagrangian_allocate(m: Market, max_iter: int = 300, mu0: float = 2.0, patience: int = 10,
                        tol: float = 1e-6) -> LagrangianResult:
    """Projected-subgradient Lagrangian heuristic with feasibility repair.

    Raises:
        MechanismError: non-positive iteration cap.
    """
    if max_iter < 1:
        raise MechanismError("max_iter must be positive")
    ok, q, v = _tensor(m)
    nb, ns = m.n_buyers, m.n_sellers
    lam = np.zeros(ns)
    best_bound = math.inf
    best_lam = lam.copy()
    empty = np.full(nb, NO_TRADE, dtype=int)
    best_seller, best_option, best_w = empty.copy(), empty.copy(), 0.0
    mu = mu0
    since = 0
    history = []
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        reduced = np.where(ok, v - (m.ask[None, None, :] + lam[None, None, :]) * q, -np.inf)
        flat = reduced.reshape(nb, -1)
        arg = np.argmax(flat, axis=1) if flat.shape[1] else np.zeros(nb, dtype=int)
        top = flat[np.arange(nb), arg] if flat.shape[1] else np.full(nb, -np.inf)
        choice = np.where(top > 0, arg, -1)
        bound = float(np.sum(np.maximum(top, 0.0)) + lam @ m.capacity)
        history.append(bound)
        seller, option = _repair(m, ok, reduced, choice)
        _improve(m, ok, seller, option)
        w = welfare_of(m, seller, option)
        if w > best_w + 1e-12:
            best_seller, best_option, best_w = seller, option, w
        if bound < best_bound - 1e-12:
            best_bound, best_lam, since = bound, lam.copy(), 0
        else:
            since += 1
            if since >= patience:
                mu, since = mu / 2.0, 0
        demand = np.zeros(ns)
        for b in range(nb):
            if choice[b] >= 0:
                o, s = divmod(int(choice[b]), ns)
                demand[s] += m.quantity[b, o]
        g = demand - m.capacity
        g = np.where((lam <= 0) & (g < 0), 0.0, g)
        norm = float(g @ g)
        if norm <= 0 or best_bound - best_w <= tol * max(1.0, abs(best_bound)) or mu < 1e-8:
            break
        theta = mu * max(bound - best_w, tol * max(1.0, abs(bound))) / norm
        lam = np.maximum(0.0, lam + theta * g)
    alloc = Allocation(best_seller, best_option, np.zeros(nb), best_w, "lagrangian")
    return LagrangianResult(alloc, min(best_bound, math.inf), best_lam, it, np.array(history))


def lagrangian_clear(m: Market, **kwargs: float) -> LagrangianResult:
    """Lagrangian allocation with the paper's VCG-like payments.

    A winner pays ``max(base·q, ask·q, W̃_{−b} − W̃ + v_b)`` capped at its bid, ``W̃`` the heuristic's welfare
    (with and without it). The heuristic is not monotone, so this is individually rational but not
    truthful (see docs/models/hierarchical.md).
    """
    res = lagrangian_allocate(m, **kwargs)  # type: ignore[arg-type]
    a = res.allocation
    pay = np.zeros(m.n_buyers)
    for b in range(m.n_buyers):
        if a.seller[b] == NO_TRADE:
            continue
        o, s = int(a.option[b]), int(a.seller[b])
        qb, vb = float(m.quantity[b, o]), float(m.value[b, o])
        w_minus = lagrangian_allocate(m.without_buyer(b), **kwargs).allocation.welfare  # type: ignore[arg-type]
        p = max(m.base_price * qb, float(m.ask[s]) * qb, w_minus - a.welfare + vb)
        pay[b] = min(p, vb)
    a.payment = pay
    return res


def greedy_improved_allocate(m: Market) -> Allocation:
    """The greedy allocation followed by the same 1-opt local search the Lagrangian heuristic runs.

    For experiments that separate the two effects behind "LA ≥ GA" (the relaxation, and the local search only LA
    has). Allocation only: the search breaks the greedy's monotonicity, so its critical payments no longer
    apply and none are computed (``payment`` is zero).
    """
    from .greedy import greedy_allocate

    start = greedy_allocate(m)
    ok, _, _ = _tensor(m)
    seller, option = start.seller.copy(), start.option.copy()
    _improve(m, ok, seller, option)
    return Allocation(seller, option, np.zeros(m.n_buyers), welfare_of(m, seller, option), "greedy-1opt")
