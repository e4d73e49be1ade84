"""``solve_hierarchical``: the whole single-CCSP round (upper level, then lower level, then the reference)."""

from __future__ import annotations

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .instance import HierarchicalInstance, hierarchical_welfare, utilization
from .joint import joint_milp, joint_vcg
from .levels import LOWER_METHODS, UPPER_METHODS, bundle_bids, clear_lower_on, clear_upper
from .market import NO_TRADE
from .outcome import Outcome


def _accounts(inst: HierarchicalInstance, assignment: np.ndarray, pay: np.ndarray) -> tuple[np.ndarray, ...]:
    revenue = np.zeros(inst.n_mesps)
    asks = np.zeros(inst.n_mesps)
    for i, j in enumerate(assignment):
        if j != NO_TRADE:
            revenue[j] += pay[i]
            asks[j] += inst.mesp_ask[j] * inst.demand[i]
    return revenue, asks


def solve_hierarchical(
    inst: HierarchicalInstance,
    upper: str = "dp",
    lower: str = "greedy",
    reference: bool = True,
    seller_order: str = "ask",
    reference_time_limit: float | None = None,
) -> Outcome:
    """Clear one round of the single-CCSP hierarchical auction.

    ``upper="milp"`` with ``lower="exact"`` solves both levels jointly (exact, VCG payments): a centralised
    computation the network cannot reproduce. Every other pair runs backward induction — bundle bids from the
    lower-level surplus, the upper clearing, then the lower clearing with capacities ``C_j + c_j``, each level
    with its own pricing — and the pairs of :data:`~.network.DECOMPOSABLE` are exactly those a network of
    separate MESPs and a CCSP clears level by level with the functions of :mod:`.network`.

    Args:
        inst: the round's bids and asks.
        upper: ``"dp"``, ``"greedy"``, ``"milp"`` or ``"brute"``.
        lower: ``"greedy"``, ``"exact"`` or ``"brute"``.
        reference: also solve the joint MILP and report ``optimum_welfare``.
        seller_order: MESP order of the lower greedy.
        reference_time_limit: seconds for the reference MILP (``None``: to optimality); the joint mode
            always solves to optimality.

    Raises:
        MechanismError: unknown method.
    """
    if upper not in UPPER_METHODS:
        raise MechanismError(f"unknown upper method {upper!r} (use one of {', '.join(UPPER_METHODS)})")
    if lower not in LOWER_METHODS:
        raise MechanismError(f"unknown lower method {lower!r} (use one of {', '.join(LOWER_METHODS)})")
    if upper == "milp" and lower == "exact":
        sol = joint_milp(inst)
        pay, mesp_pay = joint_vcg(inst, sol)
        revenue, asks = _accounts(inst, sol.assignment, pay)
        return Outcome(sol.assignment, sol.bundles, pay, mesp_pay, sol.welfare,
                       utilization(inst, sol.assignment), sol.welfare, upper, lower, revenue, asks)
    bids = bundle_bids(inst, lower, seller_order)
    up = clear_upper(bids, inst.spare, inst.ccsp_cost, upper)
    low = clear_lower_on(inst, up.bundles, lower, seller_order)
    revenue, asks = _accounts(inst, low.assignment, low.payments)
    opt = joint_milp(inst, time_limit=reference_time_limit).welfare if reference else None
    return Outcome(low.assignment, up.bundles, low.payments, up.payments,
                   hierarchical_welfare(inst, low.assignment, up.bundles), utilization(inst, low.assignment),
                   opt, upper, lower, revenue, asks, bids.values, float(up.welfare))
