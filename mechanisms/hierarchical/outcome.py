"""The outcome of a hierarchical round, as the CLI and the network node report it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .levels import DECOMPOSABLE
from .market import NO_TRADE


@dataclass
class Outcome:
    """Allocation, payments and figures of one single-CCSP round.

    Attributes:
        assignment: ``(N,)`` MESP index per miner, −1 if not served.
        bundles: ``(M,)`` cloud units ``c_j`` per MESP.
        miner_payments: ``(N,)`` what each miner pays its MESP.
        mesp_payments: ``(M,)`` what each MESP pays the CCSP.
        welfare: ``Σ_ij (v_i − a_j d_i) x_ij − κ Σ_j c_j`` of this allocation.
        utilization: served demand over the total capacity ``C``.
        optimum_welfare: welfare of the joint MILP (``None`` when not computed).
        upper, lower: the methods used.
        mesp_revenue: ``(M,)`` what each MESP collects from its miners.
        mesp_ask_cost: ``(M,)`` its asks on the units it serves, ``a_j Σ d_i``.
        bundle_bids: ``(M, K)`` the MESPs' bundle bids (empty in the joint mode).
        upper_welfare: ``Σ (b_j(c_j) − κ c_j)`` of the upper clearing on the bundle bids (``None`` in the joint
            mode, which has no separate upper clearing).
    """

    assignment: np.ndarray
    bundles: np.ndarray
    miner_payments: np.ndarray
    mesp_payments: np.ndarray
    welfare: float
    utilization: float
    optimum_welfare: float | None
    upper: str
    lower: str
    mesp_revenue: np.ndarray
    mesp_ask_cost: np.ndarray
    bundle_bids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    upper_welfare: float | None = None

    @property
    def mesp_margin(self) -> np.ndarray:
        """``(M,)`` revenue − asks − payment to the CCSP for each MESP (see the docs on its sign)."""
        return self.mesp_revenue - self.mesp_ask_cost - self.mesp_payments

    @property
    def gap(self) -> float | None:
        """Relative welfare gap to the joint optimum (``None`` without the optimum)."""
        if self.optimum_welfare is None:
            return None
        if abs(self.optimum_welfare) < 1e-12:
            return 0.0
        return float((self.optimum_welfare - self.welfare) / abs(self.optimum_welfare))

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict: the SPEC's keys plus a ``details`` block.

        ``utilization`` and ``utilisation`` carry the same number (both spellings are read).
        """
        return {
            "assignment": [None if int(j) == NO_TRADE else int(j) for j in self.assignment],
            "bundles": [float(c) for c in self.bundles],
            "miner_payments": [float(p) for p in self.miner_payments],
            "mesp_payments": [float(p) for p in self.mesp_payments],
            "welfare": float(self.welfare),
            "utilization": float(self.utilization),
            "utilisation": float(self.utilization),
            "optimum_welfare": None if self.optimum_welfare is None else float(self.optimum_welfare),
            "upper_welfare": None if self.upper_welfare is None else float(self.upper_welfare),
            "details": {
                "upper": self.upper,
                "lower": self.lower,
                "decomposable": (self.upper, self.lower) in DECOMPOSABLE,
                "gap_to_optimum": self.gap,
                "mesp_revenue": [float(x) for x in self.mesp_revenue],
                "mesp_ask_cost": [float(x) for x in self.mesp_ask_cost],
                "mesp_margin": [float(x) for x in self.mesp_margin],
                "ccsp_revenue": float(self.mesp_payments.sum()),
                "bundle_bids": [[float(x) for x in row] for row in self.bundle_bids],
            },
        }
