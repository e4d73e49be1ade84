"""Lower level (and the generic WDP): exact = brute force, greedy bounds, monotonicity, critical payments, IR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    NO_TRADE,
    brute_force_allocate,
    clear_lower,
    critical_bid_bisection,
    exact_clear,
    greedy_allocate,
    greedy_clear,
    make_market,
    milp_allocate,
)
from bazaar.mechanisms.hierarchical.market import check_feasible

from .strategies import lower_markets

TOL = 1e-6


@settings(max_examples=40, deadline=None)
@given(lower_markets())
def test_milp_equals_brute_force_and_greedy_never_above(m):
    exact = milp_allocate(m)
    brute = brute_force_allocate(m)
    greedy = greedy_allocate(m)
    for a in (exact, brute, greedy):
        check_feasible(m, a.seller, a.option)
    assert exact.welfare == pytest.approx(brute.welfare, abs=TOL)
    assert greedy.welfare <= brute.welfare + TOL


@settings(max_examples=30, deadline=None)
@given(lower_markets(), st.data())
def test_greedy_monotone_and_payment_is_critical_bid(m, data):
    a = greedy_clear(m)
    for b in range(m.n_buyers):
        if a.seller[b] == NO_TRADE:
            continue
        v = float(m.value[b, 0])
        assert a.payment[b] <= v + TOL  # individual rationality
        assert a.payment[b] >= m.base_price * m.quantity[b, 0] - TOL
        assert a.payment[b] >= m.ask[a.seller[b]] * m.quantity[b, 0] - TOL  # the MESP's ask is covered
        crit = critical_bid_bisection(m, b, 0, tol=1e-10)
        assert a.payment[b] == pytest.approx(max(crit, m.base_price * m.quantity[b, 0]), rel=1e-6, abs=1e-7)
        higher = v * data.draw(st.floats(1.0, 3.0))
        assert greedy_allocate(m.with_value(b, 0, higher)).seller[b] != NO_TRADE  # monotone
        below = a.payment[b] * (1 - 1e-4) - 1e-8  # beyond the 1e-9 absolute tolerance of an ask check
        if a.payment[b] > TOL and below > 0:
            lower = greedy_allocate(m.with_value(b, 0, below))
            assert lower.seller[b] == NO_TRADE  # below the critical bid it loses


@settings(max_examples=25, deadline=None)
@given(lower_markets(max_buyers=5))
def test_vcg_is_individually_rational_and_covers_asks(m):
    a = exact_clear(m, "brute")
    for b in range(m.n_buyers):
        if a.seller[b] == NO_TRADE:
            assert a.payment[b] == 0
            continue
        assert a.payment[b] <= m.value[b, 0] + TOL
        assert a.payment[b] >= m.ask[a.seller[b]] * m.quantity[b, 0] - TOL


@settings(max_examples=25, deadline=None)
@given(lower_markets(reach=False), st.randoms(use_true_random=False))
def test_relabelling_buyers_permutes_the_greedy_outcome(m, rnd):
    density = m.value[:, 0] / np.sqrt(m.quantity[:, 0])
    assume(len(set(np.round(density, 9))) == m.n_buyers)  # exact ties are broken by index, by design
    perm = list(range(m.n_buyers))
    rnd.shuffle(perm)
    p = np.array(perm)
    m2 = make_market(m.quantity[p], m.value[p], m.capacity, m.ask, m.allowed[p], m.base_price)
    a, a2 = greedy_clear(m), greedy_clear(m2)
    np.testing.assert_array_equal(a2.seller, a.seller[p])
    np.testing.assert_allclose(a2.payment, a.payment[p], rtol=1e-9, atol=1e-9)
    assert milp_allocate(m2).welfare == pytest.approx(milp_allocate(m).welfare, abs=TOL)


def test_clear_lower_reports_served_units():
    m = make_market([3, 4, 5], [9.0, 8.0, 1.0], [7, 4], [0.5, 1.0])
    out = clear_lower(m, "greedy")
    assert out.surplus == pytest.approx(greedy_allocate(m).welfare)
    assert out.served.sum() == pytest.approx(sum(m.quantity[i, 0] for i in range(3) if out.assignment[i] >= 0))


def test_literal_ask_density_order_can_leave_a_mesp_ask_uncovered():
    # MESP 0: cheap but small (0.2/√100 = 0.02); MESP 1: dearer but large (0.5/√10000 = 0.005).
    m = make_market([100.0], [100.0], [100.0, 10000.0], [0.2, 0.5])
    lit = greedy_clear(m, "ask_density")
    assert lit.seller[0] == 1 and lit.payment[0] == pytest.approx(20.0)  # pays 20, MESP 1 asks 50
    ours = greedy_clear(m, "ask")
    assert ours.seller[0] == 0 and ours.payment[0] == pytest.approx(20.0)  # MESP 0 asks exactly 20


def test_bids_below_base_price_are_not_admitted():
    m = make_market([10.0, 10.0], [1.0, 30.0], [20.0], [0.0], base_price=0.5)
    for a in (greedy_clear(m), exact_clear(m)):
        assert a.seller[0] == NO_TRADE and a.seller[1] == 0
        assert a.payment[1] == pytest.approx(5.0)  # max(base·d, critical = 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quantity": [1, 2], "value": [1.0], "capacity": [1], "ask": [0]},
        {"quantity": [1], "value": [1.0], "capacity": [1, 2], "ask": [0]},
        {"quantity": [-1], "value": [1.0], "capacity": [1], "ask": [0]},
        {"quantity": [1], "value": [float("nan")], "capacity": [1], "ask": [0]},
        {"quantity": [1], "value": [1.0], "capacity": [], "ask": []},
    ],
)
def test_bad_markets_raise(kwargs):
    with pytest.raises(MechanismError):
        make_market(**kwargs)


def test_unknown_methods_raise():
    m = make_market([1.0], [1.0], [1.0], [0.0])
    with pytest.raises(MechanismError):
        clear_lower(m, "nope")
    with pytest.raises(MechanismError):
        greedy_allocate(m, "nope")
