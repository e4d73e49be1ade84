"""Several CCSPs (Section 5): both levels are double auctions.

Upper level: MESP ``j`` bids ``b_j(k·g)`` (its lower-level surplus gain, as with one CCSP) for bundles up to the
largest CCSP's capacity; CCSP ``k`` sells ``Q_k`` units at a per-unit ask ``α_k``; each MESP buys from at most
one CCSP: maximise ``Σ (b_jq − α_k q) z_jqk`` s.t. ``Σ q z_jqk ≤ Q_k`` and ``Σ_qk z_jqk ≤ 1``. Solved by the
greedy (Algorithm 3 generalised), the Lagrangian heuristic, or the MILP. The lower level is cleared as before
with capacities ``C_j + c_j``. The joint MILP over both levels is the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .exact import exact_clear
from .greedy import greedy_clear
from .instance import make_instance
from .lagrangian import lagrangian_clear
from .levels import bundle_bids, clear_lower_on
from .market import NO_TRADE, Allocation, Market, make_market

MULTI_UPPER_METHODS = ("greedy", "lagrangian", "milp")
ANALYSIS_UPPER_METHODS = (*MULTI_UPPER_METHODS, "greedy-1opt")
"""Also ``greedy-1opt``, an allocation without payments for experiments: never a network market's rule."""


@dataclass(frozen=True)
class MultiCcspInstance:
    """Miners, MESPs and several CCSPs.

    Attributes:
        demand, bid: ``(N,)`` miners' demands and bids.
        mesp_capacity, mesp_ask: ``(M,)`` MESPs' own capacity and per-unit ask.
        ccsp_capacity: ``(K,)`` units each CCSP sells.
        ccsp_ask: ``(K,)`` each CCSP's per-unit ask.
        bundle_step: grid step ``g``.
        base_price: per-unit floor on miners' bids.
    """

    demand: np.ndarray
    bid: np.ndarray
    mesp_capacity: np.ndarray
    mesp_ask: np.ndarray
    ccsp_capacity: np.ndarray
    ccsp_ask: np.ndarray
    bundle_step: float
    base_price: float = 0.0

    def __post_init__(self) -> None:
        if self.ccsp_capacity.shape != self.ccsp_ask.shape or self.ccsp_capacity.size == 0:
            raise MechanismError("one capacity and one ask per CCSP, at least one CCSP")
        if np.any(self.ccsp_capacity < 0) or np.any(self.ccsp_ask < 0):
            raise MechanismError("CCSP capacities and asks must be non-negative")
        # validates the rest
        self.single()

    @property
    def n_steps(self) -> int:
        """Largest bundle in steps: ``⌊max_k Q_k / g⌋``."""
        return math.floor(float(self.ccsp_capacity.max()) / self.bundle_step + 1e-9)

    def single(self) -> Any:
        """The single-CCSP view used to derive bundle bids (spare = the largest CCSP, no cost)."""
        return make_instance(self.demand, self.bid, self.mesp_capacity, self.mesp_ask,
                             float(self.mesp_capacity.sum() + self.ccsp_capacity.max()), self.bundle_step,
                             0.0, self.base_price)


