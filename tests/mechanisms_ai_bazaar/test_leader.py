"""The CPP's optimum: dense-grid dominance, reference solver, the shipped parameter sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from bazaar.mechanisms.ai_bazaar import (
    Params,
    consumer_profit,
    find_kinks,
    leader_profit,
    mining_value,
    reference_stackelberg,
    solve_stackelberg,
)
from bazaar.mechanisms.ai_bazaar.followers import profit_scale

from .strategies import games, load


@settings(max_examples=20, deadline=None, derandomize=True)
@given(games(max_n=4))
def test_leader_profit_beats_every_price_on_a_dense_grid(params: Params) -> None:
    eq = solve_stackelberg(params)
    assert params.p_min <= eq.price <= params.p_max
    grid = np.linspace(params.p_min, params.p_max, 1001)
    best_grid = max(leader_profit(params, float(q)) for q in grid)
    assert eq.cpp_profit >= best_grid - 1e-9 * max(1.0, abs(best_grid))
    assert eq.max_deviation_gain <= 1e-8 * profit_scale(params, eq.price)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(games(max_n=3))
def test_fast_equals_reference_stackelberg(params: Params) -> None:
    fast = solve_stackelberg(params)
    ref = reference_stackelberg(params, grid=61, refine=40)
    scale = max(1.0, abs(fast.cpp_profit))
    # the reference's responses are numerical (about 1e-7 relative): it may not beat the exact optimum
    assert ref.cpp_profit <= fast.cpp_profit + 1e-5 * scale
    assert ref.cpp_profit >= fast.cpp_profit - 1e-4 * scale


def test_table1_is_the_corner() -> None:
    params = load("ai-bazaar-table1")
    eq = solve_stackelberg(params)
    assert eq.price == params.p_max
    np.testing.assert_array_equal(eq.demand, params.F_max)
    assert eq.cpp_profit == (params.p_max - params.C) * params.n * params.F_max
    assert np.all(mining_value(params) < 1e-30)
    # consumer 0 devotes 20 % to mining, the others 10 %: profits F((1-beta) C_b - u p) (+ ~0 mining)
    np.testing.assert_allclose(eq.consumer_profit, 100 * ((1 - params.beta) * 220 - 0.5 * 20), rtol=1e-12)


def test_calibrated_price_is_strictly_inside_and_mining_matters() -> None:
    params = load("ai-bazaar-calibrated")
    eq = solve_stackelberg(params)
    step = (params.p_max - params.p_min) / 100
    assert params.p_min + step < eq.price < params.p_max - step
    interior = (eq.demand > params.F_min + 1e-6) & (eq.demand < params.F_max - 1e-6)
    assert interior.sum() >= 3
    assert np.all(eq.consumer_profit > 0)
    x = params.beta * eq.demand
    mining = mining_value(params) * x / x.sum()
    assert mining.sum() > 0.5 * eq.consumer_profit.sum()
    # the optimum is at a kink (docs/models/ai-bazaar.md), not on a smooth piece
    kinks = find_kinks(params)
    assert np.min(np.abs(kinks - eq.price)) < 1e-6
    # the slow reference on a four-consumer sub-market (one business user, three miners)
    sub = params.subset([3, 4, 6, 7])
    fast, ref = solve_stackelberg(sub), reference_stackelberg(sub, grid=41, refine=30)
    assert abs(ref.price - fast.price) < 1e-3
    assert abs(ref.cpp_profit - fast.cpp_profit) <= 1e-5 * fast.cpp_profit


def test_equilibrium_json_has_exactly_the_cli_keys() -> None:
    params = load("ai-bazaar-calibrated")
    eq = solve_stackelberg(params)
    out = eq.to_json()
    assert list(out) == ["price", "demand", "cpp_profit", "consumer_profit", "max_deviation_gain"]
    np.testing.assert_allclose(out["consumer_profit"], consumer_profit(params, eq.price, eq.demand))


def test_subgame_of_present_consumers_solves() -> None:
    params = load("ai-bazaar-calibrated")
    for idx in ([4], [0, 6], [1, 2, 5, 7]):
        eq = solve_stackelberg(params.subset(idx))
        assert len(eq.demand) == len(idx)
        assert params.p_min <= eq.price <= params.p_max
