"""The BCFL poisoning filter: an update must point the way the same client's earlier updates did."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError


def cosine_similarity(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """``a.b / (|a| |b|)`` with exactly rounded sums; 0.0 when either vector is zero.

    Raises:
        MechanismError: shapes differ or values are not finite.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    z = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != z.shape:
        raise MechanismError(f"cannot compare shapes {x.shape} and {z.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(z))):
        raise MechanismError("vectors must be finite")
    na = math.sqrt(math.fsum((x * x).tolist()))
    nb = math.sqrt(math.fsum((z * z).tolist()))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return max(-1.0, min(1.0, math.fsum((x * z).tolist()) / (na * nb)))


class UpdateFilter:
    """Per-client cosine filter of the paper's BCFL (docs/models/tbcim.md).

    An update is accepted when its mean cosine similarity with the client's last ``history`` recorded
    updates is at least ``threshold``; a client's first update is always accepted. :meth:`check` does not
    change the state; :meth:`record` stores an update (callers record accepted updates only, so a
    rejected direction never becomes the reference).

    Args:
        threshold: the paper's epsilon, in [-1, 1].
        history: how many earlier updates per client are kept (>= 1).
    """

    def __init__(self, threshold: float, history: int) -> None:
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise MechanismError(f"threshold must lie in [-1, 1], got {threshold}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise MechanismError(f"history must be a positive integer, got {history!r}")
        self.threshold = float(threshold)
        self.history = history
        self._seen: dict[str, deque[NDArray[np.float64]]] = {}

    def score(self, client_id: str, update: NDArray[np.float64]) -> float | None:
        """Mean cosine similarity with the client's stored updates, ``None`` if it has none."""
        past = self._seen.get(client_id)
        if not past:
            return None
        return math.fsum(cosine_similarity(old, update) for old in past) / len(past)

    def check(self, client_id: str, update: NDArray[np.float64]) -> bool:
        """Whether ``update`` passes (first update of a client: always)."""
        s = self.score(client_id, update)
        return s is None or s >= self.threshold

    def record(self, client_id: str, update: NDArray[np.float64]) -> None:
        """Store a copy of ``update`` as the client's latest accepted update."""
        arr = np.array(update, dtype=np.float64, copy=True)
        if not np.all(np.isfinite(arr)):
            raise MechanismError("updates must be finite")
        past = self._seen.setdefault(client_id, deque(maxlen=self.history))
        if past and past[0].shape != arr.shape:
            raise MechanismError(f"update shape {arr.shape} differs from the earlier {past[0].shape}")
        past.append(arr)

    def clients(self) -> list[str]:
        """Clients with a stored history, sorted."""
        return sorted(self._seen)
