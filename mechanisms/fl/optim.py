"""Deterministic minibatch SGD shared by the FL models."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError

Gradient = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]], NDArray[np.float64]]


def check_hyper(steps: int, lr: float, batch_size: int) -> None:
    """Reject unusable SGD settings with a :class:`MechanismError`."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise MechanismError(f"steps must be a non-negative integer, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise MechanismError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MechanismError(f"batch_size must be a positive integer, got {batch_size!r}")


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches in one pass over ``n`` samples (the last one may be short)."""
    return -(-n // batch_size)


def run_sgd(
    grad: Gradient,
    params: NDArray[np.float64],
    X: NDArray[np.float64],
    y: NDArray[np.int64],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> NDArray[np.float64]:
    """Plain SGD ``w <- w - lr * grad(w; batch)`` over seeded epoch shuffles.

    The sample order is a sequence of permutations drawn from ``numpy.random.default_rng(seed)``; each
    epoch is cut into consecutive batches of ``batch_size`` (the last batch of an epoch may be shorter).

    Returns:
        A new parameter array; ``params`` is not modified.

    Raises:
        MechanismError: bad settings, or parameters that became non-finite (learning rate too large).
    """
    check_hyper(steps, lr, batch_size)
    n = X.shape[0]
    w = np.array(params, dtype=np.float64, copy=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    pos = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(int(steps)):
            if pos >= n:
                perm = rng.permutation(n)
                pos = 0
            batch = perm[pos : pos + batch_size]
            pos += batch_size
            w -= lr * grad(w, X[batch], y[batch])
            if not np.all(np.isfinite(w)):
                break
    if not np.all(np.isfinite(w)):
        raise MechanismError(f"SGD diverged (non-finite parameters) with lr={lr}")
    return w


def epochs_to_steps(n_samples: int, epochs: int, batch_size: int) -> int:
    """SGD steps of ``epochs`` passes over ``n_samples``: ``epochs * ceil(n_samples / batch_size)``.

    Raises:
        MechanismError: ``epochs`` not a non-negative integer or ``batch_size`` not a positive one.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise MechanismError(f"epochs must be a non-negative integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MechanismError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(epochs) * steps_per_epoch(n_samples, int(batch_size))
