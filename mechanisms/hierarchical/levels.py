"""The two levels of the single-CCSP auction: MESPs' bundle bids, the upper clearing, the lower clearing.

* lower (miners ↔ MESPs): ``"greedy"`` (Algorithm 1, critical payments), ``"exact"`` (MILP, VCG) or
  ``"brute"`` (enumeration, VCG; tests only);
* bundle bids: MESP ``j``'s bid for ``q = k·g`` extra units is the increase of the lower-level surplus when
  its capacity alone grows from ``C_j`` to ``C_j + q`` (the others keep ``C_l``), the surplus computed by the
  same lower method;
* upper (MESPs ↔ CCSP): ``"dp"`` (Algorithm 2, VCG), ``"greedy"`` (Algorithm 3 by ``b/√q``, critical
  payments), ``"milp"`` (VCG) or ``"brute"``. The CCSP's reserve is its unit cost ``κ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .exact import brute_force_allocate, exact_clear, milp_allocate
from .greedy import greedy_allocate, greedy_clear
from .instance import HierarchicalInstance
from .knapsack import dp_clear
from .market import NO_TRADE, Market, make_market, served_quantity

LOWER_METHODS = ("greedy", "exact", "brute")
UPPER_METHODS = ("dp", "greedy", "milp", "brute")

DECOMPOSABLE: frozenset[tuple[str, str]] = frozenset(
    (u, lo) for u in ("dp", "greedy", "milp") for lo in ("greedy", "exact")) - {("milp", "exact")}
"""(upper, lower) pairs that clear level by level, so a network of separate MESPs and a CCSP reproduces them
(:mod:`.network`); ``("milp", "exact")`` is the centralised joint MILP (``"brute"`` is for tests only)."""


@dataclass
class LowerOutcome:
    """Result of a lower-level clearing.

    Attributes:
        assignment: ``(N,)`` MESP index per miner, −1 if not served.
        payments: ``(N,)`` what each miner pays its MESP.
        surplus: ``Σ (v_i − a_j d_i)`` over the served miners.
        served: ``(M,)`` units each MESP serves.
        method: the lower method.
    """

    assignment: np.ndarray
    payments: np.ndarray
    surplus: float
    served: np.ndarray
    method: str


@dataclass
class BundleBids:
    """MESPs' bids for cloud bundles.

    Attributes:
        step: grid step ``g``.
        values: ``(M, K)``; ``values[j, k-1]`` is MESP ``j``'s bid for ``k·g`` units.
        base_surplus: lower-level surplus with no cloud units.
    """

    step: float
    values: np.ndarray
    base_surplus: float

    @property
    def quantities(self) -> np.ndarray:
        """``(M, K)`` bundle sizes ``k·g``."""
        m, k = self.values.shape
        return np.tile(self.step * np.arange(1, k + 1, dtype=float), (m, 1))


@dataclass
class UpperOutcome:
    """Result of the upper-level clearing.

    Attributes:
        bundles: ``(M,)`` cloud units ``c_j`` each MESP buys.
        payments: ``(M,)`` what each MESP pays the CCSP.
        welfare: ``Σ (b_j(c_j) − κ c_j)`` over the winners.
        method: the upper method.
    """

    bundles: np.ndarray
    payments: np.ndarray
    welfare: float
    method: str


def lower_surplus(m: Market, method: str, seller_order: str = "ask") -> float:
    """Surplus of the lower-level allocation a method finds (no payments).

    Raises:
        MechanismError: unknown method.
    """
    if method == "greedy":
        return greedy_allocate(m, seller_order).welfare
    if method == "exact":
        return milp_allocate(m).welfare
    if method == "brute":
        return brute_force_allocate(m).welfare
    raise MechanismError(f"unknown lower method {method!r} (use one of {', '.join(LOWER_METHODS)})")


def clear_lower(m: Market, method: str = "greedy", seller_order: str = "ask") -> LowerOutcome:
    """Clear the miners ↔ MESPs double auction with its payments.

    Args:
        m: the lower market (``HierarchicalInstance.lower_market(bundles)``).
        method: ``"greedy"`` (critical payments), ``"exact"`` or ``"brute"`` (VCG payments).
        seller_order: MESP order of the greedy (``"ask"`` or ``"ask_density"``).

    Raises:
        MechanismError: unknown method.
    """
    if method == "greedy":
        a = greedy_clear(m, seller_order)
    elif method == "exact":
        a = exact_clear(m, "milp")
    elif method == "brute":
        a = exact_clear(m, "brute")
    else:
        raise MechanismError(f"unknown lower method {method!r} (use one of {', '.join(LOWER_METHODS)})")
    return LowerOutcome(a.seller.copy(), a.payment, a.welfare, served_quantity(m, a.seller, a.option), method)


def bundle_bids(inst: HierarchicalInstance, lower: str = "greedy", seller_order: str = "ask") -> BundleBids:
    """Each MESP's bid for every bundle on the grid: its lower-level surplus gain.

    ``b_j(k·g) = S(C + k·g·e_j) − S(C)`` for ``k = 1..⌊C_up/g⌋``. When miners reach only one MESP this is
    MESP ``j``'s own surplus gain and the upper WDP over these bids is the joint problem; otherwise it is a
    decomposition (heuristic).
    """
    base_market = inst.lower_market()
    s0 = lower_surplus(base_market, lower, seller_order)
    values = np.zeros((inst.n_mesps, inst.n_steps))
    for j in range(inst.n_mesps):
        values[j] = surplus_gain_row(inst, base_market, s0, j, lower, seller_order)
    return BundleBids(inst.bundle_step, values, s0)


def surplus_gain_row(inst: HierarchicalInstance, base_market: Market, s0: float, j: int, lower: str,
                     seller_order: str = "ask") -> np.ndarray:
    """MESP ``j``'s bundle bids ``S(C + k·g·e_j) − s0`` for ``k = 1..K`` (``s0 = S(C)`` on ``base_market``).

    The one computation :func:`bundle_bids` (every row) and :func:`~.network.mesp_bundle_bids` (one row) share,
    so that a MESP computing its own row over the network gets exactly the offline solver's numbers.
    """
    row = np.zeros(inst.n_steps)
    for k in range(1, inst.n_steps + 1):
        cap = inst.mesp_capacity.copy()
        cap[j] += k * inst.bundle_step
        row[k - 1] = lower_surplus(base_market.with_capacity(cap), lower, seller_order) - s0
    return row


def clear_lower_on(inst: HierarchicalInstance, bundles: np.ndarray | list[float] | None, lower: str = "greedy",
                   seller_order: str = "ask") -> LowerOutcome:
    """Clear the lower level of ``inst`` with MESP capacities ``C_j + c_j`` (``bundles`` = the ``c_j``).

    The single call a MESP (or the CCSP, checking) makes once the upper level is cleared; the offline solvers
    make the same call.

    Raises:
        MechanismError: ``bundles`` has the wrong length or a negative or non-finite entry, or unknown method.
    """
    c = np.zeros(inst.n_mesps) if bundles is None else np.asarray(bundles, dtype=float).reshape(-1)
    if c.size != inst.n_mesps:
        raise MechanismError(f"bundles has {c.size} entries, expected one per MESP ({inst.n_mesps})")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise MechanismError("bundles must be finite and non-negative")
    return clear_lower(inst.lower_market(c), lower, seller_order)


def upper_market(bids: BundleBids, spare: float, cost: float) -> Market:
    """The upper market: MESPs' bundle options against one seller (the CCSP, ask = ``κ``)."""
    m, k = bids.values.shape
    if k == 0:
        q = np.zeros((m, 1))
        v = np.zeros((m, 1))
    else:
        q, v = bids.quantities, bids.values
    return make_market(q, v, [max(spare, 0.0)], [cost])


def clear_upper(bids: BundleBids, spare: float, cost: float = 0.0, method: str = "dp") -> UpperOutcome:
    """Clear the MESPs ↔ CCSP auction.

    Args:
        bids: the MESPs' bundle bids.
        spare: cloud units for sale ``C_up``.
        cost: the CCSP's unit cost ``κ``.
        method: ``"dp"`` / ``"milp"`` / ``"brute"`` (VCG payments) or ``"greedy"`` (critical payments).

    Raises:
        MechanismError: unknown method.
    """
    m = upper_market(bids, spare, cost)
    if method == "dp":
        a = dp_clear(m, bids.step)
    elif method == "greedy":
        a = greedy_clear(m)
    elif method == "milp":
        a = exact_clear(m, "milp")
    elif method == "brute":
        a = exact_clear(m, "brute")
    else:
        raise MechanismError(f"unknown upper method {method!r} (use one of {', '.join(UPPER_METHODS)})")
    bundles = np.array([m.quantity[j, a.option[j]] if a.seller[j] != NO_TRADE else 0.0
                        for j in range(m.n_buyers)])
    return UpperOutcome(bundles, a.payment, a.welfare, method)
