"""The digits data set and the federated splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.fl.data import (
    dirichlet_split,
    iid_split,
    label_distribution,
    load_digits,
    split_train_eval,
)


def test_load_digits_shape_and_range() -> None:
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y).tolist()) == set(range(10))


def test_split_is_stratified_deterministic_and_disjoint() -> None:
    X, y = load_digits()
    a = split_train_eval(X, y, 0.2, seed=3)
    b = split_train_eval(X, y, 0.2, seed=3)
    for u, v in zip(a, b, strict=True):
        assert np.array_equal(u, v)
    _, y_tr, X_ev, y_ev = a
    assert len(y_tr) + len(y_ev) == 1797
    assert abs(len(y_ev) - 0.2 * 1797) <= 10
    # every class keeps its share within one sample
    for c in range(10):
        n_c = int((y == c).sum())
        assert abs(int((y_ev == c).sum()) - 0.2 * n_c) <= 1
    c = split_train_eval(X, y, 0.2, seed=4)
    assert not np.array_equal(c[3], y_ev) or not np.array_equal(c[2], X_ev)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_fraction(bad: float) -> None:
    X, y = load_digits()
    with pytest.raises(MechanismError):
        split_train_eval(X, y, bad, 0)


@settings(max_examples=25, deadline=None)
@given(n_clients=st.integers(1, 60), alpha=st.floats(0.01, 100.0), seed=st.integers(0, 2**31))
def test_dirichlet_split_partitions_with_nonempty_clients(n_clients: int, alpha: float, seed: int) -> None:
    y = np.random.default_rng(seed).integers(0, 10, size=300)
    parts = dirichlet_split(y, n_clients, alpha, seed)
    assert len(parts) == n_clients
    assert all(p.size > 0 for p in parts)
    allidx = np.concatenate(parts)
    assert np.array_equal(np.sort(allidx), np.arange(300))
    again = dirichlet_split(y, n_clients, alpha, seed)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again, strict=True))


def test_small_alpha_is_more_skewed_than_large_alpha() -> None:
    _, y = load_digits()
    ref = label_distribution(y)

    def mean_l1(alpha: float) -> float:
        parts = dirichlet_split(y, 20, alpha, seed=1)
        return float(np.mean([np.abs(label_distribution(y[p]) - ref).sum() for p in parts]))

    assert mean_l1(0.1) > mean_l1(1.0) > mean_l1(100.0)
    assert mean_l1(100.0) < 0.4


def test_dirichlet_split_rejects_bad_input() -> None:
    y = np.arange(10) % 3
    with pytest.raises(MechanismError):
        dirichlet_split(y, 0, 1.0, 0)
    with pytest.raises(MechanismError):
        dirichlet_split(y, 11, 1.0, 0)
    with pytest.raises(MechanismError):
        dirichlet_split(y, 2, 0.0, 0)
    with pytest.raises(MechanismError):
        dirichlet_split(np.array([]), 1, 1.0, 0)


def test_iid_split_sizes() -> None:
    parts = iid_split(103, 10, seed=0)
    assert sorted(p.size for p in parts) == [10] * 7 + [11] * 3
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(103))


def test_label_distribution() -> None:
    p = label_distribution(np.array([0, 0, 1, 3]), n_classes=4)
    assert p.tolist() == [0.5, 0.25, 0.0, 0.25]
    with pytest.raises(MechanismError):
        label_distribution(np.array([4]), n_classes=4)
    with pytest.raises(MechanismError):
        label_distribution(np.array([], dtype=np.int64))


def test_the_shipped_digits_are_scikit_learns() -> None:
    sklearn = pytest.importorskip("sklearn.datasets")
    X, y = load_digits()
    bunch = sklearn.load_digits()
    assert np.array_equal(X, bunch.data / 16.0) and np.array_equal(y, bunch.target)
