"""Exact winner determination: scipy's MILP (HiGHS), a brute-force reference, and VCG payments.

VCG: a winner pays the externality it imposes, ``W*_{−b} − (W* − v_b)`` — the others' (buyers' and sellers')
optimal welfare without it minus their welfare with it (the sellers' asks are costs borne by the sellers) — and
at least ``base_price·q``. Since removing a winner keeps the rest feasible, the VCG payment is at least the ask of
the seller it trades with, and at most its bid.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from bazaar.mechanisms.errors import MechanismError

from .market import NO_TRADE, Allocation, Market, fits, welfare_of

BRUTE_FORCE_LIMIT = 2_000_000


def _triples(m: Market) -> list[tuple[int, int, int]]:
    adm = m.admitted()
    return [
        (b, o, s)
        for b in range(m.n_buyers)
        for o in range(m.n_options)
        if adm[b, o]
        for s in range(m.n_sellers)
        if m.trade_ok(b, o, s)
    ]


def milp_allocate(m: Market, time_limit: float | None = None) -> Allocation:
    """Optimal allocation through ``scipy.optimize.milp`` (HiGHS, relative gap 1e-9).

    With ``time_limit`` (seconds) HiGHS may stop early; the best allocation found is returned with
    ``proven = False``. Lower levels of 100+ miners on the paper's instance are such cases: the incumbent is
    found at once, the proof of optimality takes minutes (see the benchmark).

    Raises:
        MechanismError: HiGHS reports a failure.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp  # loaded only when a MILP is solved (docs/adr/0121)
    from scipy.sparse import coo_matrix

    trip = _triples(m)
    seller = np.full(m.n_buyers, NO_TRADE, dtype=int)
    option = np.full(m.n_buyers, NO_TRADE, dtype=int)
    if not trip:
        return Allocation(seller, option, np.zeros(m.n_buyers), 0.0, "milp")
    n = len(trip)
    c = np.array([-(m.value[b, o] - m.ask[s] * m.quantity[b, o]) for b, o, s in trip])
    rows, cols, vals = [], [], []
    for k, (b, o, s) in enumerate(trip):
        rows += [b, m.n_buyers + s]
        cols += [k, k]
        vals += [1.0, float(m.quantity[b, o])]
    a = coo_matrix((vals, (rows, cols)), shape=(m.n_buyers + m.n_sellers, n)).tocsr()
    ub = np.concatenate([np.ones(m.n_buyers), m.capacity.astype(float)])
    options: dict[str, float | bool] = {"mip_rel_gap": 1e-9, "presolve": False}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    res = milp(c, constraints=LinearConstraint(a, -np.inf, ub), integrality=np.ones(n), bounds=Bounds(0, 1),
               options=options)
    if res.x is None:
        raise MechanismError(f"MILP failed: {res.message}")
    for k, (b, o, s) in enumerate(trip):
        if res.x[k] > 0.5:
            seller[b], option[b] = s, o
    return Allocation(seller, option, np.zeros(m.n_buyers), welfare_of(m, seller, option), "milp",
                      proven=bool(res.status == 0))


def brute_force_allocate(m: Market) -> Allocation:
    """Optimal allocation by enumerating every buyer's choice (the slow reference; small instances only).

    Ties are broken towards the first allocation found in lexicographic order (buyer 0 first, "no trade"
    first).

    Raises:
        MechanismError: more than ``BRUTE_FORCE_LIMIT`` combinations.
    """
    choices: list[list[tuple[int, int]]] = []
    for b in range(m.n_buyers):
        opts = [(NO_TRADE, NO_TRADE)]
        opts += [(s, o) for o in range(m.n_options) for s in range(m.n_sellers)
                 if m.admitted()[b, o] and m.trade_ok(b, o, s)]
        choices.append(opts)
    if math.prod(len(c) for c in choices) > BRUTE_FORCE_LIMIT:
        raise MechanismError("instance too large for brute force")
    best_w = -math.inf
    best: tuple[tuple[int, int], ...] = tuple((NO_TRADE, NO_TRADE) for _ in range(m.n_buyers))
    for combo in itertools.product(*choices):
        used = np.zeros(m.n_sellers)
        w = 0.0
        for b, (s, o) in enumerate(combo):
            if s != NO_TRADE:
                used[s] += m.quantity[b, o]
                w += float(m.value[b, o] - m.ask[s] * m.quantity[b, o])
        if all(fits(float(m.capacity[s]), float(used[s])) for s in range(m.n_sellers)) and w > best_w + 1e-12:
            best_w, best = w, combo
    seller = np.array([s for s, _ in best], dtype=int)
    option = np.array([o for _, o in best], dtype=int)
    return Allocation(seller, option, np.zeros(m.n_buyers), welfare_of(m, seller, option), "brute")


def vcg_payments(m: Market, alloc: Allocation, solver: str = "milp") -> np.ndarray:
    """VCG payments ``max(base·q, W*_{−b} − W* + v_b)`` for the winners of an optimal allocation.

    Args:
        m: the market.
        alloc: an optimal allocation of ``m``.
        solver: ``"milp"`` or ``"brute"``, used for the optima without each winner.
    """
    solve = milp_allocate if solver == "milp" else brute_force_allocate
    pay = np.zeros(m.n_buyers)
    for b in range(m.n_buyers):
        if alloc.seller[b] == NO_TRADE:
            continue
        o = int(alloc.option[b])
        v = float(m.value[b, o])
        w_minus = solve(m.without_buyer(b)).welfare
        p = w_minus - alloc.welfare + v
        pay[b] = min(max(m.base_price * float(m.quantity[b, o]), p), v)
    return pay


def exact_clear(m: Market, solver: str = "milp") -> Allocation:
    """Optimal allocation (MILP or brute force) with VCG payments.

    Raises:
        MechanismError: unknown solver.
    """
    if solver not in ("milp", "brute"):
        raise MechanismError(f"unknown exact solver {solver!r}")
    alloc = milp_allocate(m) if solver == "milp" else brute_force_allocate(m)
    alloc.payment = vcg_payments(m, alloc, solver)
    return alloc
