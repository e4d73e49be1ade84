"""Deterministic FedAvg and the cosine poisoning filter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.fl.fedavg import fedavg
from bazaar.mechanisms.fl.filter import UpdateFilter, cosine_similarity


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 6), dim=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_fedavg_is_a_convex_combination(k: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ups = [rng.normal(size=dim) for _ in range(k)]
    w = rng.uniform(0.1, 5.0, size=k)
    out = fedavg(ups, w.tolist())
    np.testing.assert_allclose(out, np.average(np.array(ups), axis=0, weights=w), rtol=1e-10, atol=1e-12)
    stack = np.array(ups)
    assert np.all(out <= stack.max(axis=0) + 1e-12) and np.all(out >= stack.min(axis=0) - 1e-12)
    # scaling the weights does not change the result beyond rounding
    np.testing.assert_allclose(fedavg(ups, (3 * w).tolist()), out, rtol=1e-12, atol=1e-14)
    # same inputs, same bytes
    assert fedavg(ups, w.tolist()).tobytes() == out.tobytes()


def test_fedavg_edge_cases() -> None:
    u = np.array([1.0, -2.0])
    assert fedavg([u], [7.0]).tobytes() == u.tobytes()
    assert fedavg([u, 3 * u], [1, 0]).tolist() == u.tolist()
    assert fedavg([np.zeros(2), np.ones(2)], [1, 1]).tolist() == [0.5, 0.5]
    for ups, w in [([], []), ([u], [1, 2]), ([u, np.zeros(3)], [1, 1]), ([u], [-1.0]), ([u], [0.0]),
                   ([np.array([np.nan, 0.0])], [1.0]), ([u], [float("inf")])]:
        with pytest.raises(MechanismError):
            fedavg(ups, w)


def test_cosine_similarity() -> None:
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, a) == 1.0
    assert cosine_similarity(a, -2 * a) == -1.0
    assert cosine_similarity(a, np.array([0.0, 3.0])) == 0.0
    assert cosine_similarity(a, np.zeros(2)) == 0.0
    with pytest.raises(MechanismError):
        cosine_similarity(a, np.zeros(3))


def test_filter_accepts_first_then_compares_with_history() -> None:
    f = UpdateFilter(threshold=0.0, history=2)
    rng = np.random.default_rng(0)
    base = rng.normal(size=20)
    assert f.check("ed", -base)  # first update: always accepted
    f.record("ed", base)
    assert f.check("ed", base + 0.1 * rng.normal(size=20))
    assert not f.check("ed", -3 * base)
    assert f.check("other", -3 * base)  # histories are per client
    assert f.score("ed", base) == pytest.approx(1.0)
    # history is bounded: after two records in the opposite direction the old one is forgotten
    f.record("ed", -base)
    f.record("ed", -base)
    assert f.check("ed", -base) and not f.check("ed", base)
    assert f.clients() == ["ed"]


def test_filter_rejects_bad_settings() -> None:
    for thr, hist in [(1.5, 2), (0.0, 0), (float("nan"), 1)]:
        with pytest.raises(MechanismError):
            UpdateFilter(thr, hist)
    f = UpdateFilter(0.0, 1)
    f.record("a", np.ones(3))
    with pytest.raises(MechanismError):
        f.record("a", np.ones(4))
