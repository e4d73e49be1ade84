"""The followers' game: best responses, equilibrium, closed form, reference solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.ai_bazaar import (
    Params,
    best_response,
    closed_form_equilibrium,
    consumer_profit,
    follower_equilibrium,
    marginal_cost,
    max_deviation_gain,
    mining_value,
    own_profit,
    reference_follower_equilibrium,
)
from bazaar.mechanisms.ai_bazaar.followers import profit_scale
from bazaar.mechanisms.errors import ConvergenceError, MechanismError

from .strategies import base_mapping, games, load

FRACTIONS = st.floats(0.0, 1.0)


def _price(params: Params, t: float) -> float:
    return params.p_min + t * (params.p_max - params.p_min)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(games(), FRACTIONS, st.data())
def test_best_response_beats_a_dense_grid(params: Params, t: float, data: st.DataObject) -> None:
    p = _price(params, t)
    F = np.array([data.draw(st.floats(params.F_min, params.F_max)) for _ in range(params.n)])
    i = data.draw(st.integers(0, params.n - 1))
    br = best_response(params, i, p, F)
    assert params.F_min <= br <= params.F_max
    grid = np.linspace(params.F_min, params.F_max, 4001)
    values = own_profit(params, i, p, F, np.append(grid, br))
    assert values[-1] >= values[:-1].max() - 1e-9 * profit_scale(params, p)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(games(), FRACTIONS)
def test_no_follower_gains_by_a_unilateral_deviation(params: Params, t: float) -> None:
    p = _price(params, t)
    F = follower_equilibrium(params, p)
    assert np.all((params.F_min <= F) & (params.F_max >= F))
    tol = 1e-8 * profit_scale(params, p)
    # independent check on a much denser grid than the solver's own verification
    for i in range(params.n):
        grid = np.linspace(params.F_min, params.F_max, 5001)
        values = own_profit(params, i, p, F, np.append(grid, F[i]))
        assert values[:-1].max() - values[-1] <= tol
    assert max_deviation_gain(params, p, F) <= tol


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(2, 6), st.floats(0.05, 1.0), st.data())
def test_closed_form_equals_the_solver_when_beta_equal_and_all_interior(
    n: int, beta: float, data: st.DataObject
) -> None:
    d = base_mapping(n) | {"beta": beta, "F_min": 1e-3, "F_max": 1e6, "C_b": 5.0}
    d["u"] = [data.draw(st.floats(0.5, 2.0)) for _ in range(n)]
    d["delta"] = [data.draw(st.floats(0.0, 1.0)) for _ in range(n)]
    d["m"] = [data.draw(st.floats(0.5, 2.0)) for _ in range(n)]
    params = Params.from_mapping(d)
    p = data.draw(st.floats(params.p_min, params.p_max))
    closed = closed_form_equilibrium(params, p)
    assume(np.all(closed > params.F_min * 1.001) and np.all(closed < params.F_max * 0.999))
    solved = follower_equilibrium(params, p)
    np.testing.assert_allclose(solved, closed, rtol=1e-7, atol=1e-9 * params.F_max)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(games(max_n=4), FRACTIONS)
def test_fast_equals_reference_follower_solver(params: Params, t: float) -> None:
    p = _price(params, t)
    fast = follower_equilibrium(params, p)
    try:
        ref = reference_follower_equilibrium(params, p)
    except ConvergenceError:
        # best-response dynamics can cycle between two miners; the fast solver must still be an equilibrium
        assert max_deviation_gain(params, p, fast) <= 1e-6 * profit_scale(params, p)
        return
    span = params.F_max - params.F_min
    # a consumer with a_i = 0 and no mining incentive is indifferent over [F_min, F_max]: any demand is a best
    # response, so only the others' demands are determined; so is the only miner (β_i > 0 for it alone): its
    # share of the mining reward is 1 whatever it demands
    a, rc = marginal_cost(params, p), mining_value(params)
    sole_miner = int(np.count_nonzero(params.beta > 0)) <= 1
    indifferent = (a == 0) & ((params.beta == 0) | (rc == 0) | (params.n == 1) | sole_miner)
    np.testing.assert_allclose(fast[~indifferent], ref[~indifferent], atol=1e-4 * max(span, 1.0) + 1e-6)
    assert max_deviation_gain(params, p, ref) <= 1e-6 * profit_scale(params, p)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(games(max_n=5), FRACTIONS, st.randoms(use_true_random=False))
def test_relabelling_consumers_permutes_the_equilibrium(params: Params, t: float, rnd: object) -> None:
    p = _price(params, t)
    perm = list(range(params.n))
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    F = follower_equilibrium(params, p)
    G = follower_equilibrium(params.subset(perm), p)
    np.testing.assert_allclose(G, F[perm], rtol=1e-9, atol=1e-9 * params.F_max)


def test_table1_followers_buy_the_maximum() -> None:
    params = load("ai-bazaar-table1")
    for p in (params.p_min, 15.0, params.p_max):
        np.testing.assert_array_equal(follower_equilibrium(params, p), params.F_max)


def test_single_consumer_and_non_miners() -> None:
    params = Params.from_mapping(base_mapping(1))
    # a = u p - (1-beta) C_b = 20 - 14 > 0 at p = 20: alone it wins every block anyway, so it buys F_min
    assert follower_equilibrium(params, 20.0)[0] == params.F_min
    # a < 0 at p = 10: every unit pays for itself
    assert follower_equilibrium(params, 10.0)[0] == params.F_max
    two = Params.from_mapping(base_mapping(2) | {"beta": [0.0, 0.5], "u": [1.2, 1.0]})
    F = follower_equilibrium(two, 20.0)
    assert F[0] == two.F_min  # a non-miner with a = 1.2 * 20 - 20 > 0
    U = consumer_profit(two, 20.0, F)
    assert U[0] == pytest.approx(-4.0 * F[0])
    # exactly indifferent (a = 0): the convention a <= 0 -> F_max
    assert follower_equilibrium(two, 20.0 / 1.2)[0] == two.F_max


def test_wrong_shapes_are_rejected() -> None:
    params = load("ai-bazaar-calibrated")
    with pytest.raises(MechanismError):
        consumer_profit(params, 15.0, np.ones(3))
    with pytest.raises(MechanismError):
        best_response(params, 8, 15.0, np.full(8, 50.0))
    with pytest.raises(MechanismError):
        closed_form_equilibrium(params, 15.0)  # unequal beta
