"""Greedy baseline: start at the least compute meeting the deadline and buy one unit at a time.

Each step buys the unit (a computing share or a data unit) that raises the payoff most while keeping the
portfolio feasible, and stops when no unit helps. It is myopic: a data unit that only pays off once more
compute is bought (CPPI cushion, deadline) is never reached.
"""

from __future__ import annotations

import math

from .problem import PortfolioProblem


def greedy(prob: PortfolioProblem, unit: float = 1.0, max_steps: int = 1_000_000
           ) -> tuple[float, float, int] | None:
    """Unit-by-unit greedy ascent on the lattice of step ``unit`` from (ceil(X_lb), 0).

    Returns:
        ``(X, D, steps)`` or None when the starting point is infeasible.
    """
    p = prob.pub
    x = math.ceil(p.own_data / (p.f * p.deadline) / unit - 1e-9) * unit
    D = 0.0
    if not prob.feasible(x, D):
        return None
    val = prob.payoff(x, D)
    steps = 0
    while steps < max_steps:
        best = None
        for cx, cd in ((x + unit, D), (x, D + unit)):
            if prob.feasible(cx, cd):
                v = prob.payoff(cx, cd)
                if v > val and (best is None or v > best[0]):
                    best = (v, cx, cd)
        if best is None:
            break
        val, x, D = best
        steps += 1
    return x, D, steps