@dataclass
class MultiOutcome:
    """Outcome of a multi-CCSP round.

    Attributes:
        assignment: ``(N,)`` MESP per miner or −1.
        bundles: ``(M,)`` cloud units per MESP.
        ccsp_of: ``(M,)`` the CCSP each MESP buys from, −1 if none.
        miner_payments, mesp_payments: payments at each level.
        welfare: ``Σ (v_i − a_j d_i) − Σ α_k c_j``.
        utilization: served demand over ``Σ C_j + Σ Q_k``.
        upper_welfare: welfare of the upper allocation on the bundle bids.
        upper_bound: Lagrangian dual bound (``nan`` for other methods).
        upper_optimum: the upper MILP on the same bids (``nan`` when not computed).
        optimum_welfare: the joint MILP (``nan`` when not computed).
        upper, lower: the methods used.
    """

    assignment: np.ndarray
    bundles: np.ndarray
    ccsp_of: np.ndarray
    miner_payments: np.ndarray
    mesp_payments: np.ndarray
    welfare: float
    utilization: float
    upper_welfare: float
    upper_bound: float
    upper_optimum: float
    optimum_welfare: float
    upper: str = ""
    lower: str = ""

    @property
    def duality_gap(self) -> float | None:
        """``(dual bound − upper welfare) / |dual bound|`` of the Lagrangian upper level (None otherwise)."""
        if not math.isfinite(self.upper_bound) or abs(self.upper_bound) < 1e-12:
            return None
        return float((self.upper_bound - self.upper_welfare) / abs(self.upper_bound))

    @property
    def gap(self) -> float | None:
        """Relative welfare gap to the joint optimum (``None`` without the optimum)."""
        if not math.isfinite(self.optimum_welfare):
            return None
        if abs(self.optimum_welfare) < 1e-12:
            return 0.0
        return float((self.optimum_welfare - self.welfare) / abs(self.optimum_welfare))

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict with the single-CCSP output's keys plus ``ccsp_of`` and the Lagrangian figures."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "assignment": [None if int(j) == NO_TRADE else int(j) for j in self.assignment],
            "bundles": [float(c) for c in self.bundles],
            "ccsp_of": [None if int(k) == NO_TRADE else int(k) for k in self.ccsp_of],
            "miner_payments": [float(p) for p in self.miner_payments],
            "mesp_payments": [float(p) for p in self.mesp_payments],
            "welfare": float(self.welfare),
            "optimum_welfare": num(self.optimum_welfare),
            "utilization": float(self.utilization),
            "utilisation": float(self.utilization),
            "upper_welfare": float(self.upper_welfare),
            "upper_bound": num(self.upper_bound),
            "duality_gap": self.duality_gap,
            "details": {
                "upper": self.upper,
                "lower": self.lower,
                "upper_optimum": num(self.upper_optimum),
                "gap_to_optimum": self.gap,
                "ccsp_revenue": float(np.sum(self.mesp_payments)),
            },
        }


def make_multi_instance(demand: Any, bid: Any, mesp_capacity: Any, mesp_ask: Any, ccsp_capacity: Any,
                        ccsp_ask: Any, bundle_step: float, base_price: float = 0.0) -> MultiCcspInstance:
    """Build and validate a :class:`MultiCcspInstance`."""
    return MultiCcspInstance(np.asarray(demand, float), np.asarray(bid, float), np.asarray(mesp_capacity, float),
                             np.asarray(mesp_ask, float), np.asarray(ccsp_capacity, float).reshape(-1),
                             np.asarray(ccsp_ask, float).reshape(-1), float(bundle_step), float(base_price))


def multi_upper_market(inst: MultiCcspInstance, values: np.ndarray) -> Market:
    """MESPs' bundle options against the CCSPs."""
    m, k = values.shape
    q = np.tile(inst.bundle_step * np.arange(1, k + 1, dtype=float), (m, 1)) if k else np.zeros((m, 1))
    v = values if k else np.zeros((m, 1))
    return make_market(q, v, inst.ccsp_capacity, inst.ccsp_ask)


