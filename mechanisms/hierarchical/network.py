"""The per-participant pieces of a round, for markets cleared by separate parties (docs/models/hierarchical.md §10).

The offline solvers compute every level in one place; over the network a MESP computes only its own bundle
row, the CCSP clears the upper level from the rows it received, and the lower level is cleared on the awarded
capacities. These functions are the very pieces :func:`~.hierarchy.solve_hierarchical` and
:func:`~.multi_ccsp.solve_multi_ccsp` compose (the same helpers run in both), so the network reproduces the
offline outcome bit for bit:

* MESP ``j``: :func:`mesp_bundle_bids` (:func:`multi_mesp_bundle_bids` with several CCSPs);
* the CCSP: :func:`clear_upper_from_rows` (:func:`clear_multi_upper_from_rows`);
* each MESP on its awarded capacity: :func:`~.levels.clear_lower_on`;
* every node, for the block lottery: :func:`lottery_weights`.

Only the pairs in :data:`DECOMPOSABLE` clear level by level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .instance import HierarchicalInstance
from .levels import (
    DECOMPOSABLE,
    LOWER_METHODS,
    UPPER_METHODS,
    BundleBids,
    UpperOutcome,
    clear_upper,
    lower_surplus,
    surplus_gain_row,
)
from .miners import MinerPopulation, success_probability
from .multi_ccsp import MULTI_UPPER_METHODS, MultiCcspInstance, clear_multi_upper, multi_upper_market

__all__ = [
    "DECOMPOSABLE",
    "check_rows",
    "clear_multi_upper_from_rows",
    "clear_upper_from_rows",
    "decomposable",
    "lottery_weights",
    "mesp_bundle_bids",
    "multi_mesp_bundle_bids",
    "n_bundle_steps",
]

def decomposable(upper: str, lower: str) -> bool:
    """Whether the single-CCSP pair ``(upper, lower)`` clears level by level (is in :data:`DECOMPOSABLE`)."""
    return (upper, lower) in DECOMPOSABLE


def mesp_bundle_bids(inst: HierarchicalInstance, j: int, lower: str = "greedy",
                     seller_order: str = "ask") -> np.ndarray:
    """MESP ``j``'s row of :func:`~.levels.bundle_bids`: ``b_j(k·g) = S(C + k·g·e_j) − S(C)``, k = 1..K.

    Only this row is computed (``K + 1`` lower-level solves), with the helper :func:`~.levels.bundle_bids`
    runs for every row, so the numbers are identical.

    Returns:
        ``(K,)`` bids, ``K = ⌊C_up/g⌋``. A bid may be negative: the greedy lower surplus is not monotone in a
        MESP's capacity.

    Raises:
        MechanismError: ``j`` out of range, an unknown lower method or seller order.
    """
    if not 0 <= j < inst.n_mesps:
        raise MechanismError(f"MESP index {j} outside [0, {inst.n_mesps})")
    if lower not in LOWER_METHODS:
        raise MechanismError(f"unknown lower method {lower!r} (use one of {', '.join(LOWER_METHODS)})")
    base = inst.lower_market()
    return surplus_gain_row(inst, base, lower_surplus(base, lower, seller_order), j, lower, seller_order)


def n_bundle_steps(spare: float, step: float) -> int:
    """Bundle bids per row, ``⌊spare/step + 1e-9⌋`` (0 when nothing is spare).

    Raises:
        MechanismError: ``step`` not positive and finite, or ``spare`` not finite.
    """
    if not (math.isfinite(step) and step > 0):
        raise MechanismError(f"bundle step must be positive and finite, got {step}")
    if not math.isfinite(spare):
        raise MechanismError(f"spare capacity must be finite, got {spare}")
    return math.floor(spare / step + 1e-9) if spare > 0 else 0


def check_rows(rows: Sequence[np.ndarray | Sequence[float]], k: int) -> np.ndarray:
    """The MESPs' rows as an ``(M, k)`` array, each checked: exactly ``k`` finite bids.

    Negative bids are accepted: the offline solver's own rows hold them when the greedy lower surplus falls
    as a capacity grows, and the network must clear the same numbers.

    Raises:
        MechanismError: a row of the wrong length or shape, or a non-finite bid.
    """
    out = np.zeros((len(rows), k))
    for j, row in enumerate(rows):
        r = np.asarray(row, dtype=float)
        if r.ndim != 1 or r.size != k:
            raise MechanismError(f"MESP row {j} has shape {r.shape}, expected {k} bundle bids")
        if not np.all(np.isfinite(r)):
            raise MechanismError(f"MESP row {j} has a non-finite bid")
        out[j] = r
    return out


def clear_upper_from_rows(rows: Sequence[np.ndarray | Sequence[float]], step: float, spare: float,
                          cost: float = 0.0, method: str = "dp") -> UpperOutcome:
    """The CCSP's clearing from the MESPs' rows (one per MESP, ``⌊spare/step + 1e-9⌋`` bids each).

    Equal to ``clear_upper(BundleBids(step, np.vstack(rows), base), spare, cost, method)`` for any ``base``:
    the base surplus ``S(C)`` is never used by the upper clearing (nor is it in :class:`~.levels.UpperOutcome`),
    so the CCSP does not need it.

    Raises:
        MechanismError: a row of the wrong length, a non-finite bid, a bad step, spare or cost, or an unknown
            method. (A row may hold negative bids: with a greedy lower level the surplus is not monotone in
            the capacity, and the offline solver clears those values too.)
    """
    if method not in UPPER_METHODS:
        raise MechanismError(f"unknown upper method {method!r} (use one of {', '.join(UPPER_METHODS)})")
    if not (math.isfinite(cost) and cost >= 0):
        raise MechanismError(f"the CCSP's unit cost must be finite and non-negative, got {cost}")
    values = check_rows(rows, n_bundle_steps(spare, step))
    return clear_upper(BundleBids(step, values, 0.0), spare, cost, method)


def multi_mesp_bundle_bids(inst: MultiCcspInstance, j: int, lower: str = "greedy") -> np.ndarray:
    """MESP ``j``'s row with several CCSPs: its row of ``bundle_bids(inst.single(), lower)``.

    Bundles go up to the largest CCSP's capacity, ``K = ⌊max_k Q_k / g⌋``.

    Raises:
        MechanismError: as :func:`mesp_bundle_bids`.
    """
    return mesp_bundle_bids(inst.single(), j, lower)


def clear_multi_upper_from_rows(inst: MultiCcspInstance, rows: Sequence[np.ndarray | Sequence[float]],
                                method: str = "lagrangian",
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float | None]:
    """The upper double auction with several CCSPs from the MESPs' rows (``inst.n_steps`` bids each).

    The clearing :func:`~.multi_ccsp.solve_multi_ccsp` runs, with the default Lagrangian options; the lower
    level is then ``clear_lower_on(inst.single(), bundles, lower)``.

    Returns:
        ``(bundles, ccsp_of, mesp_payments, upper_welfare, upper_bound)``; ``ccsp_of[j]`` is the CCSP MESP ``j``
        buys from (−1: none); ``upper_bound`` is the Lagrangian dual bound (``None`` for the other methods).

    Raises:
        MechanismError: a row count other than one per MESP, bad rows, or an unknown method.
    """
    if method not in MULTI_UPPER_METHODS:
        raise MechanismError(f"unknown upper method {method!r} (use one of {', '.join(MULTI_UPPER_METHODS)})")
    values = check_rows(rows, inst.n_steps)
    if values.shape[0] != inst.mesp_capacity.size:
        raise MechanismError(f"{values.shape[0]} rows for {inst.mesp_capacity.size} MESPs")
    a, bundles, bound = clear_multi_upper(multi_upper_market(inst, values), method)
    return (bundles, a.seller.copy(), np.asarray(a.payment, float), float(a.welfare),
            float(bound) if method == "lagrangian" else None)


def lottery_weights(demand: Sequence[float] | np.ndarray, served_mask: Sequence[bool] | np.ndarray,
                    block_size: Sequence[float] | np.ndarray, arrival_rate: float, propagation_delay: float,
                    scale: int = 10**6) -> list[int]:
    """Integer lottery weights ∝ each miner's success probability ``P_i = h_i e^{−λ z s_i}`` (0 if unserved).

    ``P_i`` is :func:`~.miners.success_probability` of the realised allocation (hash share
    ``h_i = d_i x_i / Σ_k d_k x_k`` times the orphan factor ``e^{−λ z s_i}``). A weight is
    ``round(scale·P_i)``, at least 1 for a served miner with a positive ``P_i``; pure and deterministic, so every
    node derives the same weights.

    Args:
        demand: ``(N,)`` units ``d_i`` (positive).
        served_mask: ``(N,)`` whether miner ``i`` is served.
        block_size: ``(N,)`` block sizes ``s_i`` (non-negative).
        arrival_rate: ``λ``, blocks per second.
        propagation_delay: ``z``, seconds per unit of block size.
        scale: weight of ``P_i = 1``.

    Raises:
        MechanismError: lengths differ, a non-positive demand, a negative block size, rate or delay, a
            non-finite number, or a non-positive scale.
    """
    d = np.asarray(demand, float).reshape(-1)
    x = np.asarray(served_mask, bool).reshape(-1)
    s = np.asarray(block_size, float).reshape(-1)
    if not (d.size == x.size == s.size):
        raise MechanismError(f"demand ({d.size}), served_mask ({x.size}) and block_size ({s.size}) "
                             "need one entry per miner")
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise MechanismError("demands must be positive and finite")
    if not (np.all(np.isfinite(s)) and np.all(s >= 0)):
        raise MechanismError("block sizes must be non-negative and finite")
    for name, val in (("arrival_rate", arrival_rate), ("propagation_delay", propagation_delay)):
        if not (math.isfinite(val) and val >= 0):
            raise MechanismError(f"{name} must be non-negative and finite, got {val}")
    if int(scale) != scale or scale < 1:
        raise MechanismError(f"scale must be a positive integer, got {scale}")
    pop = MinerPopulation(d, s, 0.0, 0.0, block_rate=float(arrival_rate), delay_per_tx=float(propagation_delay))
    p = success_probability(pop, x)
    return [max(1, round(scale * float(pi))) if served and pi > 0 else 0 for pi, served in zip(p, x, strict=True)]
