"""The TBCIM model constants (docs/models/tbcim.md; paper Section V-A)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import MechanismError


@dataclass(frozen=True)
class TbcimConstants:
    """Curve-fit and cost constants, paper values by default.

    Attributes:
        a1, a2, a3, a4: quality curve fit, ``q = alpha(theta) - a1 exp(-(a2 D)^alpha(theta))``,
            ``alpha(theta) = exp(-(theta / a4 + a3)^2)``.
        a5: profit per unit of quality, ``U_d = a5 q``.
        a6: gas-to-cost factor of the blockchain cost ``c^b = a6 g_e p_g |W|``.
        g_e: gas per ED smart-contract call.
        M: model size.
        delta_g: global epochs.
        delta_1: local epochs.
        eta: FL learning rate.
        d_unit: samples -> the paper's data-size unit; ``D`` enters the curve as ``D * d_unit``. 1.0 keeps
            the paper's unit (samples of a CIFAR-10-sized task); see docs/models/tbcim.md.
        theta_unit: EMD -> the paper's EMD unit; ``theta`` enters the curve as ``theta * theta_unit``.
            With the paper's ``a4 = 1e5`` and an EMD ``sum_j |P - P_r|`` in [0, 2], ``alpha`` would be
            constant (``theta / a4 <= 2e-5``); the default ``a4 / 2`` maps the largest possible EMD to
            ``theta / a4 = 1`` so that the distribution term matters (docs/models/tbcim.md).
    """

    a1: float = 0.87
    a2: float = 1e-5
    a3: float = 0.13
    a4: float = 1e5
    a5: float = 0.64
    a6: float = 3.48e-2
    g_e: float = 7.68e4
    M: float = 0.5
    delta_g: float = 100
    delta_1: float = 5
    eta: float = 0.01
    d_unit: float = 1.0
    theta_unit: float = 5e4

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise MechanismError(f"TbcimConstants.{f.name} must be a positive finite number, got {v!r}")

    @classmethod
    def paper_units(cls) -> TbcimConstants:
        """The paper's constants with no unit scaling at all (``theta_unit = 1``)."""
        return cls(theta_unit=1.0)
