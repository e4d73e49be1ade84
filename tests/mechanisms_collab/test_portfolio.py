"""Portfolio solvers against the exhaustive reference, and the economics of OPT-1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.collab import Book, Publisher, Seller, optimize_portfolio
from bazaar.mechanisms.collab.problem import PortfolioProblem
from bazaar.mechanisms.errors import MechanismError

seller_st = st.builds(Seller, st.integers(1, 12).map(float), st.floats(1, 20).map(lambda v: round(v, 2)),
                      st.integers(0, 10).map(float), st.floats(5, 20).map(lambda v: round(v, 2)),
                      st.floats(0.2, 0.6), st.floats(0.01, 0.05))
pub_st = st.builds(Publisher, st.floats(20, 100), st.floats(5, 30), st.floats(10, 50), st.floats(0, 4),
                   st.floats(0.3, 0.8))


def _feasible_against_book(port, pub: Publisher, sellers: list[Seller]) -> None:
    prob = PortfolioProblem(pub, Book.from_sellers(sellers))
    assert prob.feasible(port.compute, port.data)
    assert port.spent <= pub.budget + 1e-6
    assert port.data_cost <= pub.multiplier * max(0.0, port.time_gain - port.compute_cost) + 1e-6
    assert port.time_gain >= -1e-6
    for s, x, y in zip(sellers, port.compute_purchases, port.data_purchases, strict=True):
        assert -1e-9 <= x <= s.compute_capacity + 1e-9
        assert -1e-9 <= y <= s.data_capacity + 1e-9
    assert math.isclose(sum(port.compute_purchases), port.compute, abs_tol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(seller_st, min_size=1, max_size=4), pub_st)
def test_sgsa_feasible_and_within_one_percent_of_exhaustive(sellers: list[Seller], pub: Publisher) -> None:
    ref = optimize_portfolio(pub, sellers, "exhaustive")
    got = optimize_portfolio(pub, sellers, "sgsa")
    assert got.feasible == ref.feasible
    if not ref.feasible:
        assert got.spent == 0 and got.payoff == pytest.approx((1 - pub.omega) * pub.budget)
        return
    _feasible_against_book(got, pub, sellers)
    assert got.payoff <= ref.payoff + 1e-6  # the grid optimum is the best integer portfolio
    assert got.payoff >= ref.payoff - 0.01 * abs(ref.payoff)


@settings(max_examples=40, deadline=None)
@given(st.lists(seller_st, min_size=1, max_size=4), pub_st)
def test_continuous_optimum_bounds_the_grid_and_newton_agrees(sellers: list[Seller], pub: Publisher) -> None:
    ref = optimize_portfolio(pub, sellers, "exhaustive")
    cont = optimize_portfolio(pub, sellers, "sgsa", integral=False)
    newton = optimize_portfolio(pub, sellers, "newton", integral=False)
    greedy = optimize_portfolio(pub, sellers, "greedy")
    if ref.feasible:
        assert cont.payoff >= ref.payoff - 1e-6  # relaxation
        assert greedy.payoff <= ref.payoff + 1e-6
        _feasible_against_book(greedy, pub, sellers)
    if cont.feasible:
        _feasible_against_book(cont, pub, sellers)
        assert newton.payoff >= cont.payoff - 1e-3 * abs(cont.payoff)
        assert cont.payoff >= newton.payoff - 1e-2 * abs(newton.payoff)


@settings(max_examples=30, deadline=None)
@given(st.lists(seller_st, min_size=1, max_size=4), pub_st)
def test_conservative_publisher_buys_no_data(sellers: list[Seller], pub: Publisher) -> None:
    cons = Publisher(pub.budget, pub.deadline, pub.own_data, 0.0, pub.omega)
    for method in ("sgsa", "newton", "greedy", "exhaustive"):
        assert optimize_portfolio(cons, sellers, method).data == 0


def test_aggressive_publisher_spends_its_budget() -> None:
    sellers = [Seller(40, 2.0, 60, 5.0, 1.0, 0.001), Seller(40, 3.0, 60, 6.0, 1.0, 0.001)]
    pub = Publisher(budget=80, deadline=20, own_data=20, multiplier=100.0, omega=0.9, b=0.01)
    for method in ("sgsa", "newton", "exhaustive"):
        port = optimize_portfolio(pub, sellers, method)
        assert pub.budget - 6.0 <= port.spent <= pub.budget + 1e-9  # within one unit's price
        assert port.data > 0


def test_relabelling_sellers_permutes_purchases() -> None:
    sellers = [Seller(10, 3.0, 8, 7.0, 0.4, 0.02), Seller(6, 2.0, 5, 9.0, 0.5, 0.03),
               Seller(9, 5.0, 7, 6.0, 0.3, 0.01)]
    pub = Publisher(70, 12, 30, 2.0, 0.6)
    a = optimize_portfolio(pub, sellers)
    b = optimize_portfolio(pub, sellers[::-1])
    assert a.payoff == pytest.approx(b.payoff)
    assert list(a.compute_purchases) == pytest.approx(list(b.compute_purchases)[::-1])


def test_infeasible_and_bad_input() -> None:
    sellers = [Seller(2, 20.0, 5, 5.0)]
    pub = Publisher(20, 5, 50, 1.0, 0.5)  # needs 10 shares, only 2 on offer
    port = optimize_portfolio(pub, sellers)
    assert not port.feasible and "shares" in port.reason and port.spent == 0
    with pytest.raises(MechanismError):
        optimize_portfolio(pub, sellers, "simplex")
    with pytest.raises(MechanismError):
        Publisher(20, 5, 50, 1.0, 1.0)
    with pytest.raises(MechanismError):
        Seller(-1, 1, 1, 1)
    with pytest.raises(MechanismError):
        optimize_portfolio(pub, [])


def test_bounds_match_the_formulas() -> None:
    sellers = [Seller(50, 4.0, 10, 8.0)]
    pub = Publisher(60, 10, 30, 2.0, 0.6)
    bd = PortfolioProblem(pub, Book.from_sellers(sellers)).bounds()
    assert bd.x_lb == pytest.approx(30 / 10)
    assert bd.x_ub == pytest.approx(math.sqrt(0.6 * 10 * 30 / (0.4 * 1 * 4.0)))
    assert bd.iso_cost[0] == pytest.approx((15.0, 0.0))
