"""Auction settings: who the sellers are, what the requester values, how bids enter the network.

A setting fixes the distribution of seller types, the requester's reserve ``b_bar`` (the most it pays one
seller), the gross value ``V(z)`` of a (fractional) allocation and the normalisation of the network input.
Every function here is numpy; :mod:`.training` mirrors ``features`` and ``value`` in torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import MechanismError


@dataclass(frozen=True)
class Setting(ABC):
    """What a RANet is trained for.

    Attributes:
        name: registry key (``single-uniform``, ``tbcim``).
        head: allocation head the setting uses (``single`` or ``multi``).
        reserve: ``b_bar``, the requester's per-seller reserve; bids above it never win.
        profile_width: number of public profile numbers per seller (0: bids only).
    """

    name: str
    head: str
    reserve: float
    profile_width: int

    def n_inputs(self, sellers: int) -> int:
        """Width of the network input for ``sellers`` sellers."""
        return sellers * (1 + self.profile_width)

    @abstractmethod
    def sample(
        self, rng: np.random.Generator, batch: int, sellers: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw true costs ``(batch, S)`` and profiles ``(batch, S, profile_width)`` (or None)."""

    @abstractmethod
    def features(self, bids: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """Normalised network input ``(batch, n_inputs)``."""

    @abstractmethod
    def value(self, z: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """Requester's gross value ``V(z)`` of the allocation ``z`` ``(batch, S)``; ``V(0) = 0``."""

    def max_winners(self, sellers: int) -> int:
        """Largest winner set the setting allows (VCG enumerates subsets up to this size)."""
        return sellers

    def check(self, bids: np.ndarray, profiles: np.ndarray | None, sellers: int) -> None:
        """Raise :class:`MechanismError` unless ``bids`` / ``profiles`` fit this setting and ``sellers``."""
        if bids.ndim != 2 or bids.shape[1] != sellers:
            raise MechanismError(f"bids must have shape (batch, {sellers}), got {bids.shape}")
        if not np.all(np.isfinite(bids)):
            raise MechanismError("bids must be finite")
        if np.any(bids < 0):
            raise MechanismError("bids must be non-negative (a bid is a cost)")
        if self.profile_width == 0:
            if profiles is not None:
                raise MechanismError(f"setting {self.name} takes no profiles")
            return
        if profiles is None:
            raise MechanismError(f"setting {self.name} needs profiles (batch, S, {self.profile_width})")
        if profiles.shape != (*bids.shape, self.profile_width):
            raise MechanismError(
                f"profiles must have shape {(*bids.shape, self.profile_width)}, got {profiles.shape}"
            )
        if not np.all(np.isfinite(profiles)):
            raise MechanismError("profiles must be finite")


@dataclass(frozen=True)
class SingleUniform(Setting):
    """One indivisible unit worth ``v`` to the requester; seller costs i.i.d. U[0, 1].

    The Myerson optimum is known in closed form (:mod:`.myerson`). ``b_bar = v``: paying more than the unit
    is worth never helps the requester. Network input: ``2 b / b_bar - 1`` per seller.
    """

    name: str = "single-uniform"
    head: str = "single"
    reserve: float = 1.0
    profile_width: int = 0
    unit_value: float = 1.0

    def sample(
        self, rng: np.random.Generator, batch: int, sellers: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Costs i.i.d. U[0, 1]; no profiles."""
        return rng.uniform(0.0, 1.0, size=(batch, sellers)), None

    def features(self, bids: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """``2 b / b_bar - 1``: bids in ``[0, b_bar]`` map to ``[-1, 1]``."""
        return 2.0 * bids / self.reserve - 1.0

    def value(self, z: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """``v * sum_s z_s`` (the single head keeps ``sum z <= 1``)."""
        return self.unit_value * z.sum(axis=-1)

    def max_winners(self, sellers: int) -> int:
        """At most one winner."""
        return 1
