"""Softmax regression and the MLP: gradients, loss, determinism, training, bad input."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.fl import linalg, mlp, softmax
from bazaar.mechanisms.fl.data import load_digits, split_train_eval
from bazaar.mechanisms.fl.models import get_model

MODELS = [softmax, mlp]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_digits()
    return split_train_eval(X, y, 0.2, seed=0)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 6), k=st.integers(1, 9), n=st.integers(1, 5), seed=st.integers(0, 1000))
def test_fixed_order_dot_matches_matmul(m: int, k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    np.testing.assert_allclose(linalg.dot(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linalg.column_sum(a), a.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linalg.row_sum(a), a.sum(axis=1), rtol=1e-12, atol=1e-12)


def test_softmax_loss_matches_naive_formula() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.random((7, 5)), rng.integers(0, 3, 7)
    w = rng.normal(size=softmax.n_params(5, 3))
    W, b = w[:15].reshape(5, 3), w[15:]
    z = X @ W + b
    naive = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(7), y]))
    assert softmax.loss(w, X, y) == pytest.approx(naive, rel=1e-12)


def test_loss_is_stable_for_huge_logits() -> None:
    X = np.ones((2, 1))
    w = np.array([1e4, -1e4, 0.0, 0.0])  # 1 feature, 2 classes
    assert math.isfinite(softmax.loss(w, X, np.array([0, 1])))
    assert softmax.loss(w, X, np.array([0, 0])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_gradient_matches_finite_differences(model: ModuleType) -> None:
    rng = np.random.default_rng(2)
    X, y = rng.random((9, 6)), rng.integers(0, 4, 9)
    w = model.init_params(6, 4, seed=3) + rng.normal(0, 0.1, model.n_params(6, 4))
    g = model.gradient(w, X, y)
    eps = 1e-6
    for j in rng.choice(w.size, size=12, replace=False):
        e = np.zeros_like(w)
        e[j] = eps
        num = (model.loss(w + e, X, y) - model.loss(w - e, X, y)) / (2 * eps)
        assert g[j] == pytest.approx(num, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("model", MODELS)
def test_sgd_is_deterministic_and_pure(model: ModuleType, digits: tuple) -> None:
    X_tr, y_tr, _, _ = digits
    w0 = model.init_params(64, 10, seed=0)
    before = w0.copy()
    a = model.sgd(w0, X_tr[:200], y_tr[:200], steps=15, lr=0.1, batch_size=16, seed=9)
    b = model.sgd(w0, X_tr[:200], y_tr[:200], steps=15, lr=0.1, batch_size=16, seed=9)
    c = model.sgd(w0, X_tr[:200], y_tr[:200], steps=15, lr=0.1, batch_size=16, seed=10)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert np.array_equal(w0, before) and a is not w0
    assert model.sgd(w0, X_tr, y_tr, steps=0, lr=0.1, batch_size=8, seed=0).tobytes() == w0.tobytes()


@pytest.mark.parametrize(("model", "lr"), [(softmax, 0.5), (mlp, 0.1)])
def test_local_training_learns_digits(model: ModuleType, lr: float, digits: tuple) -> None:
    X_tr, y_tr, X_ev, y_ev = digits
    w0 = model.init_params(64, 10, seed=0)
    w = model.local_train(w0, X_tr, y_tr, epochs=3, lr=lr, batch_size=32, seed=1)
    assert model.loss(w, X_ev, y_ev) < 0.5 * model.loss(w0, X_ev, y_ev)
    assert model.accuracy(w, X_ev, y_ev) > 0.85
    assert model.accuracy(w0, X_ev, y_ev) < 0.3


def test_local_train_is_epochs_times_steps(digits: tuple) -> None:
    X_tr, y_tr, _, _ = digits
    w0 = softmax.init_params(64, 10, seed=0)
    a = softmax.local_train(w0, X_tr[:50], y_tr[:50], epochs=2, lr=0.1, batch_size=16, seed=4)
    b = softmax.sgd(w0, X_tr[:50], y_tr[:50], steps=8, lr=0.1, batch_size=16, seed=4)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("model", MODELS)
def test_bad_inputs_raise(model: ModuleType) -> None:
    X = np.zeros((4, 3))
    w = model.init_params(3, 2, seed=0)
    with pytest.raises(MechanismError):
        model.loss(w[:-1], X, np.zeros(4, dtype=np.int64))
    with pytest.raises(MechanismError):
        model.loss(w, X, np.array([0, 1, 2, 0]))
    with pytest.raises(MechanismError):
        model.loss(w, X, np.zeros(3, dtype=np.int64))
    with pytest.raises(MechanismError):
        model.sgd(w, X, np.zeros(4, dtype=np.int64), steps=1, lr=-1.0, batch_size=2, seed=0)
    with pytest.raises(MechanismError):
        model.sgd(w, X, np.zeros(4, dtype=np.int64), steps=1, lr=0.1, batch_size=0, seed=0)
    with pytest.raises(MechanismError):
        model.local_train(w, X, np.zeros(4, dtype=np.int64), epochs=-1, lr=0.1, batch_size=2, seed=0)


def test_divergence_is_reported() -> None:
    X = np.full((4, 2), 1e200)
    w = softmax.init_params(2, 2, seed=0)
    with pytest.raises(MechanismError, match="diverged"):
        softmax.sgd(w, X, np.array([0, 1, 0, 1]), steps=3, lr=1e200, batch_size=2, seed=0)


def test_model_registry() -> None:
    assert get_model("mlp").n_params(64, 10) == mlp.n_params(64, 10)
    with pytest.raises(MechanismError):
        get_model("cnn")
