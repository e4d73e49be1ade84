"""The exact reference of the allocation contract: the same objective J (:mod:`.contract`) maximised by a MILP
(scipy's HiGHS). φ is convex piecewise linear, so its epigraph ``t_p ≥ a_k·u_p + b_k`` is exact."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .model import Provider, Task
from .objective import BREAKPOINTS, balance_weight, eligible, gain, objective_of


@dataclass(frozen=True)
class ExactResult:
    """The MILP's assignment, its objective J, whether HiGHS proved it optimal, and the solve time."""

    assignment: tuple[int, ...]
    objective: float
    optimal: bool
    seconds: float


def _segments() -> list[tuple[float, float]]:
    """(slope, intercept) of each piece of φ."""
    return [(hi + lo, -hi * lo) for lo, hi in itertools.pairwise(BREAKPOINTS)]


def allocate_exact(tasks: Sequence[Task], providers: Sequence[Provider], load: Sequence[float] | None = None,
                   time_limit: float | None = None) -> ExactResult:
    """Maximise J over every assignment (each task to at most one eligible provider, capacities held)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    t0 = time.perf_counter()
    loads = list(load) if load is not None else [0.0] * len(providers)
    pairs = [(i, j) for i, t in enumerate(tasks) for j, p in enumerate(providers)
             if eligible(t, p) and t.units <= p.capacity - loads[j] + 1e-9]
    n_x, n_p = len(pairs), len(providers)
    ti = np.array([i for i, _ in pairs], dtype=int)
    pj = np.array([j for _, j in pairs], dtype=int)
    units = np.array([tasks[i].units for i in ti], dtype=float)
    cap = np.array([p.capacity for p in providers], dtype=float)
    base = np.array(loads, dtype=float)
    c = np.concatenate([[-gain(tasks[i], providers[j]) for i, j in pairs], balance_weight(providers) * cap])
    r, col, val, lo, hi = [], [], [], [], []
    row = 0
    for i in sorted(set(ti.tolist())):  # each task at most once
        ks = np.flatnonzero(ti == i)
        r += [row] * len(ks)
        col += ks.tolist()
        val += [1.0] * len(ks)
        lo.append(-np.inf)
        hi.append(1.0)
        row += 1
    for j in range(n_p):
        ks = np.flatnonzero(pj == j)
        r += [row] * len(ks)  # capacity
        col += ks.tolist()
        val += units[ks].tolist()
        lo.append(-np.inf)
        hi.append(cap[j] - base[j])
        row += 1
        for slope, icpt in _segments():  # t_j − slope·Σ C x / cap ≥ slope·L_j / cap + icpt
            r += [row] * (len(ks) + 1)
            col += [*ks.tolist(), n_x + j]
            val += [*(-slope * units[ks] / cap[j]).tolist(), 1.0]
            lo.append(slope * base[j] / cap[j] + icpt)
            hi.append(np.inf)
            row += 1
    matrix = coo_matrix((val, (r, col)), shape=(row, n_x + n_p)).tocsr()
    integrality = np.concatenate([np.ones(n_x), np.zeros(n_p)])
    bounds = Bounds(np.concatenate([np.zeros(n_x), np.full(n_p, -np.inf)]),
                    np.concatenate([np.ones(n_x), np.full(n_p, np.inf)]))
    options = {"time_limit": time_limit} if time_limit is not None else {}
    res = milp(c, constraints=LinearConstraint(matrix, lo, hi), integrality=integrality, bounds=bounds,
               options=options)
    assignment = [-1] * len(tasks)
    if res.x is not None:
        for k, (i, j) in enumerate(pairs):
            if res.x[k] > 0.5:
                assignment[i] = j
    return ExactResult(tuple(assignment), objective_of(tasks, providers, assignment, load),
                       bool(res.status == 0), time.perf_counter() - t0)
