"""The ES-ED Stackelberg game: closed form against numeric references, equilibrium properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.tbcim import TbcimConstants
from bazaar.mechanisms.tbcim.reference import (
    ed_deviation_gain,
    es_deviation_gain,
    numeric_best_response,
    reference_leader,
)
from bazaar.mechanisms.tbcim.stackelberg import StackelbergGame, price_closed_form, solve_stackelberg


def make_game(
    seed: int, n: int, omega: float = 5.0, cost_scale: float = 1.0, p_g: float = 1e-4
) -> StackelbergGame:
    rng = np.random.default_rng(seed)
    return StackelbergGame(
        d=rng.uniform(50, 500, n),
        theta=rng.uniform(0.2, 1.5, n),
        beta=rng.uniform(0.5, 2.0, n),
        gamma=cost_scale * rng.uniform(0, 0.01, n),
        c_m=cost_scale * rng.uniform(0, 1.0, n),
        omega=omega,
        kappa=0.01,
        p_g=p_g,
    )


games = st.builds(
    make_game,
    seed=st.integers(0, 10**6),
    n=st.integers(1, 7),
    omega=st.floats(0.1, 50.0),
    cost_scale=st.sampled_from([0.0, 0.1, 1.0, 10.0]),
    p_g=st.sampled_from([0.0, 1e-4, 1e-3]),
)


@settings(max_examples=40, deadline=None)
@given(K=st.floats(0.0, 1e8), omega=st.floats(1e-3, 1e3))
def test_closed_form_price_maximises_omega_log_minus_quadratic(K: float, omega: float) -> None:
    p = price_closed_form(K, omega)

    def f(x: float) -> float:
        return omega * math.log1p(x * K) - x * x * K

    if K * omega > 1e-4:  # below, the textbook form loses every digit to cancellation (ours does not)
        p_text = (-1 + math.sqrt(1 + 2 * K * omega)) / (2 * K)
        assert p == pytest.approx(p_text, rel=1e-6)
    if K > 0:
        # first-order condition omega K / (1 + p K) = 2 p K
        assert omega / (1 + p * K) == pytest.approx(2 * p, rel=1e-9)
    for x in (0.0, p * 0.9, p * 1.1, p * 2 + 1):
        assert f(x) <= f(p) + 1e-9 * max(1.0, abs(f(p)))


@settings(max_examples=30, deadline=None)
@given(game=games, price=st.floats(1e-4, 1.0))
def test_best_response_matches_numeric_maximisation(game: StackelbergGame, price: float) -> None:
    C = game.best_response(price)
    profits = game.ed_profit(price, C)
    for i in range(game.n):
        c_num, best = numeric_best_response(game, i, price)
        assert profits[i] >= best - 1e-9 * max(1.0, abs(best))
        assert C[i] == pytest.approx(c_num, rel=1e-4)


@settings(max_examples=15, deadline=None)
@given(game=games)
def test_exact_equilibrium_has_no_profitable_deviation(game: StackelbergGame) -> None:
    res = solve_stackelberg(game, "exact")
    scale = max(1.0, abs(res.es_profit))
    assert es_deviation_gain(game, res) <= 1e-7 * scale
    assert ed_deviation_gain(game, res) <= 1e-7 * max(1.0, float(np.abs(res.ed_profit).max()))
    # individual rationality and consistency of the record
    assert np.all(res.ed_profit[res.participants] >= -1e-9 * max(1.0, float(game.fixed_cost.max())))
    outside = np.setdiff1d(np.arange(game.n), res.participants)
    assert np.all(res.compute[outside] == 0) and np.all(res.fees[outside] == 0)
    np.testing.assert_allclose(res.fees, res.price**2 * game.k * np.isin(np.arange(game.n), res.participants))
    assert res.es_profit >= 0.0
    if res.participants.size and res.price > 0:
        # interior optimum is the closed form for its set, else the price sits on a participation threshold
        interior = res.price == pytest.approx(price_closed_form(res.K, game.omega), rel=1e-12)
        on_kink = np.any(np.isclose(res.price, game.thresholds, rtol=1e-12))
        assert interior or on_kink


@settings(max_examples=12, deadline=None)
@given(game=games)
def test_reference_leader_agrees_with_closed_form(game: StackelbergGame) -> None:
    res = solve_stackelberg(game, "exact")
    _, value = reference_leader(game)
    assert value == pytest.approx(res.es_profit, rel=1e-7, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(game=games)
def test_drop_rule_is_individually_rational_and_never_beats_exact(game: StackelbergGame) -> None:
    drop = solve_stackelberg(game, "drop")
    exact = solve_stackelberg(game, "exact")
    assert np.all(drop.ed_profit[drop.participants] >= -1e-9 * max(1.0, float(game.fixed_cost.max())))
    if drop.participants.size:
        assert drop.price == pytest.approx(price_closed_form(drop.K, game.omega), rel=1e-12)
        # when nobody outside wants in, drop's outcome is follower-consistent, so the leader's optimum is
        # at least as good
        if ed_deviation_gain(game, drop) <= 1e-12:
            assert exact.es_profit >= drop.es_profit - 1e-9 * max(1.0, abs(drop.es_profit))


@settings(max_examples=20, deadline=None)
@given(game=games, seed=st.integers(0, 1000))
def test_relabelling_eds_permutes_the_outcome(game: StackelbergGame, seed: int) -> None:
    perm = np.random.default_rng(seed).permutation(game.n)
    g2 = StackelbergGame(
        d=game.d[perm], theta=game.theta[perm], beta=game.beta[perm], gamma=game.gamma[perm],
        c_m=game.c_m[perm], omega=game.omega, kappa=game.kappa, p_g=game.p_g, consts=game.consts,
    )
    a, b = solve_stackelberg(game), solve_stackelberg(g2)
    assert b.price == pytest.approx(a.price, rel=1e-9)
    assert b.es_profit == pytest.approx(a.es_profit, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(b.compute, a.compute[perm], rtol=1e-9)


def test_no_fixed_costs_means_everybody_takes_part_at_the_closed_form() -> None:
    g = make_game(3, 6, cost_scale=0.0, p_g=0.0)
    res = solve_stackelberg(g)
    assert res.participants.tolist() == list(range(6))
    assert res.price == pytest.approx(price_closed_form(float(g.k.sum()), g.omega), rel=1e-14)
    assert res.es_profit == pytest.approx(g.es_profit(res.price, np.arange(6)))


def test_hopeless_costs_mean_nobody_takes_part() -> None:
    g = make_game(4, 4, omega=1e-3, cost_scale=1e6, p_g=1.0)
    res = solve_stackelberg(g)
    assert res.participants.size == 0 and res.price == 0.0 and res.es_profit == 0.0


def test_paper_gas_price_makes_workers_too_dear() -> None:
    # c^b = a6 g_e p_g = 26.7 per worker at the paper's p_g = 0.01, far above U_d <= a5 = 0.64
    def game(p_g: float) -> StackelbergGame:
        return StackelbergGame(
            d=np.array([200.0, 300.0]), theta=np.array([0.5, 0.7]), beta=np.ones(2), gamma=np.zeros(2),
            c_m=np.zeros(2), omega=1.0, kappa=1.0, p_g=p_g, consts=TbcimConstants(),
        )

    assert solve_stackelberg(game(0.01)).participants.size == 0
    cheap = solve_stackelberg(game(1e-6))
    assert cheap.participants.tolist() == [0, 1] and cheap.price > 0 and cheap.es_profit > 0


def test_bad_games_raise() -> None:
    base = {"d": [1.0], "theta": [0.5], "beta": [1.0], "gamma": [0.0], "c_m": [0.0]}
    for key, bad in [("d", [0.0]), ("theta", [0.0]), ("beta", [-1.0]), ("gamma", [-1.0]), ("c_m", [np.nan])]:
        with pytest.raises(MechanismError):
            StackelbergGame(**{**base, key: bad}, omega=1.0, kappa=1.0, p_g=0.0)
    with pytest.raises(MechanismError):
        StackelbergGame(**{**base, "d": [1.0, 2.0]}, omega=1.0, kappa=1.0, p_g=0.0)
    with pytest.raises(MechanismError):
        StackelbergGame(**base, omega=0.0, kappa=1.0, p_g=0.0)
    with pytest.raises(MechanismError):
        StackelbergGame(**base, omega=1.0, kappa=1.0, p_g=-1.0)
    g = StackelbergGame(**base, omega=1.0, kappa=1.0, p_g=0.0)
    with pytest.raises(MechanismError):
        solve_stackelberg(g, "guess")
    with pytest.raises(MechanismError):
        price_closed_form(-1.0, 1.0)
