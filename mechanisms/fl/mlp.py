"""A one-hidden-layer perceptron (ReLU, softmax output) on a flat float64 parameter vector.

Layout: ``W1`` (``n_features x hidden``), ``b1`` (``hidden``), ``W2`` (``hidden x n_classes``), ``b2``
(``n_classes``), each row-major, concatenated. ``n_params = (n_features + 1) * hidden + (hidden + 1) *
n_classes``; the number of classes is read from the vector length given ``hidden`` (default
:data:`HIDDEN`). ReLU keeps the hidden layer free of transcendental functions, so the only ``exp``/``log``
calls are in the output layer.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from . import linalg
from .optim import epochs_to_steps, run_sgd

Array = NDArray[np.float64]
HIDDEN = 32


def n_params(n_features: int, n_classes: int, hidden: int = HIDDEN) -> int:
    """Length of the flat parameter vector."""
    if n_features < 1 or n_classes < 2 or hidden < 1:
        raise MechanismError(
            f"need n_features >= 1, n_classes >= 2, hidden >= 1, got {n_features}, {n_classes}, {hidden}"
        )
    return (n_features + 1) * hidden + (hidden + 1) * n_classes


def init_params(n_features: int, n_classes: int, seed: int, hidden: int = HIDDEN) -> Array:
    """He-normal first layer, ``N(0, 1/hidden)`` second layer, zero biases, from ``default_rng(seed)``."""
    size = n_params(n_features, n_classes, hidden)
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, np.sqrt(2.0 / n_features), n_features * hidden)
    w2 = rng.normal(0.0, np.sqrt(1.0 / hidden), hidden * n_classes)
    out = np.zeros(size, dtype=np.float64)
    out[: w1.size] = w1
    start = w1.size + hidden
    out[start : start + w2.size] = w2
    return out


def _unpack(params: Array, X: Array, hidden: int) -> tuple[Array, Array, Array, Array]:
    params, f = linalg.flat_params(params, X)
    rest = params.size - (f + 1) * hidden
    if hidden < 1 or rest <= 0 or rest % (hidden + 1) or rest // (hidden + 1) < 2:
        raise MechanismError(f"{params.size} parameters do not fit an MLP ({f} features, {hidden} hidden)")
    c = rest // (hidden + 1)
    i = 0
    W1 = params[i : i + f * hidden].reshape(f, hidden)
    i += f * hidden
    b1 = params[i : i + hidden]
    i += hidden
    W2 = params[i : i + hidden * c].reshape(hidden, c)
    i += hidden * c
    return W1, b1, W2, params[i:]


def _check_xy(X: Array, y: NDArray[np.int64], n_classes: int) -> tuple[Array, NDArray[np.int64]]:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise MechanismError(f"y {y.shape} does not match X {X.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise MechanismError(f"labels must lie in 0..{n_classes - 1}")
    return X, y.astype(np.int64)


def _forward(params: Array, X: Array, hidden: int) -> tuple[Array, Array]:
    W1, b1, W2, b2 = _unpack(params, X, hidden)
    h = np.maximum(linalg.dot(X, W1) + b1, 0.0)
    return h, linalg.dot(h, W2) + b2


def predict_proba(params: Array, X: Array, *, hidden: int = HIDDEN) -> Array:
    """Class probabilities ``[n, n_classes]``."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return linalg.softmax(_forward(params, X, hidden)[1])


def loss(params: Array, X: Array, y: NDArray[np.int64], *, hidden: int = HIDDEN) -> float:
    """Mean cross-entropy (stable log-softmax, exactly rounded mean).

    Raises:
        MechanismError: shapes that do not match or labels out of range.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    b2 = _unpack(params, X, hidden)[3]
    X, y = _check_xy(X, y, b2.size)
    logp = linalg.log_softmax(_forward(params, X, hidden)[1])
    return linalg.mean(-logp[np.arange(y.size), y])


def accuracy(params: Array, X: Array, y: NDArray[np.int64], *, hidden: int = HIDDEN) -> float:
    """Share of samples whose most probable class (lowest index on ties) is the label."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    b2 = _unpack(params, X, hidden)[3]
    X, y = _check_xy(X, y, b2.size)
    return float(np.mean(np.argmax(_forward(params, X, hidden)[1], axis=1) == y))


def gradient(params: Array, X: Array, y: NDArray[np.int64], *, hidden: int = HIDDEN) -> Array:
    """Gradient of :func:`loss` with respect to the flat parameters (back-propagation)."""
    W1, b1, W2, b2 = _unpack(params, X, hidden)
    pre = linalg.dot(X, W1) + b1
    h = np.maximum(pre, 0.0)
    p = linalg.softmax(linalg.dot(h, W2) + b2)
    p[np.arange(y.size), y] -= 1.0
    d2 = p / y.size
    g_w2 = linalg.dot(np.ascontiguousarray(h.T), d2)
    g_b2 = linalg.column_sum(d2)
    d1 = linalg.dot(d2, np.ascontiguousarray(W2.T)) * (pre > 0.0)
    g_w1 = linalg.dot(np.ascontiguousarray(X.T), d1)
    g_b1 = linalg.column_sum(d1)
    return np.concatenate([g_w1.ravel(), g_b1, g_w2.ravel(), g_b2])


def sgd(
    params: Array,
    X: Array,
    y: NDArray[np.int64],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    hidden: int = HIDDEN,
) -> Array:
    """``steps`` deterministic minibatch SGD steps (see :func:`bazaar.mechanisms.fl.optim.run_sgd`)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    b2 = _unpack(params, X, hidden)[3]
    X, y = _check_xy(X, y, b2.size)

    def grad(w: Array, xb: Array, yb: NDArray[np.int64]) -> Array:
        return gradient(w, xb, yb, hidden=hidden)

    return run_sgd(grad, params, X, y, steps=steps, lr=lr, batch_size=batch_size, seed=seed)


def local_train(
    params: Array,
    X: Array,
    y: NDArray[np.int64],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    hidden: int = HIDDEN,
) -> Array:
    """``epochs`` passes over the local data: ``epochs * ceil(n / batch_size)`` SGD steps."""
    steps = epochs_to_steps(np.asarray(X).shape[0], epochs, batch_size)
    return sgd(params, X, y, steps=steps, lr=lr, batch_size=batch_size, seed=seed, hidden=hidden)
