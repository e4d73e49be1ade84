"""Participants of the collab market: publishers (buyers), sellers (edge devices) and the data-gain form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import MechanismError


class DataGain(Protocol):
    """A separable data-gain form: the gain of buying ``y`` data units from one seller.

    The publisher's total data gain is ``eps_d * sum_i value(phi_i, theta_i, y_i)``.
    """

    def value(self, phi: float, theta: float, y: float) -> float:
        """Gain (before ``eps_d``) of ``y`` units from a seller with factors ``phi``, ``theta``."""
        ...


@dataclass(frozen=True)
class QuadraticDataGain:
    """Data gain ``a·phi·y − b·theta·y²`` (phi: increment factor, theta: fluctuation factor; docs/models/collab.md)."""

    a: float = 1.0
    b: float = 0.5

    def value(self, phi: float, theta: float, y: float) -> float:
        """Gain of ``y`` units (see class docstring)."""
        return self.a * phi * y - self.b * theta * y * y


def _finite(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise MechanismError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Publisher:
    """A task publisher j (docs/models/collab.md).

    Attributes:
        budget: b_j > 0.
        deadline: T_j > 0, the longest tolerated execution time.
        own_data: o_j > 0, data the publisher already holds.
        multiplier: CPPI multiplier m_j ≥ 0 (0: conservative, large: aggressive).
        omega: ω_j ∈ (0, 1), weight of utility against the kept budget.
        eps_t: ε_t > 0, value of a unit of time saved.
        eps_d: ε_d ≥ 0, value of a unit of data gain.
        f: capacity of one computing share (> 0).
        d: samples per data unit (> 0).
        r_net: network transmission speed (> 0).
        a: data increment coefficient of the quadratic gain.
        b: data fluctuation coefficient of the quadratic gain.
        gain: optional replacement of the quadratic data-gain form (then ``a``, ``b`` are unused).
    """

    budget: float
    deadline: float
    own_data: float
    multiplier: float
    omega: float
    eps_t: float = 10.0
    eps_d: float = 50.0
    f: float = 1.0
    d: float = 1.0
    r_net: float = 20.0
    a: float = 1.0
    b: float = 0.5
    gain: DataGain | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("budget", "deadline", "own_data", "multiplier", "omega", "eps_t", "eps_d", "f", "d",
                     "r_net", "a", "b"):
            _finite(name, getattr(self, name))
        for name in ("budget", "deadline", "own_data", "eps_t", "f", "d", "r_net"):
            if getattr(self, name) <= 0:
                raise MechanismError(f"publisher {name} must be > 0, got {getattr(self, name)!r}")
        if self.multiplier < 0 or self.eps_d < 0:
            raise MechanismError("publisher multiplier and eps_d must be >= 0")
        if not 0.0 < self.omega < 1.0:
            raise MechanismError(f"publisher omega must lie in (0, 1), got {self.omega!r}")

    @property
    def data_gain(self) -> DataGain:
        """The data-gain form in use."""
        return self.gain if self.gain is not None else QuadraticDataGain(self.a, self.b)


@dataclass(frozen=True)
class Seller:
    """An edge device offering computing shares and data units.

    Attributes:
        compute_capacity: shares on offer (≥ 0).
        compute_price: price p_i^f of one share (≥ 0).
        data_capacity: data units on offer (≥ 0).
        data_price: price p_i^d of one data unit (≥ 0).
        phi: data increment factor φ_i (≥ 0).
        theta: data fluctuation factor θ_i (≥ 0).
    """

    compute_capacity: float
    compute_price: float
    data_capacity: float
    data_price: float
    phi: float = 0.5
    theta: float = 0.03

    def __post_init__(self) -> None:
        for name in ("compute_capacity", "compute_price", "data_capacity", "data_price", "phi", "theta"):
            value = getattr(self, name)
            _finite(name, value)
            if value < 0:
                raise MechanismError(f"seller {name} must be >= 0, got {value!r}")

    def with_prices(self, compute_price: float, data_price: float) -> Seller:
        """A copy with new prices."""
        return Seller(self.compute_capacity, compute_price, self.data_capacity, data_price, self.phi,
                      self.theta)
