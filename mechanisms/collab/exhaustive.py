# ruff: noqa: SIM300  (X and D are the paper's names, not constants: 'X > bound' is not a Yoda condition)
"""Exhaustive search over the integer grid: the obviously-correct reference for small instances."""

from __future__ import annotations

import math

import numpy as np

from ..errors import MechanismError
from .problem import PortfolioProblem

MAX_CELLS = 4_000_000


def exhaustive(prob: PortfolioProblem, step: float = 1.0) -> tuple[float, float, int] | None:
    """Evaluate every (X, D) on the grid of spacing ``step`` and keep the best feasible one.

    Every constraint is checked directly from its definition (no interval algebra), vectorised with numpy.

    Returns:
        ``(X, D, cells)`` or None when no grid point is feasible.

    Raises:
        MechanismError: the grid would exceed ``MAX_CELLS`` points.
    """
    p = prob.pub
    if step <= 0:
        raise MechanismError("grid step must be > 0")
    nx = math.floor(prob.cl.total / step + 1e-9)
    nd = math.floor(prob.dl.total / step + 1e-9)
    if (nx + 1) * (nd + 1) > MAX_CELLS:
        cells = (nx + 1) * (nd + 1)
        raise MechanismError(f"exhaustive grid of {cells} points is too large (max {MAX_CELLS})")
    if nx < 1:
        return None
    xs = np.arange(1, nx + 1) * step
    ds = np.arange(0, nd + 1) * step
    cf = np.interp(xs, prob.cl.q, prob.cl.c)
    cd = np.interp(ds, prob.dl.q, prob.dl.c) if prob.dl.prices else np.zeros_like(ds)
    ud = np.array([prob.data_gain(float(v)) for v in ds])
    X, Dm = np.meshgrid(xs, ds, indexing="ij")
    CF, CD = cf[:, None], cd[None, :]
    ut = p.eps_t * (p.deadline - (p.own_data + p.d * Dm) / (p.f * X) - p.d * Dm / p.r_net)
    pay = p.omega * (ut + ud[None, :]) + (1 - p.omega) * (p.budget - CF - CD)
    slack = 1e-7 * max(1.0, p.budget)
    cushion = np.maximum(0.0, ut - CF)
    ok = (CF + CD <= p.budget + slack) & (ut >= -slack) & (CD <= p.multiplier * cushion + slack)
    if not ok.any():
        return None
    pay = np.where(ok, pay, -np.inf)
    i, j = np.unravel_index(int(np.argmax(pay)), pay.shape)
    return float(xs[i]), float(ds[j]), int(pay.size)
