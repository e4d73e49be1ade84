"""Fixed-order float64 kernels shared by the FL models.

Proof-of-Learning validators re-compute a miner's claimed loss, and every ES re-executes FedAvg, so the
numbers must not depend on BLAS blocking, thread counts or SIMD reduction trees. Every product below
accumulates its inner dimension one index at a time with element-wise numpy operations (each of which is
a correctly rounded IEEE-754 operation on every element), and scalar totals use :func:`math.fsum`
(exactly rounded). The only platform-dependent pieces left are numpy's ``exp``/``log`` ufuncs, which are
deterministic for one numpy build on one CPU.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError

Array = NDArray[np.float64]


def dot(a: Array, b: Array) -> Array:
    """Matrix product ``a @ b`` with the inner dimension summed in index order.

    Args:
        a: ``[m, k]`` float64.
        b: ``[k, n]`` float64.

    Returns:
        ``[m, n]`` float64, bit-identical for identical inputs on any thread count.
    """
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=np.float64)
    for j in range(k):
        out += a[:, j, None] * b[j]
    return out


def column_sum(a: Array) -> Array:
    """Sum of the rows of ``a`` (``a.sum(axis=0)``) accumulated in row order."""
    out = np.zeros(a.shape[1], dtype=np.float64)
    for row in a:
        out += row
    return out


def row_sum(a: Array) -> Array:
    """Sum of the columns of ``a`` (``a.sum(axis=1)``) accumulated in column order."""
    out = np.zeros(a.shape[0], dtype=np.float64)
    for j in range(a.shape[1]):
        out += a[:, j]
    return out


def log_softmax(logits: Array) -> Array:
    """Numerically stable row-wise log-softmax (max subtracted before ``exp``)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(row_sum(np.exp(shifted)))[:, None]


def softmax(logits: Array) -> Array:
    """Row-wise softmax, the exponential of :func:`log_softmax`."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / row_sum(e)[:, None]


def mean(values: Array) -> float:
    """Exactly rounded mean of a 1-D array (``math.fsum``)."""
    return math.fsum(values.tolist()) / len(values)


def flat_params(params: Array, X: Array) -> tuple[Array, int]:
    """A model's flat float64 parameter vector and the feature count of ``X``, both checked.

    Raises:
        MechanismError: ``params`` is not a flat vector or ``X`` not a non-empty 2-D array.
    """
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 1:
        raise MechanismError("params must be a flat vector")
    if X.ndim != 2 or X.shape[0] == 0:
        raise MechanismError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    return params, int(X.shape[1])
