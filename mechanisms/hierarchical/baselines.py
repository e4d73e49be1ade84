"""The paper's baselines for the upper level: fixed sharing, random sharing, edge-only (no CCSP).

Each fixes the bundles ``c_j`` without an auction; the lower level is then cleared as usual and each MESP pays
the CCSP its cost ``κ c_j``. The paper's "each MESP reserves 4000 MIPS" (with 3000 own and 4000 spare for two
MESPs) reads as a *total* reservation per MESP: ``c_j = 4000 − C_j``; random sharing draws the total in
``[3000, 4000]``. Bundles are rounded down to the grid and scaled down if they exceed the spare.
"""

from __future__ import annotations

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .instance import HierarchicalInstance, hierarchical_welfare, utilization
from .levels import clear_lower
from .market import NO_TRADE
from .outcome import Outcome


def _to_grid(inst: HierarchicalInstance, raw: np.ndarray) -> np.ndarray:
    steps = np.floor(np.maximum(raw, 0.0) / inst.bundle_step + 1e-9)
    k = inst.n_steps
    while steps.sum() > k:
        steps[int(np.argmax(steps))] -= 1
    return steps * inst.bundle_step


def fixed_bundles(inst: HierarchicalInstance, total_per_mesp: float = 4000.0) -> np.ndarray:
    """``c_j = total − C_j`` on the grid (fixed sharing)."""
    return _to_grid(inst, total_per_mesp - inst.mesp_capacity)


def random_bundles(inst: HierarchicalInstance, rng: np.random.Generator, low: float = 3000.0,
                   high: float = 4000.0) -> np.ndarray:
    """``c_j = U[low, high] − C_j`` on the grid (random sharing).

    Raises:
        MechanismError: ``low > high``.
    """
    if low > high:
        raise MechanismError("random sharing needs low <= high")
    return _to_grid(inst, rng.uniform(low, high, inst.n_mesps) - inst.mesp_capacity)


def solve_with_bundles(inst: HierarchicalInstance, bundles: np.ndarray, lower: str = "greedy",
                       name: str = "fixed") -> Outcome:
    """Clear the lower level with given bundles; MESPs pay the CCSP ``κ c_j``."""
    b = np.asarray(bundles, float)
    if b.shape != (inst.n_mesps,) or np.any(b < 0) or b.sum() > inst.spare + 1e-9:
        raise MechanismError("bundles must be non-negative, one per MESP, within the spare capacity")
    low = clear_lower(inst.lower_market(b), lower)
    revenue = np.zeros(inst.n_mesps)
    asks = np.zeros(inst.n_mesps)
    for i, j in enumerate(low.assignment):
        if j != NO_TRADE:
            revenue[j] += low.payments[i]
            asks[j] += inst.mesp_ask[j] * inst.demand[i]
    return Outcome(low.assignment, b, low.payments, inst.ccsp_cost * b,
                   hierarchical_welfare(inst, low.assignment, b), utilization(inst, low.assignment), None,
                   name, lower, revenue, asks)


def edge_only(inst: HierarchicalInstance, lower: str = "greedy") -> Outcome:
    """No cloud: the MESPs serve with their own capacity only."""
    return solve_with_bundles(inst, np.zeros(inst.n_mesps), lower, "edge-only")
