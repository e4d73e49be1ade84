# ruff: noqa: SIM300  (X and D are the paper's names, not constants: 'X > bound' is not a Yoda condition)
"""Swing Gradient Search Algorithm (SGSA, paper Algorithm 1; docs/models/collab.md).

Outer loop: projected gradient ascent on D over [0, D_max] from the midpoint of the feasible part of the
iso-cost line, with Barzilai–Borwein step sizes safeguarded by Armijo back-tracking. Inner loop ("swing")
for each D: alternate the price and X:

1. average-price swing (the paper's): p̄ ← C^F(X)/X, X ← X*(D; p̄) until p̄ settles;
2. marginal-price swing (ours, see docs/models/collab.md): p ← price of the piece holding X, X ← X*(D; p);
   when X swings back and forth across a seller's capacity the optimum is that kink.

Step 1 alone stops at a point that over-buys compute whenever sellers' prices differ (the average price of a
cheapest-first purchase is below its marginal price); step 2 turns the settled point into the exact
first-order optimum in a few swings. Then the feasible interval clips X. Because the data ladder makes the
reduced payoff only piecewise smooth, SGSA also restarts the ascent from each end of every piece (0, D_max
and the iso-cost line's inflection points, where a data seller sells out) and keeps the best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .problem import PortfolioProblem


@dataclass(frozen=True)
class SgsaConfig:
    """Tolerances and caps of SGSA.

    Attributes:
        max_outer: gradient iterations per ascent.
        max_swing: average-price swings per D.
        tol_d: stop when a step moves D less than ``tol_d·(1 + D_max)``.
        tol_price: average-price swing stops when p̄ moves less than ``tol_price·(1 + p̄)``.
        restarts: restart from the iso-cost inflection points.
    """

    max_outer: int = 200
    max_swing: int = 50
    tol_d: float = 1e-7
    tol_price: float = 1e-9
    restarts: bool = True


def swing(prob: PortfolioProblem, D: float, x0: float, cfg: SgsaConfig) -> tuple[float, int]:
    """The inner swing for one D: returns the unconstrained best X and the number of swings."""
    cl = prob.cl
    if not cl.prices:
        return 0.0, 0
    x = min(max(x0, 1e-12), cl.total)
    swings = 0
    p_bar = cl.cost(x) / x
    for _ in range(cfg.max_swing):
        swings += 1
        x = min(prob.x_star_at_price(D, p_bar), cl.total)
        new = cl.cost(x) / x if x > 0 else p_bar
        if abs(new - p_bar) <= cfg.tol_price * (1.0 + p_bar):
            break
        p_bar = new
    # marginal-price swing on the piece holding x
    k = cl.piece(x)
    n = len(cl.prices)
    while True:
        swings += 1
        xk = prob.x_star_at_price(D, cl.prices[k])
        if cl.q[k] <= xk <= cl.q[k + 1]:
            return xk, swings
        nxt = k + 1 if xk > cl.q[k + 1] else k - 1
        if nxt < 0:
            return cl.q[0], swings
        if nxt >= n:
            return cl.total, swings
        xn = prob.x_star_at_price(D, cl.prices[nxt])
        if (nxt > k and xn < cl.q[nxt]) or (nxt < k and xn > cl.q[k]):
            return cl.q[max(k, nxt)], swings  # swung back: the optimum is the kink between the two pieces
        k = nxt


class _Reduced:
    """F(D) = P(X(D), D) with X(D) from the swing, clipped to the feasible interval; counts evaluations."""

    def __init__(self, prob: PortfolioProblem, cfg: SgsaConfig) -> None:
        self.prob, self.cfg = prob, cfg
        self.x_prev = max(prob.pub.own_data / (prob.pub.f * prob.pub.deadline), 1e-9)
        self.swings = 0

    def __call__(self, D: float) -> tuple[float, float]:
        iv = self.prob.x_interval(D)
        if iv is None:
            return -math.inf, math.nan
        x, s = swing(self.prob, D, self.x_prev, self.cfg)
        self.swings += s
        x = min(max(x, iv[0]), iv[1])
        self.x_prev = x
        return self.prob.payoff(x, D), x


def _ascent(F: _Reduced, d0: float, d_max: float, cfg: SgsaConfig) -> tuple[float, float, float, int]:
    """Projected gradient ascent (BB steps, Armijo back-tracking); returns (F, D, X, iterations)."""
    D = d0
    val, x = F(D)
    if d_max <= 0:
        return val, D, x, 0
    h = 1e-6 * (1.0 + d_max)
    eta = -1.0
    it = 0
    prev: tuple[float, float] | None = None
    while it < cfg.max_outer:
        it += 1
        lo_d, hi_d = max(0.0, D - h), min(d_max, D + h)
        g = (F(hi_d)[0] - F(lo_d)[0]) / (hi_d - lo_d)
        if not math.isfinite(g) or (D <= 0 and g <= 0) or (D >= d_max and g >= 0) or g == 0:
            break
        if prev is not None and (D - prev[0]) * (g - prev[1]) < 0:
            eta = -(D - prev[0]) / (g - prev[1])  # Barzilai–Borwein step from the last two gradients
        elif eta < 0:
            eta = 0.25 * d_max / abs(g)
        prev = (D, g)
        moved = False
        for _ in range(40):
            dn = min(max(D + eta * g, 0.0), d_max)
            vn, xn = F(dn)
            if vn >= val + 1e-4 * g * (dn - D):
                moved = abs(dn - D) > cfg.tol_d * (1.0 + d_max)
                D, val, x = dn, vn, xn
                break
            eta *= 0.5
        if not moved:
            break
    F(D)  # leave x_prev at the accepted point
    return val, D, x, it


def sgsa_continuous(prob: PortfolioProblem, d_max: float, cfg: SgsaConfig | None = None
                    ) -> tuple[float, float, int]:
    """SGSA on the continuous problem.

    Args:
        prob: the publisher's OPT-1.
        d_max: the largest feasible D (≥ 0; see ``PortfolioProblem.d_max``).
        cfg: tolerances.

    Returns:
        ``(X, D, outer_iterations)``.
    """
    cfg = cfg or SgsaConfig()
    F = _Reduced(prob, cfg)
    best_val, best_d, best_x, its = _ascent(F, 0.5 * d_max, d_max, cfg)
    if cfg.restarts and d_max > 0:
        # The data ladder makes F piecewise smooth with one local maximum per piece at most: ascend from every
        # piece's ends (0, D_max and each inflection point) and keep the best.
        cands = sorted({0.0, d_max, *(q for q in prob.dl.q if 0.0 < q < d_max)})
        for c in cands:
            v2, d2, x2, its2 = _ascent(F, c, d_max, cfg)
            its += its2
            if v2 > best_val + 1e-12 * (1.0 + abs(best_val)):
                best_val, best_d, best_x = v2, d2, x2
    return best_x, best_d, its
