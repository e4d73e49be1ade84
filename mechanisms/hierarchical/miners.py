"""The miner model (docs/models/hierarchical.md): hash share, orphan factor, reward, ex-ante and ex-post valuations.

Miner ``i`` requests ``d_i`` units and mines blocks of ``s_i`` transactions. Its hash share is
``h_i = d_i x_i / Σ_k d_k x_k``; blocks arrive at Poisson rate ``λ`` and a block of size ``s`` propagates in
``z·s`` seconds, so it is orphaned with probability ``1 − e^{−λ z s}``; a block pays ``R + r·s``. The ex-ante
valuation (the bid) is ``v_i = (R + r s_i)·h_i·e^{−λ z s_i}`` with ``h_i`` evaluated at the expected allocation
(every bidder served: ``h_i = d_i / Σ_k d_k``); the ex-post valuation is ``V_i = w(D)·v_i`` with the network effect
``w`` of the total allocated units ``D``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bazaar.mechanisms.errors import MechanismError


class NetworkEffect(Protocol):
    """A network effect ``w(D) ∈ [0, 1]`` of the total allocated units ``D``."""

    def __call__(self, total_units: float) -> float:
        """``w(D)``."""
        ...


@dataclass(frozen=True)
class SShapedEffect:
    """``w(D) = (1 − e^{−a D/D_ref}) / (1 + b e^{−a D/D_ref})`` (the paper's form, with ``D`` normalised).

    The paper's ``a = 1, b = 0.5`` on raw MIPS give ``w ≡ 1`` for any real allocation (``e^{−1000}``); dividing
    ``D`` by a reference scale ``D_ref`` (we use a quarter of the system capacity, so ``w`` climbs over the range
    of allocations that actually occur) keeps the curve informative.
    """

    a: float = 1.0
    b: float = 0.5
    reference: float = 1.0

    def __post_init__(self) -> None:
        if not (self.a > 0 and self.b >= 0 and self.reference > 0):
            raise MechanismError("network effect needs a > 0, b >= 0 and a positive reference scale")

    def __call__(self, total_units: float) -> float:
        """``w(D)``."""
        e = float(np.exp(-self.a * max(total_units, 0.0) / self.reference))
        return (1.0 - e) / (1.0 + self.b * e)


@dataclass(frozen=True)
class NoEffect:
    """``w ≡ 1`` (ex-post equals ex-ante)."""

    def __call__(self, total_units: float) -> float:
        """Always 1."""
        return 1.0


@dataclass(frozen=True)
class MinerPopulation:
    """Miners of one round.

    Attributes:
        demand: ``(N,)`` units ``d_i``.
        block_size: ``(N,)`` transactions per block ``s_i``.
        fixed_reward: ``R``.
        fee_rate: ``r`` per transaction.
        block_rate: ``λ`` (blocks per second).
        delay_per_tx: ``z`` (seconds of propagation per transaction).
    """

    demand: np.ndarray
    block_size: np.ndarray
    fixed_reward: float
    fee_rate: float
    block_rate: float = 1.0 / 600.0
    delay_per_tx: float = 0.1

    def __post_init__(self) -> None:
        if self.demand.shape != self.block_size.shape or self.demand.ndim != 1:
            raise MechanismError("demand and block_size must be 1-D arrays of one length")
        if np.any(self.demand <= 0) or np.any(self.block_size < 0):
            raise MechanismError("demands must be positive and block sizes non-negative")
        if min(self.fixed_reward, self.fee_rate, self.block_rate, self.delay_per_tx) < 0:
            raise MechanismError("R, r, λ and z must be non-negative")


def hash_share(demand: np.ndarray, served: np.ndarray) -> np.ndarray:
    """``h_i = d_i x_i / Σ_k d_k x_k`` (zeros when nobody is served)."""
    x = np.asarray(served, dtype=bool)
    total = float(np.asarray(demand)[x].sum())
    return np.where(x, demand / total, 0.0) if total > 0 else np.zeros(len(demand))


def orphan_factor(pop: MinerPopulation) -> np.ndarray:
    """Probability ``e^{−λ z s_i}`` that a block is not orphaned."""
    return np.exp(-pop.block_rate * pop.delay_per_tx * pop.block_size)


def block_reward(pop: MinerPopulation) -> np.ndarray:
    """``R + r s_i``."""
    return pop.fixed_reward + pop.fee_rate * pop.block_size


def ex_ante_valuation(pop: MinerPopulation) -> np.ndarray:
    """Bids ``v_i = (R + r s_i)·(d_i/Σ d)·e^{−λ z s_i}``."""
    return block_reward(pop) * hash_share(pop.demand, np.ones(len(pop.demand), bool)) * orphan_factor(pop)


def success_probability(pop: MinerPopulation, served: np.ndarray) -> np.ndarray:
    """``P_i = h_i e^{−λ z s_i}`` of the realised allocation."""
    return hash_share(pop.demand, served) * orphan_factor(pop)


def ex_post_valuation(pop: MinerPopulation, served: np.ndarray, effect: NetworkEffect) -> np.ndarray:
    """``V_i = w(D)·v_i`` for the served miners (0 otherwise), ``D`` the total served demand."""
    x = np.asarray(served, dtype=bool)
    w = effect(float(pop.demand[x].sum()))
    return np.where(x, w * ex_ante_valuation(pop), 0.0)


def paper_population(n: int, rng: np.random.Generator, fixed_reward: float | None = None,
                     fee_rate: float | None = None) -> MinerPopulation:
    """Miners drawn with the paper's values: ``d_i, s_i ∈ U{100..1000}``, ``R ∈ [0, 6]``, ``r ∈ [0.002, 0.01]``.

    ``R`` and ``r`` are protocol constants, drawn once per round unless given.
    """
    if n < 1:
        raise MechanismError("at least one miner")
    d = rng.integers(100, 1001, n).astype(float)
    s = rng.integers(100, 1001, n).astype(float)
    big_r = float(rng.uniform(0.0, 6.0)) if fixed_reward is None else fixed_reward
    small_r = float(rng.uniform(0.002, 0.01)) if fee_rate is None else fee_rate
    return MinerPopulation(d, s, big_r, small_r)
