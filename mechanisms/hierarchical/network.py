"""The per-participant pieces of a round, for markets cleared by separate parties (SPEC §8 "Over the network").

The offline solvers compute every level in one place; over the network a MESP computes only its own bundle
row, the CCSP clears the upper level from the rows it received, and the lower level is cleared on the awarded
capacities. These functions are exactly the pieces :func:`~.hierarchy.solve_hierarchical` and
:func:`~.multi_ccsp.solve_multi_ccsp` compose, so the network reproduces the offline outcome bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .exact import exact_clear
from .greedy import greedy_clear
from .instance import HierarchicalInstance
from .lagrangian import lagrangian_clear
from .levels import UPPER_METHODS, BundleBids, UpperOutcome, clear_upper, lower_surplus
from .market import NO_TRADE
from .miners import MinerPopulation, success_probability
from .multi_ccsp import MULTI_UPPER_METHODS, MultiCcspInstance, multi_upper_market

DECOMPOSABLE = frozenset((u, lo) for u in ("dp", "greedy", "milp") for lo in ("greedy", "exact")) - {
    ("milp", "exact")}
"""(upper, lower) pairs that clear level by level; ``("milp", "exact")`` is the centralised joint MILP."""


def mesp_bundle_bids(inst: HierarchicalInstance, j: int, lower: str = "greedy",
                     seller_order: str = "ask") -> np.ndarray:
    """MESP ``j``'s row of :func:`~.levels.bundle_bids`: ``b_j(k·g) = S(C + k·g·e_j) − S(C)``, k = 1..K.

    Raises:
        MechanismError: ``j`` out of range or an unknown lower method.
    """
    if not 0 <= j < inst.n_mesps:
        raise MechanismError(f"MESP index {j} outside [0, {inst.n_mesps})")
    base = inst.lower_market()
    s0 = lower_surplus(base, lower, seller_order)
    row = np.zeros(inst.n_steps)
    for k in range(1, inst.n_steps + 1):
        cap = inst.mesp_capacity.copy()
        cap[j] += k * inst.bundle_step
        row[k - 1] = lower_surplus(base.with_capacity(cap), lower, seller_order) - s0
    return row


def _rows(rows: Sequence[np.ndarray | Sequence[float]], k: int) -> np.ndarray:
    out = np.zeros((len(rows), k))
    for j, row in enumerate(rows):
        r = np.asarray(row, dtype=float).reshape(-1)
        if r.size != k:
            raise MechanismError(f"MESP row {j} has {r.size} bundle bids, expected {k}")
        if not np.all(np.isfinite(r)):
            raise MechanismError(f"MESP row {j} has a non-finite bid")
        out[j] = r
    return out


def clear_upper_from_rows(rows: Sequence[np.ndarray | Sequence[float]], step: float, spare: float,
                          cost: float = 0.0, method: str = "dp") -> UpperOutcome:
    """The CCSP's clearing from the MESPs' rows (one per MESP, ``⌊spare/step⌋`` bids each).

    Raises:
        MechanismError: a row of the wrong length, a non-finite bid, or an unknown method. (A row may hold
            negative bids: with a greedy lower level the surplus is not monotone in the capacity.)
    """
    if method not in UPPER_METHODS:
        raise MechanismError(f"unknown upper method {method!r}")
    k = math.floor(spare / step + 1e-9) if spare > 0 else 0
    values = _rows(rows, k)
    return clear_upper(BundleBids(step, values, 0.0), spare, cost, method)


def multi_mesp_bundle_bids(inst: MultiCcspInstance, j: int, lower: str = "greedy") -> np.ndarray:
    """MESP ``j``'s row with several CCSPs (bundles up to the largest CCSP's capacity)."""
    return mesp_bundle_bids(inst.single(), j, lower)


def clear_multi_upper_from_rows(inst: MultiCcspInstance, rows: Sequence[np.ndarray | Sequence[float]],
                                method: str = "lagrangian",
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float | None]:
    """The upper double auction with several CCSPs from the MESPs' rows.

    Returns:
        ``(bundles, ccsp_of, mesp_payments, upper_welfare, upper_bound)``; ``upper_bound`` is the Lagrangian
        dual bound (``None`` for the other methods).

    Raises:
        MechanismError: bad rows or an unknown method.
    """
    if method not in MULTI_UPPER_METHODS:
        raise MechanismError(f"unknown upper method {method!r} (use one of {', '.join(MULTI_UPPER_METHODS)})")
    um = multi_upper_market(inst, _rows(rows, inst.n_steps))
    bound: float | None = None
    if method == "greedy":
        a = greedy_clear(um)
    elif method == "lagrangian":
        res = lagrangian_clear(um)
        a, bound = res.allocation, float(res.dual_bound)
    else:
        a = exact_clear(um, "milp")
    bundles = np.array([um.quantity[j, a.option[j]] if a.seller[j] != NO_TRADE else 0.0
                        for j in range(um.n_buyers)])
    return bundles, a.seller.copy(), np.asarray(a.payment, float), float(a.welfare), bound


def lottery_weights(demand: Sequence[float] | np.ndarray, served: Sequence[bool] | np.ndarray,
                    block_size: Sequence[float] | np.ndarray, arrival_rate: float, propagation_delay: float,
                    scale: int = 10**6) -> list[int]:
    """Integer lottery weights ∝ each miner's success probability ``P_i = h_i e^{−λ z s_i}`` (0 if unserved).

    ``round(scale·P_i)``, at least 1 for a served miner with a positive ``P_i``; deterministic, so every node
    derives the same weights.
    """
    d = np.asarray(demand, float)
    if d.size == 0:
        return []
    pop = MinerPopulation(d, np.asarray(block_size, float), 0.0, 0.0, block_rate=arrival_rate,
                          delay_per_tx=propagation_delay)
    p = success_probability(pop, np.asarray(served, bool))
    return [max(1, round(scale * float(x))) if x > 0 else 0 for x in p]
