"""Baselines and the learning loop: simplex projection, the minimax LP, GA, a short PB-MARL run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.ai_bazaar import (
    LEARNERS,
    episodes_to_converge,
    genetic_maximize,
    minimax_policy,
    one_sided_ga,
    project_simplex,
    run_learning,
)

from .strategies import load


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=8))
def test_projection_is_a_distribution_and_idempotent(v: list[float]) -> None:
    x = project_simplex(np.array(v))
    assert np.all(x >= 0) and x.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(project_simplex(x), x, atol=1e-12)


def test_minimax_lp_solves_matching_pennies_and_rock_paper_scissors() -> None:
    pi, v = minimax_policy(np.array([[1.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_allclose(pi, [0.5, 0.5], atol=1e-9)
    assert v == pytest.approx(0.0, abs=1e-9)
    rps = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)
    pi, v = minimax_policy(rps)
    np.testing.assert_allclose(pi, [1 / 3] * 3, atol=1e-9)


def test_ga_finds_a_quadratic_maximum() -> None:
    x, fx = genetic_maximize(lambda z: -float(np.sum((z - 0.3) ** 2)), np.zeros(3), np.ones(3),
                             generations=60, seed=1)
    np.testing.assert_allclose(x, 0.3, atol=0.03)
    assert fx <= 0


def test_one_sided_problems_favour_their_side() -> None:
    params = load("ai-bazaar-calibrated")
    p1, p2 = one_sided_ga(params, "P1", seed=0, generations=30), one_sided_ga(params, "P2", seed=0, generations=30)
    assert p1["cpp_profit"] > p2["cpp_profit"]
    assert np.sum(p2["consumer_profit"]) > np.sum(p1["consumer_profit"])
    # P1 alone: the CPP would charge p_max and sell F_max to everyone
    assert p1["price"] > params.p_max - 0.5


@pytest.mark.parametrize("learner", LEARNERS)
def test_every_learner_runs_and_stays_on_the_grids(learner: str) -> None:
    params = load("ai-bazaar-calibrated")
    tr = run_learning(params, learner, episodes=40, seed=3)
    assert tr.price.shape == (40,) and tr.demand.shape == (40, params.n)
    assert np.all((tr.price >= params.p_min) & (tr.price <= params.p_max))
    assert np.all((tr.demand >= params.F_min) & (tr.demand <= params.F_max))
    again = run_learning(params, learner, episodes=40, seed=3)
    np.testing.assert_array_equal(again.price, tr.price)  # seeded: reproducible


def test_episodes_to_converge() -> None:
    assert episodes_to_converge(np.array([5.0, 1.0, 0.2, 0.1]), 0.0, 0.5) == 2
    assert episodes_to_converge(np.array([0.1, 0.2]), 0.0, 0.5) == 0
    assert episodes_to_converge(np.array([0.1, 2.0]), 0.0, 0.5) is None


def test_convergence_experiment_quick(tmp_path: Path) -> None:
    from bazaar.node.experiments.ai_bazaar import EXPERIMENTS
    from bazaar.node.experiments.repro import Run, execute

    summary = execute(EXPERIMENTS["ai-bazaar-convergence"].run, Run("ai-bazaar-convergence", tmp_path, reps=2,
                                                                     mode="quick"))
    assert set(summary["median_episodes_to_converge"]) == set(LEARNERS)
    assert (tmp_path / "convergence.png").stat().st_size > 0
    data = json.loads((tmp_path / "convergence.json").read_text())["convergence"]
    assert data["stackelberg_price"] == pytest.approx(summary["stackelberg_price"])
    for learner in LEARNERS:
        assert len(data["learners"][learner]["episodes_to_converge_per_seed"]) == 2
