"""EMD, model quality q(D, theta) and data utility U_d (paper eqs. 26-28, docs/models/tbcim.md)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import MechanismError
from .constants import TbcimConstants

DEFAULT = TbcimConstants()


def emd(p: ArrayLike, p_ref: ArrayLike) -> float:
    """Earth mover's distance of the paper, ``sum_j |p_j - p_ref_j|`` (the L1 distance, in [0, 2]).

    Args:
        p: a label distribution.
        p_ref: the requester's reference distribution, same length.

    Raises:
        MechanismError: lengths differ, negative or non-finite entries, or a vector not summing to 1.
    """
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(p_ref, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise MechanismError(f"distributions must be 1-D of one length, got {a.shape} and {b.shape}")
    for name, v in (("p", a), ("p_ref", b)):
        if not np.all(np.isfinite(v)) or np.any(v < 0) or abs(float(v.sum()) - 1.0) > 1e-9:
            raise MechanismError(f"{name} must be a probability vector")
    return float(np.abs(a - b).sum())


def alpha(mean_emd: ArrayLike, consts: TbcimConstants = DEFAULT) -> NDArray[np.float64] | float:
    """``alpha(theta) = exp(-(theta * theta_unit / a4 + a3)^2)``, the distribution term of q."""
    t = np.asarray(mean_emd, dtype=np.float64)
    out = np.exp(-((t * consts.theta_unit / consts.a4 + consts.a3) ** 2))
    return float(out) if out.ndim == 0 else out


def quality(
    total_data: ArrayLike, mean_emd: ArrayLike, consts: TbcimConstants = DEFAULT
) -> NDArray[np.float64] | float:
    """Model quality ``q = alpha(theta) - a1 exp(-(a2 D d_unit)^alpha(theta))`` (eq. 27).

    Vectorised: arrays broadcast against each other. ``D = 0`` and ``theta = 0`` give the paper's
    value of the empty worker set, ``alpha(0) - a1``.

    Args:
        total_data: D, the workers' total data size in samples (>= 0).
        mean_emd: theta bar, the workers' mean EMD (>= 0).
        consts: the model constants.

    Raises:
        MechanismError: negative or non-finite inputs.
    """
    d = np.asarray(total_data, dtype=np.float64)
    t = np.asarray(mean_emd, dtype=np.float64)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(t))) or np.any(d < 0) or np.any(t < 0):
        raise MechanismError("data size and EMD must be finite and non-negative")
    a = np.exp(-((t * consts.theta_unit / consts.a4 + consts.a3) ** 2))
    out = a - consts.a1 * np.exp(-((consts.a2 * consts.d_unit * d) ** a))
    return float(out) if out.ndim == 0 else out


def data_utility(
    total_data: ArrayLike, mean_emd: ArrayLike, consts: TbcimConstants = DEFAULT
) -> NDArray[np.float64] | float:
    """Data utility ``U_d = a5 q(D, theta)`` (eq. 28); vectorised like :func:`quality`."""
    q = quality(total_data, mean_emd, consts)
    return consts.a5 * q


def set_quality(d: ArrayLike, emds: ArrayLike, consts: TbcimConstants = DEFAULT) -> float:
    """q(W) of a worker set given its members' data sizes and EMDs (``theta(empty) = 0``)."""
    dd = np.asarray(d, dtype=np.float64)
    ee = np.asarray(emds, dtype=np.float64)
    if dd.shape != ee.shape or dd.ndim != 1:
        raise MechanismError("d and emds must be 1-D arrays of one length")
    mean = float(ee.mean()) if ee.size else 0.0
    return float(quality(float(dd.sum()), mean, consts))
