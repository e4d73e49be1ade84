"""Multinomial logistic (softmax) regression on a flat float64 parameter vector.

Layout: ``W`` (``n_features x n_classes``, row-major) followed by ``b`` (``n_classes``). The number of
classes is read from the vector length, ``n_params = (n_features + 1) * n_classes``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from . import linalg
from .optim import epochs_to_steps, run_sgd

Array = NDArray[np.float64]


def n_params(n_features: int, n_classes: int) -> int:
    """Length of the flat parameter vector."""
    if n_features < 1 or n_classes < 2:
        raise MechanismError(f"need n_features >= 1 and n_classes >= 2, got {n_features}, {n_classes}")
    return (n_features + 1) * n_classes


def init_params(n_features: int, n_classes: int, seed: int) -> Array:
    """Weights ``N(0, 0.01^2)`` from ``default_rng(seed)``, zero bias."""
    size = n_params(n_features, n_classes)
    w = np.zeros(size, dtype=np.float64)
    w[: n_features * n_classes] = np.random.default_rng(seed).normal(0.0, 0.01, n_features * n_classes)
    return w


def _unpack(params: Array, X: Array) -> tuple[Array, Array]:
    params, f = linalg.flat_params(params, X)
    if params.size % (f + 1) or params.size // (f + 1) < 2:
        raise MechanismError(f"{params.size} parameters do not fit a softmax model on {f} features")
    c = params.size // (f + 1)
    return params[: f * c].reshape(f, c), params[f * c :]


def _check_xy(X: Array, y: NDArray[np.int64], n_classes: int) -> tuple[Array, NDArray[np.int64]]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise MechanismError(f"y {y.shape} does not match X {X.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise MechanismError(f"labels must lie in 0..{n_classes - 1}")
    return X, y.astype(np.int64)


def _logits(params: Array, X: Array) -> Array:
    W, b = _unpack(params, X)
    return linalg.dot(X, W) + b


def predict_proba(params: Array, X: Array) -> Array:
    """Class probabilities ``[n, n_classes]``."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return linalg.softmax(_logits(params, X))


def loss(params: Array, X: Array, y: NDArray[np.int64]) -> float:
    """Mean cross-entropy (log-sum-exp with the row maximum subtracted; exactly rounded mean).

    Raises:
        MechanismError: shapes that do not match or labels out of range.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    _, b = _unpack(params, X)
    X, y = _check_xy(X, y, b.size)
    logp = linalg.log_softmax(_logits(params, X))
    return linalg.mean(-logp[np.arange(y.size), y])


def accuracy(params: Array, X: Array, y: NDArray[np.int64]) -> float:
    """Share of samples whose most probable class (lowest index on ties) is the label."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    _, b = _unpack(params, X)
    X, y = _check_xy(X, y, b.size)
    return float(np.mean(np.argmax(_logits(params, X), axis=1) == y))


def gradient(params: Array, X: Array, y: NDArray[np.int64]) -> Array:
    """Gradient of :func:`loss` with respect to the flat parameters."""
    W, b = _unpack(params, X)
    p = linalg.softmax(linalg.dot(X, W) + b)
    p[np.arange(y.size), y] -= 1.0
    delta = p / y.size
    return np.concatenate([linalg.dot(np.ascontiguousarray(X.T), delta).ravel(), linalg.column_sum(delta)])


def sgd(
    params: Array, X: Array, y: NDArray[np.int64], *, steps: int, lr: float, batch_size: int, seed: int
) -> Array:
    """``steps`` deterministic minibatch SGD steps (see :func:`bazaar.mechanisms.fl.optim.run_sgd`)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    _, b = _unpack(params, X)
    X, y = _check_xy(X, y, b.size)
    return run_sgd(gradient, params, X, y, steps=steps, lr=lr, batch_size=batch_size, seed=seed)


def local_train(
    params: Array, X: Array, y: NDArray[np.int64], *, epochs: int, lr: float, batch_size: int, seed: int
) -> Array:
    """``epochs`` passes over the local data: ``epochs * ceil(n / batch_size)`` SGD steps."""
    steps = epochs_to_steps(np.asarray(X).shape[0], epochs, batch_size)
    return sgd(params, X, y, steps=steps, lr=lr, batch_size=batch_size, seed=seed)
