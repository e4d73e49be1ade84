"""ED and ES cost model (paper eqs. 29-32, docs/models/tbcim.md). Every function is vectorised over numpy arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import MechanismError
from .constants import TbcimConstants

DEFAULT = TbcimConstants()
Value = NDArray[np.float64] | float


def _nonneg(name: str, x: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise MechanismError(f"{name} must be finite and non-negative")
    return arr


def _out(arr: NDArray[np.float64]) -> Value:
    return float(arr) if arr.ndim == 0 else arr


def data_cost(d: ArrayLike, gamma: ArrayLike) -> Value:
    """``c^d = d gamma``: data size times unit data cost (eq. 29)."""
    return _out(_nonneg("d", d) * _nonneg("gamma", gamma))


def compute_cost(d: ArrayLike, beta: ArrayLike, C: ArrayLike, consts: TbcimConstants = DEFAULT) -> Value:
    """``c^c = d delta_1 delta_g M beta C^2`` (eq. 30): quadratic in the compute C devoted to training."""
    c = _nonneg("C", C)
    return _out(_nonneg("d", d) * consts.delta_1 * consts.delta_g * consts.M * _nonneg("beta", beta) * c * c)


def comm_cost(P_m: ArrayLike, R: ArrayLike, phi: ArrayLike, consts: TbcimConstants = DEFAULT) -> Value:
    """``c^m = P^m (M / R) delta_g phi`` (eq. 31): transmit power x upload time x unit energy cost.

    Raises:
        MechanismError: a non-positive rate ``R`` or negative inputs.
    """
    r = _nonneg("R", R)
    if np.any(r <= 0):
        raise MechanismError("R (upload rate) must be positive")
    return _out(_nonneg("P_m", P_m) * (consts.M / r) * consts.delta_g * _nonneg("phi", phi))


def blockchain_cost(n_workers: ArrayLike, p_g: ArrayLike, consts: TbcimConstants = DEFAULT) -> Value:
    """``c^b = a6 g_e p_g |W|`` (eq. 32): gas of one contract call per worker, priced at ``p_g``."""
    return _out(consts.a6 * consts.g_e * _nonneg("p_g", p_g) * _nonneg("n_workers", n_workers))