def multi_joint_milp(inst: MultiCcspInstance, time_limit: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Joint optimum over both levels: ``(assignment, bundles, ccsp_of, welfare)``.

    With ``time_limit`` (seconds) HiGHS may stop early and the best allocation found is returned
    (:func:`multi_joint_milp_status` also says whether it was proven optimal).

    Raises:
        MechanismError: HiGHS fails.
    """
    return multi_joint_milp_status(inst, time_limit)[:4]  # type: ignore[return-value]


def multi_joint_milp_status(inst: MultiCcspInstance, time_limit: float | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """:func:`multi_joint_milp` plus whether HiGHS proved the allocation optimal (``False`` only when
    ``time_limit`` stopped it first).

    Raises:
        MechanismError: HiGHS fails.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp  # loaded only when a MILP is solved (docs/adr/0121)
    from scipy.sparse import coo_matrix

    single = inst.single()
    lm = single.lower_market()
    n, mm, kk = single.n_miners, single.n_mesps, inst.ccsp_capacity.size
    g = inst.bundle_step
    steps = np.floor(inst.ccsp_capacity / g + 1e-9)
    adm = lm.admitted()
    pairs = [(i, j) for i in range(n) if adm[i, 0] for j in range(mm) if lm.trade_ok(i, 0, j)]
    nx = len(pairs)
    ny = mm * kk
    nv = nx + 2 * ny
    c = np.zeros(nv)
    for t, (i, j) in enumerate(pairs):
        c[t] = -(inst.bid[i] - inst.mesp_ask[j] * inst.demand[i])
    for j in range(mm):
        for k in range(kk):
            c[nx + j * kk + k] = inst.ccsp_ask[k] * g
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    ub: list[float] = []
    r = 0
    for j in range(mm):  # capacity of MESP j
        for t, (i, jj) in enumerate(pairs):
            if jj == j:
                rows.append(r)
                cols.append(t)
                vals.append(float(inst.demand[i]))
        for k in range(kk):
            rows.append(r)
            cols.append(nx + j * kk + k)
            vals.append(-g)
        ub.append(float(inst.mesp_capacity[j]))
        r += 1
    for i in range(n):  # one MESP per miner
        for t, (ii, _) in enumerate(pairs):
            if ii == i:
                rows.append(r)
                cols.append(t)
                vals.append(1.0)
        ub.append(1.0)
        r += 1
    for k in range(kk):  # CCSP capacity
        for j in range(mm):
            rows.append(r)
            cols.append(nx + j * kk + k)
            vals.append(1.0)
        ub.append(float(steps[k]))
        r += 1
    for j in range(mm):  # one CCSP per MESP, y_jk <= steps_k u_jk
        for k in range(kk):
            rows.append(r)
            cols.append(nx + ny + j * kk + k)
            vals.append(1.0)
        ub.append(1.0)
        r += 1
        for k in range(kk):
            rows += [r, r]
            cols += [nx + j * kk + k, nx + ny + j * kk + k]
            vals += [1.0, -float(steps[k])]
            ub.append(0.0)
            r += 1
    a = coo_matrix((vals, (rows, cols)), shape=(r, nv)).tocsr()
    hi = np.concatenate([np.ones(nx), np.repeat(steps[None, :], mm, axis=0).reshape(-1), np.ones(ny)])
    options: dict[str, float | bool] = {"mip_rel_gap": 1e-9, "presolve": False}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(c, constraints=LinearConstraint(a, -np.inf, np.array(ub)), integrality=np.ones(nv),
               bounds=Bounds(np.zeros(nv), hi), options=options)
    if res.x is None:
        raise MechanismError(f"multi-CCSP joint MILP failed: {res.message}")
    assignment = np.full(n, NO_TRADE, dtype=int)
    for t, (i, j) in enumerate(pairs):
        if res.x[t] > 0.5:
            assignment[i] = j
    y = np.round(res.x[nx:nx + ny]).reshape(mm, kk)
    bundles = g * y.sum(axis=1)
    ccsp_of = np.where(y.sum(axis=1) > 0, np.argmax(y, axis=1), NO_TRADE)
    return assignment, bundles, ccsp_of, float(-res.fun), bool(res.status == 0)


def solve_multi_ccsp(inst: MultiCcspInstance, upper: str = "lagrangian", lower: str = "greedy",
                     reference: bool = True, reference_time_limit: float | None = None,
                     **lagrangian_options: float) -> MultiOutcome:
    """Clear a multi-CCSP round by backward induction.

    Args:
        inst: the round.
        upper: ``"greedy"`` (critical payments), ``"greedy-1opt"`` (greedy + the Lagrangian's 1-opt search;
            allocation only, no payments), ``"lagrangian"`` (VCG-like payments) or ``"milp"`` (VCG).
        lower: ``"greedy"`` or ``"exact"``.
        reference: also compute the upper MILP on the same bids and the joint MILP.
        reference_time_limit: seconds for the joint MILP (``None``: to optimality).
        **lagrangian_options: passed to :func:`lagrangian_allocate`.

    Raises:
        MechanismError: unknown method.
    """
    if upper not in ANALYSIS_UPPER_METHODS:
        raise MechanismError(f"unknown upper method {upper!r} (use one of {', '.join(ANALYSIS_UPPER_METHODS)})")
    single = inst.single()
    bids = bundle_bids(single, lower)
    um = multi_upper_market(inst, bids.values)
    a, bundles, bound = clear_multi_upper(um, upper, **lagrangian_options)
    low = clear_lower_on(single, bundles, lower)
    welfare = low.surplus - cloud_cost(inst, bundles, a.seller)
    up_opt = exact_clear(um, "milp").welfare if reference and upper != "milp" else (
        a.welfare if upper == "milp" else math.nan)
    opt = multi_joint_milp(inst, reference_time_limit)[3] if reference else math.nan
    return MultiOutcome(low.assignment, bundles, a.seller.copy(), low.payments, a.payment, welfare,
                        multi_utilization(inst, low.assignment), a.welfare, bound, up_opt, opt, upper, lower)


def clear_multi_upper(um: Market, upper: str = "lagrangian", **lagrangian_options: float
                      ) -> tuple[Allocation, np.ndarray, float]:
    """Clear the upper double auction ``um`` (MESPs' bundle options × CCSPs).

    The one clearing :func:`solve_multi_ccsp` and :func:`~.network.clear_multi_upper_from_rows` share.

    Returns:
        ``(allocation, bundles, dual_bound)``: the allocation with its payments, the ``(M,)`` cloud units per
        MESP, and the Lagrangian dual bound (``nan`` for the other methods).

    Raises:
        MechanismError: unknown method.
    """
    bound = math.nan
    if upper == "greedy":
        a = greedy_clear(um)
    elif upper == "greedy-1opt":  # allocation only (no payments): experiments separating LA's local search
        from .lagrangian import greedy_improved_allocate

        a = greedy_improved_allocate(um)
    elif upper == "lagrangian":
        res = lagrangian_clear(um, **lagrangian_options)
        a, bound = res.allocation, float(res.dual_bound)
    elif upper == "milp":
        a = exact_clear(um, "milp")
    else:
        raise MechanismError(f"unknown upper method {upper!r} (use one of {', '.join(MULTI_UPPER_METHODS)})")
    bundles = np.array([um.quantity[j, a.option[j]] if a.seller[j] != NO_TRADE else 0.0
                        for j in range(um.n_buyers)])
    return a, bundles, bound


def cloud_cost(inst: MultiCcspInstance, bundles: np.ndarray, ccsp_of: np.ndarray) -> float:
    """``Σ_j α_{k(j)} c_j``: the CCSPs' asks on the cloud units they sell."""
    return sum(float(inst.ccsp_ask[int(k)] * bundles[j]) for j, k in enumerate(ccsp_of) if k != NO_TRADE)


def multi_utilization(inst: MultiCcspInstance, assignment: np.ndarray) -> float:
    """Served demand over ``Σ C_j + Σ Q_k``."""
    served = float(inst.demand[np.asarray(assignment) != NO_TRADE].sum())
    total_cap = float(inst.mesp_capacity.sum() + inst.ccsp_capacity.sum())
    return served / total_cap if total_cap > 0 else 0.0
