"""Newton's method on OPT-1 (the paper's optimal but slower baseline).

The reduced payoff F(D) = max_X P(X, D) is smooth on each piece of the data ladder (between two data sellers'
capacities) apart from the points where a constraint starts to bind. Newton's method runs on every such piece
(damped, safeguarded, with finite-difference derivatives and the exact inner X-solve), and the best of the
pieces' optima and their end points is returned. Visiting every piece is what makes it optimal — and slower
than SGSA, which follows one ascent path.
"""

from __future__ import annotations

import itertools
import math

from .problem import PortfolioProblem


def _newton_on_piece(prob: PortfolioProblem, a: float, b: float, max_iter: int) -> tuple[float, float, int]:
    """Maximise F on [a, b]; returns (F, D, iterations)."""
    def F(D: float) -> float:
        return prob.best_x(D)[0]

    best = max((F(a), a), (F(b), b))
    if b - a <= 1e-12 * (1.0 + b):
        return best[0], best[1], 0
    D = 0.5 * (a + b)
    val = F(D)
    h = 1e-5 * (b - a)
    it = 0
    while it < max_iter:
        it += 1
        lo_d, hi_d = max(a, D - h), min(b, D + h)
        f_lo, f_hi = F(lo_d), F(hi_d)
        if not (math.isfinite(f_lo) and math.isfinite(f_hi) and math.isfinite(val)):
            break
        g = (f_hi - f_lo) / (hi_d - lo_d)
        curv = (f_hi - 2.0 * val + f_lo) / (0.25 * (hi_d - lo_d) ** 2) if lo_d < D < hi_d else 0.0
        # Newton step where F is concave, else go to the end the slope points at
        step = -g / curv if curv < -1e-12 else (b - D) if g > 0 else (a - D)
        moved = False
        for _ in range(30):
            dn = min(max(D + step, a), b)
            vn = F(dn)
            if vn >= val:
                moved = abs(dn - D) > 1e-10 * (1.0 + b)
                D, val = dn, vn
                break
            step *= 0.5
        if not moved:
            break
    if val > best[0]:
        best = (val, D)
    return best[0], best[1], it


def newton_continuous(prob: PortfolioProblem, d_max: float, max_iter: int = 50) -> tuple[float, float, int]:
    """Newton's method on every smooth piece of F(D) over [0, d_max].

    Returns:
        ``(X, D, newton_iterations_total)``.
    """
    if d_max <= 0:
        return prob.best_x(0.0)[1], 0.0, 0
    edges = [0.0, *(q for q in prob.dl.q if 0.0 < q < d_max), d_max]
    best_val, best_d, total = -math.inf, 0.0, 0
    for a, b in itertools.pairwise(edges):
        val, D, its = _newton_on_piece(prob, a, b, max_iter)
        total += its
        if val > best_val:
            best_val, best_d = val, D
    return prob.best_x(best_d)[1], best_d, total
