# ruff: noqa: SIM300  (X and D are the paper's names, not constants: 'X > bound' is not a Yoda condition)
"""OPT-1 of one publisher against a book: payoff, constraints, bounds and the exact inner X-solve.

Notation (docs/models/collab.md): X total computing shares, D total data units, both bought cheapest first.

* time gain      U^T(X, D) = ε_t (T − (o + dD)/(fX) − dD/r_net)
* data gain      U^D(D)    = ε_d Σ_i g(φ_i, θ_i, y_i)            (y_i: cheapest-first fill of D)
* costs          C^F(X), C^D(D)                                   (piecewise linear, convex)
* CPPI           C^D ≤ min(m · max(0, U^T − C^F), b − C^F)
* payoff         P = ω (U^T + U^D) + (1 − ω)(b − C^F − C^D)
* OPT-1          max P  s.t. budget, CPPI, U^T ≥ 0, X ≤ ΣX_i, D ≤ ΣD_i.

For a fixed D the X-part of P, −ωε_t W/(fX) − (1−ω)C^F(X) with W = o + dD, is concave and the feasible X form
an interval, so the best X is the unconstrained maximiser clipped to that interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .book import Book, Ladder
from .model import Publisher

FEAS_TOL = 1e-9


@dataclass(frozen=True)
class Bounds:
    """The three boundaries of the search area (paper Fig. 2).

    Attributes:
        x_lb: X_lb = o/(fT), the least compute meeting the deadline without data.
        x_ub: X_ub = sqrt(ωε_t o / ((1−ω) f p̄)), the conservative optimum at the settled average price p̄.
        p_bar: that average price.
        iso_cost: points (X, D) of the iso-cost line C^F(X) + C^D(D) = b at the data ladder's breakpoints
            (where its slope changes as a data seller sells out), from D = 0 on.
    """

    x_lb: float
    x_ub: float
    p_bar: float
    iso_cost: tuple[tuple[float, float], ...]


class PortfolioProblem:
    """OPT-1 for one publisher against one book (all quantities continuous)."""

    def __init__(self, publisher: Publisher, book: Book) -> None:
        self.pub = publisher
        self.book = book
        self.cl: Ladder = book.compute
        self.dl: Ladder = book.data
        gain = publisher.data_gain
        # cumulative data gain at the data ladder's breakpoints
        g = [0.0]
        for k, i in enumerate(self.dl.order):
            g.append(g[-1] + gain.value(book.phi[i], book.theta[i], self.dl.caps[k]))
        self._gcum = tuple(g)
        self._gain = gain
        p = publisher
        self.c_scale = p.omega * p.eps_t / ((1.0 - p.omega) * p.f)  # X*(W, p) = sqrt(c_scale·W / p)

    # ----- pieces of the model -----------------------------------------------------------------------------
    def data_gain(self, D: float) -> float:
        """U^D(D) (includes ε_d)."""
        dl = self.dl
        if not dl.prices or D <= 0:
            return 0.0
        D = min(D, dl.total)
        k = dl.piece(D)
        i = dl.order[k]
        return self.pub.eps_d * (self._gcum[k] + self._gain.value(self.book.phi[i], self.book.theta[i],
                                                                   D - dl.q[k]))

    def time_gain(self, X: float, D: float) -> float:
        """U^T(X, D); −inf for X ≤ 0."""
        p = self.pub
        if X <= 0:
            return -math.inf
        return p.eps_t * (p.deadline - (p.own_data + p.d * D) / (p.f * X) - p.d * D / p.r_net)

    def payoff(self, X: float, D: float) -> float:
        """P(X, D) (no feasibility check)."""
        p = self.pub
        ut = self.time_gain(X, D)
        spent = self.cl.cost(X) + self.dl.cost(D)
        return p.omega * (ut + self.data_gain(D)) + (1.0 - p.omega) * (p.budget - spent)

    def feasible(self, X: float, D: float, tol: float = 1e-7) -> bool:
        """Whether (X, D) satisfies every constraint of OPT-1 (relative tolerance ``tol``)."""
        p = self.pub
        if X <= 0 or D < 0 or X > self.cl.total * (1 + tol) + tol or D > self.dl.total * (1 + tol) + tol:
            return False
        cf, cd = self.cl.cost(X), self.dl.cost(D)
        slack = tol * max(1.0, p.budget)
        if cf + cd > p.budget + slack:
            return False
        ut = self.time_gain(X, D)
        if ut < -slack:
            return False
        return cd <= p.multiplier * max(0.0, ut - cf) + slack

    # ----- the X-subproblem --------------------------------------------------------------------------------
    def x_star(self, D: float) -> float:
        """Unconstrained maximiser of the X-part for this D (exact on the piecewise-linear cost)."""
        cl = self.cl
        cw = self.c_scale * (self.pub.own_data + self.pub.d * D)
        for k, pk in enumerate(cl.prices):
            if pk <= 0:
                continue
            x = math.sqrt(cw / pk)
            if x <= cl.q[k + 1]:
                return max(x, cl.q[k])
        return cl.total

    def x_star_at_price(self, D: float, price: float) -> float:
        """X*(D; p̄) = sqrt(ωε_t(o + dD) / ((1−ω) f p̄)) for a flat price p̄ (inf when p̄ ≤ 0)."""
        if price <= 0:
            return math.inf
        return math.sqrt(self.c_scale * (self.pub.own_data + self.pub.d * D) / price)

    def x_interval(self, D: float) -> tuple[float, float] | None:
        """Feasible X for this D as ``(lo, hi)``, or None when no X works."""
        p = self.pub
        cl = self.cl
        if D < 0 or D > self.dl.total * (1 + FEAS_TOL) + FEAS_TOL:
            return None
        cd = self.dl.cost(D)
        if cd > p.budget * (1 + FEAS_TOL):
            return None
        s = p.deadline - p.d * D / p.r_net
        if s <= 0:
            return None
        w = p.own_data + p.d * D
        lo = w / (p.f * s)
        hi = min(cl.total, cl.affordable(max(0.0, p.budget - cd)))
        if cd > 0:
            if p.multiplier <= 0:
                return None
            iv = self._cushion_interval(s, w, cd / p.multiplier)
            if iv is None:
                return None
            lo, hi = max(lo, iv[0]), min(hi, iv[1])
        if lo > hi * (1 + FEAS_TOL) + FEAS_TOL:
            return None
        return lo, max(lo, hi)

    def _cushion_interval(self, s: float, w: float, need: float) -> tuple[float, float] | None:
        """X with ε_t(s − w/(fX)) − C^F(X) ≥ need (a concave function: an interval), solved piece by piece."""
        cl = self.cl
        p = self.pub
        bq = p.eps_t * w / p.f
        lo, hi = math.inf, -math.inf
        for k, pk in enumerate(cl.prices):
            a = p.eps_t * s - cl.c[k] + pk * cl.q[k] - need
            if a <= 0:
                continue
            if pk > 0:
                disc = a * a - 4.0 * pk * bq
                if disc < 0:
                    continue
                root = math.sqrt(disc)
                r1, r2 = 2.0 * bq / (a + root), (a + root) / (2.0 * pk)
            else:
                r1, r2 = bq / a, math.inf
            a1, a2 = max(r1, cl.q[k]), min(r2, cl.q[k + 1])
            if a1 <= a2:
                lo, hi = min(lo, a1), max(hi, a2)
        return None if lo > hi else (lo, hi)

    def best_x(self, D: float) -> tuple[float, float]:
        """``(payoff, X)`` of the best X for this D (``(-inf, nan)`` when D is infeasible)."""
        iv = self.x_interval(D)
        if iv is None:
            return -math.inf, math.nan
        x = min(max(self.x_star(D), iv[0]), iv[1])
        return self.payoff(x, D), x

    def d_max(self, iters: int = 60) -> float:
        """Largest feasible D (feasibility is monotone in D), −1 when even D = 0 is infeasible."""
        if self.x_interval(0.0) is None:
            return -1.0
        p = self.pub
        top = min(self.dl.total, self.dl.affordable(p.budget))
        if p.multiplier <= 0 or top <= 0:
            return 0.0
        top = min(top, p.deadline * p.r_net / p.d)
        if self.x_interval(top) is not None:
            return top
        lo, hi = 0.0, top
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            if self.x_interval(mid) is None:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-10 * (1.0 + top):
                break
        return lo

    def bounds(self) -> Bounds:
        """X_lb, X_ub (with its settled average price) and the iso-cost line's corners."""
        p = self.pub
        x_lb = p.own_data / (p.f * p.deadline)
        x, p_bar = max(x_lb, 1e-9), 0.0
        for _ in range(200):
            p_bar = self.cl.cost(x) / x if x > 0 else 0.0
            nxt = min(self.x_star_at_price(0.0, p_bar), self.cl.total)
            if abs(nxt - x) <= 1e-12 * (1 + x):
                x = nxt
                break
            x = nxt
        pts: list[tuple[float, float]] = []
        x_all = self.cl.affordable(p.budget)
        # walk the data ladder: at each of its breakpoints the line changes slope
        for k in range(len(self.dl.q)):
            dq = self.dl.q[k]
            left = p.budget - self.dl.c[k]
            if left < 0:
                pts.append((0.0, self.dl.affordable(p.budget)))
                break
            pts.append((self.cl.affordable(left), dq))
        if not pts:
            pts.append((x_all, 0.0))
        return Bounds(x_lb, x, p_bar, tuple(pts))
