"""The CPP's (leader's) exact optimum over ``[p_min, p_max]`` against the verified follower equilibrium.

``U_cpp(p) = (p − C) Σ_i F_i*(p)`` is smooth between *kinks*: prices where some ``F_i*`` reaches ``F_min`` or
``F_max`` or where some ``a_i(p)`` changes sign. With equal ``β`` and every follower interior it is a
linear-fractional function of ``p`` (eq. 26), hence monotone (the paper's Theorem 5 misses this;
docs/models/ai-bazaar.md), so the optimum sits at a bound or a kink; with unequal ``β`` a piece may have an
interior maximum. The fast solver locates the kinks (pattern changes on a grid, refined by bisection), runs a
bounded scalar search on every smooth piece, takes the best of bounds, kinks and piece optima, and verifies it on a
grid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConvergenceError
from ..scalar import minimize_bounded
from .followers import (
    _aggregate_solve,
    consumer_profit,
    cpp_profit,
    follower_equilibrium,
    marginal_cost,
    max_deviation_gain,
    reference_follower_equilibrium,
)
from .params import Params

#: Grid points used to detect kinks and to verify the leader's optimum.
KINK_GRID = 257
#: Relative tolerance of the leader's optimality check.
LEADER_RTOL = 1e-9


@dataclass
class Equilibrium:
    """A Stackelberg equilibrium.

    Attributes:
        price: the CPP's price ``p*``.
        demand: followers' equilibrium demands ``F_i*(p*)``.
        cpp_profit: ``U_cpp``.
        consumer_profit: every ``U_i``.
        max_deviation_gain: largest unilateral gain of any follower (the verification residual).
    """

    price: float
    demand: np.ndarray
    cpp_profit: float
    consumer_profit: np.ndarray
    max_deviation_gain: float

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON object: keys ``price``, ``demand``, ``cpp_profit``, ``consumer_profit``,
        ``max_deviation_gain`` with plain floats and lists."""
        return {
            "price": float(self.price),
            "demand": [float(x) for x in self.demand],
            "cpp_profit": float(self.cpp_profit),
            "consumer_profit": [float(x) for x in self.consumer_profit],
            "max_deviation_gain": float(self.max_deviation_gain),
        }


def equilibrium_at(params: Params, p: float, demand: np.ndarray | None = None) -> Equilibrium:
    """Both sides' outcome when the CPP posts ``p`` and the followers play ``demand`` (default: the
    verified equilibrium)."""
    F = follower_equilibrium(params, p) if demand is None else np.asarray(demand, dtype=float)
    return Equilibrium(
        price=float(p), demand=F, cpp_profit=cpp_profit(params, p, F),
        consumer_profit=consumer_profit(params, p, F), max_deviation_gain=max_deviation_gain(params, p, F),
    )


def leader_profit(params: Params, p: float, *, verify: bool = False) -> float:
    """``U_cpp(p)`` against the follower equilibrium at ``p`` (checked by deviation gains if ``verify``)."""
    F = follower_equilibrium(params, p) if verify else _aggregate_solve(params, p)
    return cpp_profit(params, p, F)


def _pattern(params: Params, p: float) -> tuple[int, ...]:
    """Which constraint binds for each follower (0: F_min, 1: interior, 2: F_max) and the sign of ``a_i``."""
    F = _aggregate_solve(params, p)
    span = params.F_max - params.F_min
    eps = 1e-9 * max(span, 1.0)
    at_lo, at_hi = params.F_min + eps >= F, params.F_max - eps <= F
    code = np.where(at_lo, 0, np.where(at_hi, 2, 1))
    sign = (marginal_cost(params, p) > 0).astype(int)
    return tuple(int(c) for c in code) + tuple(int(s) for s in sign)


