"""A single-CCSP hierarchical market: miners, MESPs and one CCSP (docs/models/hierarchical.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .market import NO_TRADE, Market, make_market


@dataclass(frozen=True)
class HierarchicalInstance:
    """Bids and asks of one round.

    Attributes:
        demand: ``(N,)`` units ``d_i`` each miner requests.
        bid: ``(N,)`` each miner's bid ``v_i`` for its whole demand.
        mesp_capacity: ``(M,)`` own capacity ``C_j`` of each MESP.
        mesp_ask: ``(M,)`` per-unit ask ``a_j`` of each MESP.
        ccsp_capacity: the CCSP's total capacity ``C``; the spare ``C − Σ C_j`` is auctioned.
        bundle_step: grid step ``g`` of the bundles MESPs bid for.
        ccsp_cost: the CCSP's cost ``κ`` per cloud unit sold (its reserve in the upper level).
        base_price: per-unit floor on miners' bids; lower bids are not admitted.
        reach: ``(N, M)`` which MESPs each miner can reach (all, by default).
    """

    demand: np.ndarray
    bid: np.ndarray
    mesp_capacity: np.ndarray
    mesp_ask: np.ndarray
    ccsp_capacity: float
    bundle_step: float
    ccsp_cost: float = 0.0
    base_price: float = 0.0
    reach: np.ndarray | None = None

    @property
    def n_miners(self) -> int:
        """Number of miners ``N``."""
        return int(self.demand.size)

    @property
    def n_mesps(self) -> int:
        """Number of MESPs ``M``."""
        return int(self.mesp_capacity.size)

    @property
    def spare(self) -> float:
        """Cloud capacity ``C_up = C − Σ C_j`` the upper level sells."""
        return float(self.ccsp_capacity - self.mesp_capacity.sum())

    @property
    def n_steps(self) -> int:
        """Largest bundle, in steps: ``⌊C_up / g⌋``."""
        return math.floor(self.spare / self.bundle_step + 1e-9)

    @property
    def reach_matrix(self) -> np.ndarray:
        """``(N, M)`` reachability (all-True when ``reach`` is ``None``)."""
        if self.reach is None:
            return np.ones((self.n_miners, self.n_mesps), dtype=bool)
        return self.reach

    def lower_market(self, bundles: np.ndarray | None = None) -> Market:
        """The lower-level market with MESP capacities ``C_j + c_j``."""
        extra = np.zeros(self.n_mesps) if bundles is None else np.asarray(bundles, float)
        return make_market(self.demand, self.bid, self.mesp_capacity + extra, self.mesp_ask,
                           self.reach_matrix, self.base_price)

    def separable(self) -> bool:
        """Whether every miner reaches at most one MESP (then the two levels separate exactly)."""
        return bool(np.all(self.reach_matrix.sum(axis=1) <= 1))

    def relabel(self, miner_perm: np.ndarray, mesp_perm: np.ndarray | None = None) -> HierarchicalInstance:
        """The same market with miners (and MESPs) listed in another order: new ``i`` is old ``perm[i]``."""
        mp = np.arange(self.n_mesps) if mesp_perm is None else np.asarray(mesp_perm)
        mperm = np.asarray(miner_perm)
        return HierarchicalInstance(self.demand[mperm], self.bid[mperm], self.mesp_capacity[mp],
                                    self.mesp_ask[mp], self.ccsp_capacity, self.bundle_step, self.ccsp_cost,
                                    self.base_price, self.reach_matrix[np.ix_(mperm, mp)])


def make_instance(
    demand: np.ndarray | list[float],
    bid: np.ndarray | list[float],
    mesp_capacity: np.ndarray | list[float],
    mesp_ask: np.ndarray | list[float],
    ccsp_capacity: float,
    bundle_step: float,
    ccsp_cost: float = 0.0,
    base_price: float = 0.0,
    reach: np.ndarray | None = None,
) -> HierarchicalInstance:
    """Build and validate a :class:`HierarchicalInstance`.

    Raises:
        MechanismError: sizes disagree, a value is negative or not finite, no MESP, demands not positive,
            the MESPs own more than the CCSP's capacity, or the bundle step is not positive.
    """
    d = np.asarray(demand, float).reshape(-1)
    v = np.asarray(bid, float).reshape(-1)
    cap = np.asarray(mesp_capacity, float).reshape(-1)
    ask = np.asarray(mesp_ask, float).reshape(-1)
    if d.size != v.size:
        raise MechanismError(f"miner_demand has {d.size} entries but miner_bid has {v.size}")
    if cap.size == 0:
        raise MechanismError("at least one MESP is needed")
    if cap.size != ask.size:
        raise MechanismError(f"mesp_capacity has {cap.size} entries but mesp_ask has {ask.size}")
    for name, arr in (("miner_demand", d), ("miner_bid", v), ("mesp_capacity", cap), ("mesp_ask", ask)):
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise MechanismError(f"{name} must be finite and non-negative")
    if np.any(d <= 0):
        raise MechanismError("every miner_demand must be positive")
    for name, x in (("ccsp_capacity", ccsp_capacity), ("ccsp_cost", ccsp_cost), ("base_price", base_price)):
        if not (math.isfinite(x) and x >= 0):
            raise MechanismError(f"{name} must be finite and non-negative, got {x}")
    if not (math.isfinite(bundle_step) and bundle_step > 0):
        raise MechanismError(f"bundle_step must be positive, got {bundle_step}")
    if ccsp_capacity < cap.sum() - 1e-9 * max(1.0, cap.sum()):
        raise MechanismError(f"the MESPs own {cap.sum()} units, more than the CCSP's capacity {ccsp_capacity}")
    r = None
    if reach is not None:
        r = np.asarray(reach, dtype=bool)
        if r.shape != (d.size, cap.size):
            raise MechanismError(f"reach must have shape {(d.size, cap.size)}, got {r.shape}")
    return HierarchicalInstance(d, v, cap, ask, float(ccsp_capacity), float(bundle_step), float(ccsp_cost),
                                float(base_price), r)


def reach_from_home(home: list[int] | np.ndarray, n_mesps: int) -> np.ndarray:
    """Reachability from a "home MESP" list: ``home[i] = j`` restricts miner ``i`` to MESP ``j``, −1 = any.

    Raises:
        MechanismError: an index outside ``[-1, n_mesps)``.
    """
    h = np.asarray(home, dtype=int).reshape(-1)
    if np.any(h < -1) or np.any(h >= n_mesps):
        raise MechanismError(f"home MESP indices must lie in [-1, {n_mesps})")
    r = np.ones((h.size, n_mesps), dtype=bool)
    for i, j in enumerate(h):
        if j != NO_TRADE:
            r[i] = False
            r[i, j] = True
    return r


def hierarchical_welfare(inst: HierarchicalInstance, assignment: np.ndarray, bundles: np.ndarray) -> float:
    """``Σ_ij (v_i − a_j d_i) x_ij − κ Σ_j c_j`` of an assignment (MESP index or −1 per miner)."""
    w = 0.0
    for i, j in enumerate(np.asarray(assignment, int)):
        if j != NO_TRADE:
            w += float(inst.bid[i] - inst.mesp_ask[j] * inst.demand[i])
    return w - inst.ccsp_cost * float(np.sum(bundles))


def utilization(inst: HierarchicalInstance, assignment: np.ndarray) -> float:
    """Served demand over the whole capacity ``C`` of the system (MESPs' own plus the CCSP's spare)."""
    a = np.asarray(assignment, int)
    return float(inst.demand[a != NO_TRADE].sum() / inst.ccsp_capacity) if inst.ccsp_capacity > 0 else 0.0
