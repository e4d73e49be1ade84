"""The per-participant pieces (network.py): each equals its part of the offline solver, bad input is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    DECOMPOSABLE,
    NO_TRADE,
    BundleBids,
    MinerPopulation,
    bundle_bids,
    clear_lower,
    clear_lower_on,
    clear_multi_upper_from_rows,
    clear_upper,
    clear_upper_from_rows,
    decomposable,
    lottery_weights,
    make_instance,
    make_multi_instance,
    mesp_bundle_bids,
    multi_mesp_bundle_bids,
    solve_hierarchical,
    solve_multi_ccsp,
    success_probability,
)
from bazaar.mechanisms.hierarchical.multi_ccsp import cloud_cost

from .strategies import instances


@settings(max_examples=60, deadline=None)
@given(instances(max_miners=5, max_mesps=3), st.sampled_from([("greedy", "ask"), ("greedy", "ask_density"),
                                                              ("exact", "ask")]))
def test_a_mesp_row_is_its_row_of_bundle_bids(inst, lower_order):
    lower, order = lower_order
    full = bundle_bids(inst, lower, order).values
    for j in range(inst.n_mesps):
        row = mesp_bundle_bids(inst, j, lower, order)
        assert row.shape == (inst.n_steps,)
        assert np.array_equal(row, full[j])


@settings(max_examples=60, deadline=None)
@given(instances(max_miners=5, max_mesps=3), st.sampled_from(["dp", "greedy", "milp"]),
       st.sampled_from(["greedy", "exact"]), st.floats(-50.0, 50.0))
def test_clearing_from_rows_equals_clear_upper_whatever_the_base_surplus(inst, upper, lower, base):
    bids = bundle_bids(inst, lower)
    rows = [mesp_bundle_bids(inst, j, lower) for j in range(inst.n_mesps)]
    got = clear_upper_from_rows(rows, inst.bundle_step, inst.spare, inst.ccsp_cost, upper)
    for b in (bids.base_surplus, base):
        want = clear_upper(BundleBids(bids.step, np.vstack(rows) if rows else bids.values, b), inst.spare,
                           inst.ccsp_cost, upper)
        assert np.array_equal(got.bundles, want.bundles)
        assert np.array_equal(got.payments, want.payments)
        assert got.welfare == want.welfare


@settings(max_examples=60, deadline=None)
@given(instances(max_miners=5, max_mesps=3), st.sampled_from(sorted(DECOMPOSABLE)))
def test_the_roles_together_reproduce_the_offline_solver(inst, pair):
    upper, lower = pair
    offline = solve_hierarchical(inst, upper, lower, reference=False)
    rows = [mesp_bundle_bids(inst, j, lower) for j in range(inst.n_mesps)]  # each MESP
    up = clear_upper_from_rows(rows, inst.bundle_step, inst.spare, inst.ccsp_cost, upper)  # the CCSP
    low = clear_lower_on(inst, up.bundles, lower)  # each MESP on its awarded capacity
    assert np.array_equal(low.assignment, offline.assignment)
    assert np.array_equal(up.bundles, offline.bundles)
    assert np.array_equal(low.payments, offline.miner_payments)
    assert np.array_equal(up.payments, offline.mesp_payments)
    assert offline.upper_welfare == up.welfare


def test_clear_lower_on_is_clear_lower_on_the_grown_capacities():
    inst = make_instance([3, 4, 5], [6, 5, 9], [4, 3], [0.5, 0.2], 12, 1)
    a = clear_lower_on(inst, [2, 3], "greedy")
    b = clear_lower(inst.lower_market(np.array([2.0, 3.0])), "greedy")
    assert np.array_equal(a.assignment, b.assignment) and np.array_equal(a.payments, b.payments)
    assert np.array_equal(clear_lower_on(inst, None).assignment, clear_lower(inst.lower_market()).assignment)
    for bad in ([1.0], [1.0, -1.0], [1.0, math.nan]):
        with pytest.raises(MechanismError):
            clear_lower_on(inst, bad)


def test_rows_are_checked():
    good = [np.array([1.0, 2.0]), np.array([0.5, 0.7])]
    assert clear_upper_from_rows(good, 10.0, 20.0).bundles.tolist() == [20.0, 0.0]
    for rows in ([np.array([1.0])], [np.array([1.0, 2.0, 3.0])], [np.array([[1.0, 2.0]]).T],
                 [np.array([1.0, math.nan])], [np.array([math.inf, 1.0])]):
        with pytest.raises(MechanismError):
            clear_upper_from_rows(rows, 10.0, 20.0)
    with pytest.raises(MechanismError, match="upper method"):
        clear_upper_from_rows(good, 10.0, 20.0, method="magic")
    for step, spare, cost in ((0.0, 20.0, 0.0), (math.nan, 20.0, 0.0), (10.0, math.inf, 0.0), (10.0, 20.0, -1.0)):
        with pytest.raises(MechanismError):
            clear_upper_from_rows(good, step, spare, cost)
    # K = floor(spare/step + 1e-9): 29.9999999999/10 rounds to 2 steps
    assert clear_upper_from_rows([np.array([1.0, 2.0])], 10.0, 20.0 - 1e-12).bundles.tolist() == [20.0]
    assert clear_upper_from_rows([np.zeros(0)], 10.0, 0.0).bundles.tolist() == [0.0]


def test_negative_bids_are_cleared_as_the_offline_solver_clears_them():
    # The greedy lower surplus can fall when a MESP's capacity grows, so the offline rows hold negative bids
    # (paper file: b_0(250) < 0); refusing them would make the network differ from the offline solver.
    out = clear_upper_from_rows([np.array([-0.5, 3.0]), np.array([1.0, 1.5])], 1.0, 2.0, method="dp")
    want = clear_upper(BundleBids(1.0, np.array([[-0.5, 3.0], [1.0, 1.5]]), 0.0), 2.0, 0.0, "dp")
    assert np.array_equal(out.bundles, want.bundles) and out.bundles.tolist() == [2.0, 0.0]


def test_mesp_index_and_method_are_checked():
    inst = make_instance([3, 4], [6, 5], [4, 3], [0.5, 0.2], 10, 1)
    for j in (-1, 2):
        with pytest.raises(MechanismError, match="MESP index"):
            mesp_bundle_bids(inst, j)
    with pytest.raises(MechanismError, match="lower method"):
        mesp_bundle_bids(inst, 0, "milp")
    with pytest.raises(MechanismError, match="seller order"):
        mesp_bundle_bids(inst, 0, "greedy", "random")


def test_decomposable_pairs():
    assert {(u, lo) for u in ("dp", "greedy", "milp") for lo in ("greedy", "exact")} - {("milp", "exact")} == set(
        DECOMPOSABLE)
    assert decomposable("dp", "greedy") and not decomposable("milp", "exact") and not decomposable("brute", "brute")


@st.composite
def multi_instances(draw: st.DrawFn):
    n = draw(st.integers(1, 5))
    m = draw(st.integers(1, 3))
    kk = draw(st.integers(1, 3))
    d = np.array(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)), float)
    per_unit = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n)))
    cap = np.array(draw(st.lists(st.integers(0, 8), min_size=m, max_size=m)), float)
    ask = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m)))
    step = float(draw(st.sampled_from([2, 3])))
    q = step * np.array(draw(st.lists(st.integers(0, 3), min_size=kk, max_size=kk)), float)
    alpha = np.array(draw(st.lists(st.floats(0.0, 0.5), min_size=kk, max_size=kk)))
    return make_multi_instance(d, d * per_unit, cap, ask, q, alpha, step)


@settings(max_examples=40, deadline=None)
@given(multi_instances(), st.sampled_from(["lagrangian", "greedy", "milp"]), st.sampled_from(["greedy", "exact"]))
def test_the_roles_together_reproduce_the_multi_ccsp_solver(inst, upper, lower):
    offline = solve_multi_ccsp(inst, upper, lower, reference=False)
    full = bundle_bids(inst.single(), lower).values
    rows = [multi_mesp_bundle_bids(inst, j, lower) for j in range(inst.mesp_capacity.size)]
    for j, row in enumerate(rows):
        assert np.array_equal(row, full[j])
    bundles, ccsp_of, pay, up_welfare, bound = clear_multi_upper_from_rows(inst, rows, upper)
    low = clear_lower_on(inst.single(), bundles, lower)
    assert np.array_equal(bundles, offline.bundles) and np.array_equal(ccsp_of, offline.ccsp_of)
    assert np.array_equal(pay, offline.mesp_payments) and up_welfare == offline.upper_welfare
    assert np.array_equal(low.assignment, offline.assignment)
    assert np.array_equal(low.payments, offline.miner_payments)
    assert low.surplus - cloud_cost(inst, bundles, ccsp_of) == offline.welfare
    if upper == "lagrangian":
        assert bound == offline.upper_bound and bound >= up_welfare - 1e-9
    else:
        assert bound is None and math.isnan(offline.upper_bound)


def test_multi_rows_are_checked():
    inst = make_multi_instance([3, 4], [6, 5], [4, 3], [0.5, 0.2], [2, 4], [0.1, 0.2], 1)
    rows = [multi_mesp_bundle_bids(inst, j) for j in range(2)]
    assert rows[0].shape == (4,)
    with pytest.raises(MechanismError, match="rows for 2 MESPs"):
        clear_multi_upper_from_rows(inst, rows[:1])
    with pytest.raises(MechanismError):
        clear_multi_upper_from_rows(inst, [rows[0][:3], rows[1]])
    with pytest.raises(MechanismError, match="upper method"):
        clear_multi_upper_from_rows(inst, rows, "dp")


def test_lottery_weights_follow_the_success_probabilities():
    d = np.array([300.0, 500.0, 800.0, 200.0])
    s = np.array([100.0, 900.0, 400.0, 50.0])
    served = np.array([True, True, False, True])
    w = lottery_weights(d, served, s, 1 / 600, 0.1)
    assert all(type(x) is int for x in w)
    p = success_probability(MinerPopulation(d, s, 0.0, 0.0, 1 / 600, 0.1), served)
    assert w == [round(10**6 * float(x)) if x > 0 else 0 for x in p]
    assert w[2] == 0 and all(x > 0 for x, on in zip(w, served, strict=True) if on)
    assert w == lottery_weights(list(d), list(served), list(s), 1 / 600, 0.1)  # deterministic, lists accepted
    assert lottery_weights(d, np.zeros(4, bool), s, 1 / 600, 0.1) == [0, 0, 0, 0]
    assert lottery_weights([], [], [], 1 / 600, 0.1) == []
    # a served miner with a tiny probability keeps a ticket
    assert lottery_weights([1.0, 1e9], [True, True], [0.0, 0.0], 0.0, 0.0, scale=10) == [1, 10]


def test_lottery_weights_refuse_bad_input():
    for args in (([1.0, 2.0], [True], [1.0, 1.0], 0.1, 0.1), ([0.0], [True], [1.0], 0.1, 0.1),
                 ([1.0], [True], [-1.0], 0.1, 0.1), ([1.0], [True], [1.0], -0.1, 0.1),
                 ([1.0], [True], [1.0], 0.1, math.nan)):
        with pytest.raises(MechanismError):
            lottery_weights(*args)
    with pytest.raises(MechanismError, match="scale"):
        lottery_weights([1.0], [True], [1.0], 0.1, 0.1, scale=0)


def test_served_mask_marks_no_trade_consistently():
    inst = make_instance([3, 4, 5], [6, 0.1, 9], [4, 3], [0.5, 0.2], 12, 1)
    out = solve_hierarchical(inst, reference=False)
    mask = out.assignment != NO_TRADE
    w = lottery_weights(inst.demand, mask, [1.0, 1.0, 1.0], 1 / 600, 0.1)
    assert [x > 0 for x in w] == list(mask)
