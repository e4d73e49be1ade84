"""Private gradients (docs/models/cloudchain.md §Privacy): clip each update to norm C and add Gaussian noise
N(0, σ²·I); σ is calibrated so that the ``steps`` releases of one task together meet its (ε, δ), and an
accountant composes every release a requester's dataset has made and refuses one that would exceed its budget.

Accounting is Rényi DP of the Gaussian mechanism (Mironov 2017): a release of noise multiplier z has RDP
``α/(2z²)`` at every order α, compositions add, and ε at δ is the improved conversion of Canonne, Kamath and
Steinke (2020, Prop. 12) minimised over the orders — exactly what Google's ``dp-accounting`` ``RdpAccountant``
computes for unsampled Gaussian events. That closed form is all a full-batch release needs, so nodes compute it
here (the library costs a node ≈ 80 MB of memory); ``dp-accounting`` stays the reference the tests hold it equal
to (docs/adr/0090).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


class BudgetExceeded(ValueError):
    """A release would take a dataset past its privacy budget.

    Attributes:
        task: the task whose release was refused.
        spent: ε already spent (at the budget's δ) before it.
        budget: the ε budget.
    """

    def __init__(self, task: str, spent: float, would: float, budget: float) -> None:
        super().__init__(f"task {task!r} would take the privacy budget to ε = {would:.3f} > {budget:g} "
                         f"(ε = {spent:.3f} already spent)")
        self.task = task
        self.spent = spent
        self.budget = budget


def clip(update: np.ndarray, bound: float) -> np.ndarray:
    """``update`` scaled down to L2 norm at most ``bound``."""
    norm = float(np.linalg.norm(update))
    return update if norm <= bound or norm == 0 else update * (bound / norm)


def privatize(update: np.ndarray, clip_bound: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``clip(update, C) + N(0, σ²·I)`` (σ in the update's units: the noise multiplier is σ/C)."""
    return clip(update, clip_bound) + rng.normal(0.0, sigma, size=update.shape)


ORDERS: tuple[float, ...] = (*(1 + x / 10.0 for x in range(1, 100)), *map(float, range(11, 64)),
                              128.0, 256.0, 512.0, 1024.0)
"""The Rényi orders (``dp-accounting``'s defaults)."""


def epsilon_of(events: tuple[tuple[float, int], ...], delta: float) -> float:
    """ε at ``delta`` of the composition of ``(noise multiplier, count)`` full-batch Gaussian releases (RDP).

    Pure, and cached: every validator checks the same task's budget against the same releases (in one process,
    ``bazaar sim``, all of them), and each evaluation costs ≈ 2 ms of Python over the Rényi orders."""
    return _epsilon_cached(tuple((float(z), int(c)) for z, c in events), float(delta))


@lru_cache(maxsize=16_384)
def _epsilon_cached(events: tuple[tuple[float, int], ...], delta: float) -> float:
    if not events:
        return 0.0
    best = math.inf
    for a in ORDERS:
        rdp = sum(count * a / (2 * z * z) for z, count in events)
        if delta**2 + math.expm1(-rdp) > 0:
            eps = 0.0
        elif a > 1.01:
            eps = rdp + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            eps = math.inf
        best = min(best, eps)
    return max(0.0, best)


_epsilon = epsilon_of


@lru_cache(maxsize=4096)
def _multiplier(epsilon: float, delta: float, steps: int) -> float:
    lo, hi = 1e-3, 1.0
    while _epsilon(((hi, steps),), delta) > epsilon:
        hi *= 2
        if hi > 1e6:
            raise ValueError(f"no noise meets ε = {epsilon} at δ = {delta} over {steps} steps")
    for _ in range(60):
        mid = (lo + hi) / 2
        if _epsilon(((mid, steps),), delta) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi


def gaussian_sigma(epsilon: float, delta: float, clip_bound: float, steps: int) -> float:
    """σ (in update units) such that ``steps`` clipped Gaussian releases together are (ε, δ)-DP: the smallest
    noise multiplier z found by bisection on the RDP accountant, times the clip bound."""
    if epsilon <= 0 or not 0 < delta < 1 or steps < 1 or clip_bound <= 0:
        raise ValueError("need epsilon > 0, 0 < delta < 1, steps >= 1, clip > 0")
    return _multiplier(float(epsilon), float(delta), int(steps)) * clip_bound


class PrivacyAccountant:
    """The budget of one dataset: composes every release (``(noise multiplier, steps)``) it made."""

    def __init__(self, epsilon: float, delta: float) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.events: list[tuple[float, int]] = []

    def spent(self) -> float:
        """ε spent so far at the budget's δ."""
        return _epsilon(tuple(self.events), self.delta)

    def check(self, task: str, sigma_multiplier: float, steps: int) -> float:
        """ε after a release of ``steps`` Gaussian steps with noise multiplier ``sigma_multiplier``; nothing is
        recorded.

        Raises:
            BudgetExceeded: it would exceed the budget (the message names the task and the budget spent).
        """
        would = _epsilon((*self.events, (sigma_multiplier, steps)), self.delta)
        if would > self.epsilon + 1e-9:
            raise BudgetExceeded(task, self.spent(), would, self.epsilon)
        return would

    def spend(self, task: str, sigma_multiplier: float, steps: int) -> float:
        """:meth:`check`, then record the release."""
        would = self.check(task, sigma_multiplier, steps)
        self.events.append((sigma_multiplier, steps))
        return would
