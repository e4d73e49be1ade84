"""The joint optimum over both levels (one MILP) — the reference every heuristic is measured against.

Variables: ``x_ij ∈ {0,1}`` (miner ``i`` served by MESP ``j``; only admitted, reachable pairs whose bid covers
the ask) and ``y_j ∈ {0..K}`` (MESP ``j`` buys ``c_j = g·y_j``). Maximise
``Σ_ij (v_i − a_j d_i) x_ij − κ g Σ_j y_j`` s.t. ``Σ_i d_i x_ij ≤ C_j + g y_j``, ``Σ_j y_j ≤ K``,
``Σ_j x_ij ≤ 1`` with ``K = ⌊C_up/g⌋``.

VCG in the joint mechanism: miner ``i`` pays ``max(base·d_i, W*_{−i} − W* + v_i)``; MESP ``j`` pays the CCSP
``W*(c_j = 0) − W* + β_j`` with ``β_j = S(C + c*) − S(C + c* − c_j e_j)`` the lower-level surplus its bundle
adds (its bundle bid in the separable case), which lies in ``[κ c_j, β_j]``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .exact import brute_force_allocate, milp_allocate
from .instance import HierarchicalInstance, hierarchical_welfare
from .market import NO_TRADE


@dataclass
class JointSolution:
    """An optimum of the joint problem.

    Attributes:
        assignment: ``(N,)`` MESP per miner or −1.
        bundles: ``(M,)`` cloud units per MESP.
        welfare: its welfare.
        bound: an upper bound on the optimum (equal to ``welfare`` when proven optimal).
        proven: whether HiGHS proved optimality (``False`` only when a time limit stopped it).
    """

    assignment: np.ndarray
    bundles: np.ndarray
    welfare: float
    bound: float = float("nan")
    proven: bool = True


def joint_milp(
    inst: HierarchicalInstance,
    exclude_miner: int | None = None,
    no_bundle_for: int | None = None,
    time_limit: float | None = None,
) -> JointSolution:
    """Solve the joint MILP (HiGHS).

    Args:
        inst: the instance.
        exclude_miner: drop this miner (for VCG).
        no_bundle_for: force this MESP's bundle to zero (for VCG).
        time_limit: seconds for HiGHS; when it stops early the best allocation found is returned with
            ``proven = False`` and HiGHS's bound. ``None``: solve to optimality.

    Raises:
        MechanismError: HiGHS fails.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp  # loaded only when a MILP is solved (docs/adr/0121)
    from scipy.sparse import coo_matrix

    n, mm, k = inst.n_miners, inst.n_mesps, inst.n_steps
    g = inst.bundle_step
    lm = inst.lower_market()
    adm = lm.admitted()
    pairs = [(i, j) for i in range(n) if adm[i, 0] and i != exclude_miner
             for j in range(mm) if lm.trade_ok(i, 0, j)]
    nx = len(pairs)
    nv = nx + mm
    c = np.zeros(nv)
    for t, (i, j) in enumerate(pairs):
        c[t] = -(inst.bid[i] - inst.mesp_ask[j] * inst.demand[i])
    c[nx:] = inst.ccsp_cost * g
    rows, cols, vals = [], [], []
    for t, (i, j) in enumerate(pairs):
        rows += [j, mm + i]
        cols += [t, t]
        vals += [float(inst.demand[i]), 1.0]
    for j in range(mm):
        rows += [j, mm + n]
        cols += [nx + j, nx + j]
        vals += [-g, 1.0]
    a = coo_matrix((vals, (rows, cols)), shape=(mm + n + 1, nv)).tocsr()
    ub = np.concatenate([inst.mesp_capacity, np.ones(n), [k]])
    hi = np.concatenate([np.ones(nx), np.full(mm, float(k))])
    if no_bundle_for is not None:
        hi[nx + no_bundle_for] = 0.0
    options: dict[str, float | bool] = {"mip_rel_gap": 1e-9, "presolve": False}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(c, constraints=LinearConstraint(a, -np.inf, ub), integrality=np.ones(nv),
               bounds=Bounds(np.zeros(nv), hi), options=options)
    if res.x is None:
        raise MechanismError(f"joint MILP failed: {res.message}")
    assignment = np.full(n, NO_TRADE, dtype=int)
    for t, (i, j) in enumerate(pairs):
        if res.x[t] > 0.5:
            assignment[i] = j
    bundles = g * np.round(res.x[nx:])
    # Bundles the assignment does not need are pure cost; the MILP drops them when κ > 0, and we drop them
    # when κ = 0 so that the outcome is canonical.
    for j in range(mm):
        need = float(inst.demand[assignment == j].sum()) - inst.mesp_capacity[j]
        bundles[j] = min(bundles[j], max(0.0, np.ceil(need / g - 1e-9) * g))
    w = hierarchical_welfare(inst, assignment, bundles)
    proven = bool(res.status == 0)
    bound = w if proven else max(w, -float(getattr(res, "mip_dual_bound", -w) or -w))
    return JointSolution(assignment, bundles, w, bound, proven)


def joint_brute_force(inst: HierarchicalInstance) -> JointSolution:
    """Joint optimum by enumerating every bundle vector on the grid and brute-forcing the lower level."""
    k = inst.n_steps
    best: JointSolution | None = None
    for ys in itertools.product(range(k + 1), repeat=inst.n_mesps):
        if sum(ys) > k:
            continue
        bundles = inst.bundle_step * np.array(ys, dtype=float)
        low = brute_force_allocate(inst.lower_market(bundles))
        w = low.welfare - inst.ccsp_cost * float(bundles.sum())
        if best is None or w > best.welfare + 1e-9:
            best = JointSolution(low.seller.copy(), bundles, w)
    if best is None:
        raise MechanismError("no bundle vector")
    return best


def joint_vcg(inst: HierarchicalInstance, sol: JointSolution) -> tuple[np.ndarray, np.ndarray]:
    """VCG payments of the joint mechanism: (miners → MESPs, MESPs → CCSP)."""
    n, mm = inst.n_miners, inst.n_mesps
    pay = np.zeros(n)
    for i in range(n):
        if sol.assignment[i] != NO_TRADE:
            v = float(inst.bid[i])
            p = joint_milp(inst, exclude_miner=i).welfare - sol.welfare + v
            pay[i] = min(max(inst.base_price * float(inst.demand[i]), p), v)
    mesp_pay = np.zeros(mm)
    s_all = milp_allocate(inst.lower_market(sol.bundles)).welfare
    for j in range(mm):
        if sol.bundles[j] <= 0:
            continue
        reduced = sol.bundles.copy()
        reduced[j] = 0.0
        beta = s_all - milp_allocate(inst.lower_market(reduced)).welfare
        p = joint_milp(inst, no_bundle_for=j).welfare - sol.welfare + beta
        mesp_pay[j] = min(max(inst.ccsp_cost * float(sol.bundles[j]), p), beta)
    return pay, mesp_pay
