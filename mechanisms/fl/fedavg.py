"""Deterministic FedAvg, the aggregation every ES re-executes when it validates a block."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError


def fedavg(updates: Sequence[NDArray[np.float64]], weights: Sequence[float]) -> NDArray[np.float64]:
    """Weighted average ``sum_i (w_i / W) * u_i`` with ``W = fsum(w)``.

    The weights are normalised with an exactly rounded total, and the sum runs over the updates in the
    given order with element-wise float64 operations, so the same inputs give the same bytes on any
    machine. Weights are usually the clients' sample counts.

    Args:
        updates: parameter vectors (or deltas) of one shape.
        weights: non-negative finite weights with a positive total, one per update.

    Returns:
        A new float64 array.

    Raises:
        MechanismError: no updates, mismatched lengths or shapes, non-finite values, bad weights.
    """
    if len(updates) == 0:
        raise MechanismError("fedavg needs at least one update")
    if len(weights) != len(updates):
        raise MechanismError(f"{len(updates)} updates but {len(weights)} weights")
    ws = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in ws):
        raise MechanismError("weights must be finite and non-negative")
    total = math.fsum(ws)
    if total <= 0:
        raise MechanismError("weights must have a positive total")
    first = np.asarray(updates[0], dtype=np.float64)
    out = np.zeros_like(first)
    for u, w in zip(updates, ws, strict=True):
        arr = np.asarray(u, dtype=np.float64)
        if arr.shape != first.shape:
            raise MechanismError(f"update shape {arr.shape} differs from {first.shape}")
        if not np.all(np.isfinite(arr)):
            raise MechanismError("updates must be finite")
        out += (w / total) * arr
    return out