def find_kinks(params: Params, *, grid: int = KINK_GRID) -> np.ndarray:
    """Prices in ``(p_min, p_max)`` where the followers' active set changes, to about 1e-12 of the range.

    Includes every ``p`` where some ``a_i(p) = 0``. A pattern change between adjacent grid points is bisected.
    """
    lo_p, hi_p = params.p_min, params.p_max
    if hi_p <= lo_p:
        return np.empty(0)
    kinks: list[float] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        zeros = (1.0 - params.beta) * params.C_b / params.u
    kinks += [float(z) for z in zeros[np.isfinite(zeros)] if lo_p < z < hi_p]
    ps = np.linspace(lo_p, hi_p, grid)
    pats = [_pattern(params, float(p)) for p in ps]
    width = 1e-12 * (hi_p - lo_p)
    for k in range(grid - 1):
        if pats[k] == pats[k + 1]:
            continue
        a, b, pa = float(ps[k]), float(ps[k + 1]), pats[k]
        while b - a > width:
            mid = 0.5 * (a + b)
            if _pattern(params, mid) == pa:
                a = mid
            else:
                b = mid
        kinks += [a, b]
    return np.unique(np.array(kinks, dtype=float))


def solve_stackelberg(params: Params) -> Equilibrium:
    """The CPP's exact optimal price and the followers' equilibrium there, verified.

    Candidates are ``p_min``, ``p_max``, every kink (:func:`find_kinks`) and the bounded-Brent optimum of
    every smooth piece between them (started on the piece's best grid point). The best candidate must be at
    least as good as every point of the kink grid (within ``LEADER_RTOL``) and the followers' deviation
    gain must pass :func:`follower_equilibrium`'s check.

    Raises:
        ConvergenceError: a verification failed.
    """
    lo_p, hi_p = params.p_min, params.p_max
    kinks = find_kinks(params)
    nodes = np.unique(np.concatenate([[lo_p, hi_p], kinks]))
    best_p, best_v = lo_p, leader_profit(params, lo_p)
    for p in nodes[1:]:
        v = leader_profit(params, float(p))
        if v > best_v:
            best_p, best_v = float(p), v
    for a, b in itertools.pairwise(nodes):
        if b - a <= 1e-12 * max(1.0, hi_p - lo_p):
            continue
        inner = np.linspace(a, b, 9)[1:-1]
        vals = [leader_profit(params, float(q)) for q in inner]
        j = int(np.argmax(vals))
        left = float(inner[j - 1]) if j > 0 else float(a)
        right = float(inner[j + 1]) if j < inner.size - 1 else float(b)
        res = minimize_bounded(lambda q: -leader_profit(params, q), (left, right),
                               xatol=1e-12 * max(1.0, hi_p - lo_p))
        for q, v in ((float(res.x), -float(res.fun)), (float(inner[j]), float(vals[j]))):
            if v > best_v:
                best_p, best_v = q, v
    grid_best = max(leader_profit(params, float(q)) for q in np.linspace(lo_p, hi_p, KINK_GRID))
    if grid_best > best_v + LEADER_RTOL * max(1.0, abs(best_v)):
        raise ConvergenceError("leader optimum below a grid point", iterations=KINK_GRID,
                               residual=grid_best - best_v)
    return equilibrium_at(params, best_p)


def reference_stackelberg(params: Params, *, grid: int = 401, refine: int = 60) -> Equilibrium:
    """Slow reference: a dense price grid with the reference follower solver, then golden-section refinement.

    Args:
        params: the game.
        grid: number of evenly spaced prices on ``[p_min, p_max]``.
        refine: golden-section steps on the bracket of the best grid point.
    """
    def value(q: float) -> float:
        return cpp_profit(params, q, reference_follower_equilibrium(params, q))

    ps = np.linspace(params.p_min, params.p_max, max(2, grid))
    vals = np.array([value(float(q)) for q in ps])
    k = int(np.argmax(vals))
    best_p, best_v = float(ps[k]), float(vals[k])
    a, b = float(ps[max(k - 1, 0)]), float(ps[min(k + 1, ps.size - 1)])
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    vc, vd = value(c), value(d)
    for _ in range(refine):
        if vc >= vd:
            b, d, vd = d, c, vc
            c = b - g * (b - a)
            vc = value(c)
        else:
            a, c, vc = c, d, vd
            d = a + g * (b - a)
            vd = value(d)
    for q, v in ((c, vc), (d, vd)):
        if v > best_v:
            best_p, best_v = q, v
    F = reference_follower_equilibrium(params, best_p)
    return equilibrium_at(params, best_p, F)
