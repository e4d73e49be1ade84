"""Upper level: DP (Algorithm 2) = MILP = brute force; greedy (Algorithm 3) bounds and critical payments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    NO_TRADE,
    BundleBids,
    brute_force_allocate,
    clear_upper,
    critical_bid_bisection,
    dp_allocate,
    dp_clear,
    greedy_allocate,
    greedy_clear,
    milp_allocate,
    upper_market,
)

TOL = 1e-6


@st.composite
def bids(draw: st.DrawFn) -> tuple[BundleBids, float, float]:
    m = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    step = float(draw(st.sampled_from([1, 5, 10])))
    vals = np.array(draw(st.lists(st.lists(st.floats(-2.0, 30.0), min_size=k, max_size=k), min_size=m,
                                  max_size=m)))
    spare = step * draw(st.integers(0, 2 * k))
    kappa = draw(st.sampled_from([0.0, 0.1]))
    return BundleBids(step, vals, 0.0), spare, kappa


@settings(max_examples=50, deadline=None)
@given(bids())
def test_dp_equals_milp_equals_brute_force(case):
    b, spare, kappa = case
    m = upper_market(b, spare, kappa)
    dp, mi, br = dp_allocate(m, b.step), milp_allocate(m), brute_force_allocate(m)
    assert dp.welfare == pytest.approx(br.welfare, abs=TOL)
    assert mi.welfare == pytest.approx(br.welfare, abs=TOL)
    assert greedy_allocate(m).welfare <= br.welfare + TOL


@settings(max_examples=30, deadline=None)
@given(bids())
def test_upper_payments_are_individually_rational(case):
    b, spare, kappa = case
    for method in ("dp", "greedy", "milp"):
        out = clear_upper(b, spare, kappa, method)
        assert out.bundles.sum() <= spare + TOL
        for j in range(b.values.shape[0]):
            if out.bundles[j] > 0:
                k = round(out.bundles[j] / b.step)
                assert out.payments[j] <= b.values[j, k - 1] + TOL
                assert out.payments[j] >= kappa * out.bundles[j] - TOL
            else:
                assert out.payments[j] == 0


@settings(max_examples=30, deadline=None)
@given(bids())
def test_greedy_upper_payment_is_critical_bid(case):
    b, spare, kappa = case
    m = upper_market(b, spare, kappa)
    a = greedy_clear(m)
    for j in range(m.n_buyers):
        if a.seller[j] != NO_TRADE:
            crit = critical_bid_bisection(m, j, int(a.option[j]), tol=1e-10)
            assert a.payment[j] == pytest.approx(crit, rel=1e-6, abs=1e-7)


def test_dp_vcg_on_a_hand_example():
    # one unit of spare in steps of 10: MESP 0 values 10 units at 7, MESP 1 at 5 -> 0 wins and pays 5.
    b = BundleBids(10.0, np.array([[7.0], [5.0]]), 0.0)
    out = dp_clear(upper_market(b, 10.0, 0.0), 10.0)
    assert list(out.seller) == [0, NO_TRADE]
    assert out.payment[0] == pytest.approx(5.0)


def test_dp_rejects_off_grid_quantities_and_several_sellers():
    b = BundleBids(10.0, np.array([[7.0]]), 0.0)
    m = upper_market(b, 10.0, 0.0)
    with pytest.raises(MechanismError):
        dp_allocate(m, 3.0)
    with pytest.raises(MechanismError):
        clear_upper(b, 10.0, 0.0, "nope")
