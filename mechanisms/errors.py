"""Errors of the numerical core."""

from __future__ import annotations


class MechanismError(ValueError):
    """Inputs a mechanism cannot work with (empty market, inconsistent sizes, infeasible bounds)."""


class ConvergenceError(MechanismError):
    """An iterative solver did not reach its tolerance within its iteration cap."""

    def __init__(self, message: str, *, iterations: int, residual: float) -> None:
        self.iterations = iterations
        self.residual = residual
        super().__init__(f"{message} (after {iterations} iterations, residual {residual:.3g})")
