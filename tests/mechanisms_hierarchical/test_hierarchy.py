"""The two levels together: the joint optimum, the decomposition, IR, relabelling, the MESP budget."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    NO_TRADE,
    edge_only,
    fixed_bundles,
    joint_brute_force,
    joint_milp,
    make_instance,
    random_bundles,
    solve_hierarchical,
    solve_with_bundles,
)

from .strategies import instances

TOL = 1e-6


@settings(max_examples=25, deadline=None)
@given(instances())
def test_joint_milp_equals_joint_brute_force(inst):
    assert joint_milp(inst).welfare == pytest.approx(joint_brute_force(inst).welfare, abs=TOL)


@settings(max_examples=20, deadline=None)
@given(instances(separable=True))
def test_levels_separate_when_each_miner_reaches_one_mesp(inst):
    opt = joint_milp(inst).welfare
    for upper in ("dp", "milp"):
        out = solve_hierarchical(inst, upper, "exact")
        assert out.welfare == pytest.approx(opt, abs=TOL)


@settings(max_examples=20, deadline=None)
@given(instances())
def test_heuristics_never_beat_the_optimum_and_are_individually_rational(inst):
    for upper, lower in (("dp", "greedy"), ("greedy", "greedy"), ("greedy", "exact"), ("milp", "exact")):
        out = solve_hierarchical(inst, upper, lower)
        assert out.welfare <= out.optimum_welfare + TOL
        assert out.bundles.sum() <= inst.spare + TOL
        for i, j in enumerate(out.assignment):
            if j == NO_TRADE:
                assert out.miner_payments[i] == 0
            else:
                assert out.miner_payments[i] <= inst.bid[i] + TOL  # no served miner pays more than its bid
                assert out.miner_payments[i] >= inst.mesp_ask[j] * inst.demand[i] - TOL  # asks covered
        assert np.all(out.mesp_payments >= inst.ccsp_cost * out.bundles - TOL)  # the CCSP's cost covered
        served = np.bincount(out.assignment[out.assignment >= 0], weights=inst.demand[out.assignment >= 0],
                             minlength=inst.n_mesps)
        assert np.all(served <= inst.mesp_capacity + out.bundles + TOL)


@settings(max_examples=20, deadline=None)
@given(instances(separable=False), st.randoms(use_true_random=False))
def test_relabelling_miners_permutes_the_outcome(inst, rnd):
    density = inst.bid / np.sqrt(inst.demand)
    assume(len(set(np.round(density, 9))) == inst.n_miners)  # exact ties are broken by index, by design
    perm = list(range(inst.n_miners))
    rnd.shuffle(perm)
    p = np.array(perm)
    a = solve_hierarchical(inst, "dp", "greedy")
    b = solve_hierarchical(inst.relabel(p), "dp", "greedy")
    np.testing.assert_array_equal(b.assignment, a.assignment[p])
    np.testing.assert_allclose(b.miner_payments, a.miner_payments[p], atol=1e-9)
    np.testing.assert_allclose(b.bundles, a.bundles)
    assert b.optimum_welfare == pytest.approx(a.optimum_welfare, abs=TOL)


def test_mesp_margin_can_be_negative_with_surplus_bids():
    """The documented impossibility: two miners share MESP 0's bundle, the rival MESP values it at 60.

    VCG charges MESP 0 the 60 it displaces. Level by level, the miners meet no competition once the bundle is
    bought and pay their ask (0); in the joint mechanism each one's critical bid is 10 (the other one carries
    the bundle above 10), so MESP 0 collects 20 < 60: no truthful miner pricing covers the bundle.
    """
    inst = make_instance([5, 5, 10], [50.0, 50.0, 60.0], [0.0, 0.0], [0.0, 0.0], 10.0, 10.0,
                         reach=np.array([[1, 0], [1, 0], [0, 1]], bool))
    out = solve_hierarchical(inst, "dp", "exact")
    assert list(out.assignment) == [0, 0, NO_TRADE]
    assert out.mesp_payments[0] == pytest.approx(60.0)
    assert out.miner_payments.sum() == pytest.approx(0.0)
    assert out.mesp_margin[0] == pytest.approx(-60.0)
    joint = solve_hierarchical(inst, "milp", "exact")
    assert joint.miner_payments.sum() == pytest.approx(20.0)  # joint VCG: each miner's critical value is 10
    assert joint.mesp_margin[0] == pytest.approx(20.0 - 60.0)


def test_baselines():
    rng = np.random.default_rng(3)
    d = rng.integers(100, 1001, 20).astype(float)
    inst = make_instance(d, d * rng.uniform(0.5, 2, 20), [3000, 3000], [0.2, 0.3], 10000, 100)
    np.testing.assert_allclose(fixed_bundles(inst), [1000, 1000])
    rb = random_bundles(inst, rng)
    assert np.all((rb >= 0) & (rb <= 1000)) and np.all(rb % 100 == 0)
    eo = edge_only(inst)
    assert eo.bundles.sum() == 0
    dp = solve_hierarchical(inst, "dp", "greedy")
    fx = solve_with_bundles(inst, fixed_bundles(inst))
    assert dp.utilization >= eo.utilization - TOL
    assert fx.welfare <= dp.optimum_welfare + TOL
    with pytest.raises(MechanismError):
        solve_with_bundles(inst, np.array([5000.0, 0.0]))


def test_to_json_keys_and_types():
    inst = make_instance([3, 4], [6.0, 5.0], [3], [0.5], 10, 2)
    doc = solve_hierarchical(inst, "greedy", "greedy").to_json()
    for key in ("assignment", "bundles", "miner_payments", "mesp_payments", "welfare", "utilization",
                "optimum_welfare"):
        assert key in doc
    assert doc["assignment"] == [0, 0]
    assert doc["welfare"] == pytest.approx(11.0 - 0.5 * 7)


@pytest.mark.parametrize(
    "args",
    [
        ([1], [1.0, 2.0], [1], [0.0], 5, 1),
        ([1], [1.0], [10], [0.0], 5, 1),
        ([1], [1.0], [1], [0.0], 5, 0),
        ([0], [1.0], [1], [0.0], 5, 1),
        ([1], [1.0], [], [], 5, 1),
    ],
)
def test_bad_instances_raise(args):
    with pytest.raises(MechanismError):
        make_instance(*args)


def test_unknown_methods_raise():
    inst = make_instance([3], [6.0], [3], [0.5], 10, 2)
    with pytest.raises(MechanismError):
        solve_hierarchical(inst, "nope", "greedy")
    with pytest.raises(MechanismError):
        solve_hierarchical(inst, "dp", "nope")
