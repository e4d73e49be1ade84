"""WoLF-PHC: the policy stays a distribution, converges in matching pennies, and round-trips its state."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.ai_bazaar import WolfPHC, demand_bucket
from bazaar.mechanisms.errors import MechanismError

from .strategies import load


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(1, 4), st.integers(1, 6), st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=200),
       st.integers(0, 2**31))
def test_policy_stays_a_distribution(n_states: int, n_actions: int, rewards: list[float], seed: int) -> None:
    agent = WolfPHC(n_states, n_actions, delta_win=0.05, delta_lose=0.2, seed=seed)
    s = 0
    for k, r in enumerate(rewards):
        a = agent.act(s)
        s2 = (s + k) % n_states
        agent.update(s, a, r, s2)
        for t in range(n_states):
            for pol in (agent.policy(t), agent.average_policy(t)):
                assert np.all(pol >= 0)
                assert pol.sum() == pytest.approx(1.0, abs=1e-12)
        s = s2


def test_matching_pennies_average_policy_goes_to_one_half() -> None:
    row = WolfPHC(1, 2, alpha=0.1, gamma=0.0, delta_win=0.001, delta_lose=0.004, epsilon_explore=0.0, seed=1)
    col = WolfPHC(1, 2, alpha=0.1, gamma=0.0, delta_win=0.001, delta_lose=0.004, epsilon_explore=0.0, seed=2)
    for _ in range(30000):
        a, b = row.act(0), col.act(0)
        r = 1.0 if a == b else -1.0
        row.update(0, a, r, 0)
        col.update(0, b, -r, 0)
    assert row.average_policy(0)[0] == pytest.approx(0.5, abs=0.08)
    assert col.average_policy(0)[0] == pytest.approx(0.5, abs=0.08)


def test_wolf_learns_a_dominant_action() -> None:
    agent = WolfPHC(1, 3, seed=3)
    for _ in range(3000):
        a = agent.act(0)
        agent.update(0, a, [0.0, 1.0, 0.2][a], 0)
    assert agent.greedy_action(0) == 1
    assert agent.policy(0)[1] > 0.9


def test_state_dict_round_trips_through_msgpack() -> None:
    agent = WolfPHC(3, 4, seed=7)
    for k in range(200):
        s = k % 3
        a = agent.act(s)
        agent.update(s, a, float(a * s), (s + 1) % 3)
    blob = msgpack.packb(agent.state_dict())
    clone = WolfPHC.from_state_dict(msgpack.unpackb(blob))
    np.testing.assert_array_equal(clone.q, agent.q)
    np.testing.assert_array_equal(clone.pi, agent.pi)
    for k in range(100):  # identical future: same RNG stream, same updates
        s = k % 3
        a, b = agent.act(s), clone.act(s)
        assert a == b
        agent.update(s, a, 1.0, 0)
        clone.update(s, b, 1.0, 0)
    np.testing.assert_array_equal(clone.pi_avg, agent.pi_avg)


def test_bad_state_dict_and_arguments() -> None:
    d = WolfPHC(2, 2, seed=0).state_dict()
    d["q"] = [[0.0]]
    with pytest.raises(MechanismError):
        WolfPHC.from_state_dict(d)
    with pytest.raises(MechanismError):
        WolfPHC(2, 2, delta_win=0.1, delta_lose=0.01, seed=0)
    with pytest.raises(MechanismError):
        WolfPHC(2, 2, seed=0).act(5)


def test_demand_bucket() -> None:
    params = load("ai-bazaar-calibrated")  # total demand in [80, 800]
    assert demand_bucket(80.0, params, 9) == 0
    assert demand_bucket(800.0, params, 9) == 8
    assert demand_bucket(440.0, params, 9) == 4
    assert demand_bucket(-5.0, params, 9) == 0
    assert demand_bucket(1e9, params, 9) == 8
