"""Several CCSPs: Lagrangian bound and repair, the joint MILP, agreement with the single-CCSP case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    NO_TRADE,
    brute_force_allocate,
    joint_milp,
    lagrangian_allocate,
    lagrangian_clear,
    make_instance,
    make_market,
    make_multi_instance,
    multi_joint_milp,
    solve_multi_ccsp,
)
from bazaar.mechanisms.hierarchical.market import check_feasible

TOL = 1e-6


@st.composite
def upper_markets(draw: st.DrawFn):
    m = draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    q = np.tile(np.arange(1, k + 1, dtype=float), (m, 1))
    v = np.array(draw(st.lists(st.lists(st.floats(0.0, 10.0), min_size=k, max_size=k), min_size=m,
                               max_size=m)))
    cap = np.array(draw(st.lists(st.integers(0, 4), min_size=s, max_size=s)), float)
    ask = np.array(draw(st.lists(st.floats(0.0, 2.0), min_size=s, max_size=s)))
    return make_market(q, v, cap, ask)


@settings(max_examples=40, deadline=None)
@given(upper_markets())
def test_lagrangian_bound_and_repair(m):
    res = lagrangian_allocate(m, max_iter=60)
    opt = brute_force_allocate(m).welfare
    check_feasible(m, res.allocation.seller, res.allocation.option)
    assert res.allocation.welfare <= opt + TOL  # a feasible allocation
    assert res.dual_bound >= opt - TOL  # weak duality
    assert res.duality_gap >= -TOL


@settings(max_examples=20, deadline=None)
@given(upper_markets())
def test_lagrangian_payments_are_individually_rational(m):
    a = lagrangian_clear(m, max_iter=40).allocation
    for b in range(m.n_buyers):
        if a.seller[b] != NO_TRADE:
            o, s = int(a.option[b]), int(a.seller[b])
            assert m.ask[s] * m.quantity[b, o] - TOL <= a.payment[b] <= m.value[b, o] + TOL


def _instance(n: int, seed: int):
    rng = np.random.default_rng(seed)
    d = rng.integers(1, 9, n).astype(float)
    return make_multi_instance(d, d * rng.uniform(0.3, 2.0, n), [4.0, 3.0], [0.2, 0.4], [6.0, 4.0, 8.0],
                               [0.1, 0.3, 0.05], 2.0)


@pytest.mark.parametrize("seed", range(3))
def test_heuristics_below_the_joint_optimum(seed):
    inst = _instance(7, seed)
    opt = multi_joint_milp(inst)[3]
    for upper in ("greedy", "lagrangian", "milp"):
        out = solve_multi_ccsp(inst, upper, "greedy", max_iter=50)
        assert out.welfare <= opt + TOL
        assert out.optimum_welfare == pytest.approx(opt)
        assert out.upper_welfare <= out.upper_optimum + TOL
        for j in range(len(out.bundles)):
            if out.ccsp_of[j] != NO_TRADE:
                assert out.bundles[j] > 0
        used = np.zeros(3)
        for j, k in enumerate(out.ccsp_of):
            if k != NO_TRADE:
                used[k] += out.bundles[j]
        assert np.all(used <= inst.ccsp_capacity + TOL)
    lag = solve_multi_ccsp(inst, "lagrangian", "greedy", max_iter=50)
    assert lag.upper_bound >= lag.upper_optimum - TOL


def test_one_ccsp_matches_the_single_ccsp_joint_milp():
    rng = np.random.default_rng(5)
    d = rng.integers(1, 9, 6).astype(float)
    v = d * rng.uniform(0.3, 2.0, 6)
    multi = make_multi_instance(d, v, [4.0, 3.0], [0.2, 0.4], [6.0], [0.25], 2.0)
    single = make_instance(d, v, [4.0, 3.0], [0.2, 0.4], 13.0, 2.0, 0.25)
    assert multi_joint_milp(multi)[3] == pytest.approx(joint_milp(single).welfare, abs=TOL)


def test_bad_multi_inputs_raise():
    with pytest.raises(MechanismError):
        make_multi_instance([1], [1.0], [1], [0.0], [1, 2], [0.0], 1.0)
    with pytest.raises(MechanismError):
        solve_multi_ccsp(_instance(3, 0), "nope")
    with pytest.raises(MechanismError):
        lagrangian_allocate(make_market([1.0], [1.0], [1.0], [0.0]), max_iter=0)
