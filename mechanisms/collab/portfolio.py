"""The result of OPT-1 and the shared finishing steps (integer rounding, per-seller purchases)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .problem import PortfolioProblem


@dataclass(frozen=True)
class Portfolio:
    """A publisher's purchase plan.

    Attributes:
        compute: X, total computing shares.
        data: D, total data units.
        compute_purchases: shares bought from each seller (seller order of the book).
        data_purchases: data units bought from each seller.
        payoff: P(X, D); the outside option (1 − ω)·b when infeasible.
        spent: C^F + C^D.
        compute_cost: C^F.
        data_cost: C^D.
        time_gain: U^T.
        data_gain: U^D.
        feasible: False when OPT-1 has no feasible point (then nothing is bought).
        method: solver that produced it.
        iterations: the solver's main-loop iterations (gradient steps for SGSA, Newton steps, greedy units,
            grid points for exhaustive).
        reason: why it is infeasible ("" otherwise).
    """

    compute: float
    data: float
    compute_purchases: tuple[float, ...]
    data_purchases: tuple[float, ...]
    payoff: float
    spent: float
    compute_cost: float
    data_cost: float
    time_gain: float
    data_gain: float
    feasible: bool
    method: str
    iterations: int = 0
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (the CLI's output)."""
        return {
            "compute": self.compute, "data": self.data,
            "compute_purchases": list(self.compute_purchases), "data_purchases": list(self.data_purchases),
            "payoff": self.payoff, "spent": self.spent, "compute_cost": self.compute_cost,
            "data_cost": self.data_cost, "time_gain": self.time_gain, "data_gain": self.data_gain,
            "feasible": self.feasible, "method": self.method, "iterations": self.iterations,
            "reason": self.reason,
        }


def make_portfolio(prob: PortfolioProblem, X: float, D: float, method: str, iterations: int) -> Portfolio:
    """Package (X, D) with its per-seller purchases and payoff terms."""
    cf, cd = prob.cl.cost(X), prob.dl.cost(D)
    return Portfolio(
        compute=X, data=D,
        compute_purchases=tuple(prob.cl.allocate(X)), data_purchases=tuple(prob.dl.allocate(D)),
        payoff=prob.payoff(X, D), spent=cf + cd, compute_cost=cf, data_cost=cd,
        time_gain=prob.time_gain(X, D), data_gain=prob.data_gain(D), feasible=True, method=method,
        iterations=iterations,
    )


def infeasible_portfolio(prob: PortfolioProblem, method: str, reason: str) -> Portfolio:
    """Nothing bought: the publisher keeps its budget (payoff (1 − ω)·b, the outside option)."""
    n = prob.cl.n_sellers
    p = prob.pub
    return Portfolio(0.0, 0.0, (0.0,) * n, (0.0,) * n, (1.0 - p.omega) * p.budget, 0.0, 0.0, 0.0, 0.0, 0.0,
                     False, method, 0, reason)


def infeasibility_reason(prob: PortfolioProblem) -> str:
    """Why even the least portfolio (X_lb, 0) fails."""
    p = prob.pub
    x_lb = p.own_data / (p.f * p.deadline)
    if x_lb > prob.cl.total:
        return f"the deadline needs {x_lb:.4g} shares but only {prob.cl.total:.4g} are on offer"
    return f"the deadline needs {x_lb:.4g} shares costing {prob.cl.cost(x_lb):.4g} > budget {p.budget:.4g}"


def best_integer_x(prob: PortfolioProblem, D: float) -> tuple[float, float]:
    """``(payoff, X)`` of the best integer X for an integer D.

    The X-part is concave, so it is the floor or the ceiling of the continuous optimum, clipped.
    """
    iv = prob.x_interval(D)
    if iv is None:
        return -math.inf, math.nan
    lo, hi = math.ceil(iv[0] - 1e-9), math.floor(iv[1] + 1e-9)
    if lo > hi:
        return -math.inf, math.nan
    xs = prob.x_star(D)
    best = (-math.inf, math.nan)
    for x in {min(max(math.floor(xs), lo), hi), min(max(math.ceil(xs), lo), hi)}:
        if x > 0 and prob.feasible(x, D):
            val = prob.payoff(x, D)
            if val > best[0]:
                best = (val, float(x))
    return best


def round_to_integers(prob: PortfolioProblem, D: float, d_max: float) -> tuple[float, float] | None:
    """The best integer portfolio next to a continuous optimum's D (scanning down if none is feasible).

    Returns:
        ``(X, D)`` integers as floats, or None when no integer portfolio is feasible.
    """
    top = math.floor(d_max + 1e-9)
    if top < 0:
        return None
    # a window of integer D around the continuous optimum (all of them when the range is small: on tiny
    # markets one unit moves the payoff by several percent and the integer optimum can sit further away)
    window = range(0, top + 1) if top <= 24 else range(math.floor(D) - 3, math.ceil(D) + 4)
    cands = {min(max(v, 0), top) for v in window}
    best: tuple[float, float, float] | None = None
    for dd in sorted(cands):
        val, x = best_integer_x(prob, float(dd))
        if val > -math.inf and (best is None or val > best[0]):
            best = (val, x, float(dd))
    dd = min(cands) - 1
    while best is None and dd >= 0:
        val, x = best_integer_x(prob, float(dd))
        if val > -math.inf:
            best = (val, x, float(dd))
        dd -= 1
    return None if best is None else (best[1], best[2])
