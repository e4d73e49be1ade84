"""Client selection (Algorithm 2, with the comparison the right way round; docs/models/tbcim.md)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import MechanismError

REL_TOL = 1e-12


def select_clients(emds: ArrayLike) -> NDArray[np.int64]:
    """Indices of the EDs whose EMD is at most the ES's average EMD.

    Lower EMD means closer to the task's distribution, so these are the better half; the paper's
    ``theta_{s,n} >= theta_s`` would keep the worst. The mean is exactly rounded (``math.fsum``) and
    compared with a relative tolerance of 1e-12, so equal EMDs are all kept.

    Args:
        emds: the EDs' EMDs (non-negative, at least one).

    Returns:
        Sorted int64 indices, never empty.

    Raises:
        MechanismError: empty input, or negative / non-finite EMDs.
    """
    e = np.asarray(emds, dtype=np.float64)
    if e.ndim != 1 or e.size == 0:
        raise MechanismError("select_clients needs a non-empty 1-D array of EMDs")
    if not np.all(np.isfinite(e)) or np.any(e < 0):
        raise MechanismError("EMDs must be finite and non-negative")
    mean = math.fsum(e.tolist()) / e.size
    return np.flatnonzero(e <= mean * (1.0 + REL_TOL)).astype(np.int64)
