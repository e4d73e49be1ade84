"""The winner-determination problem both levels share: buyers with options, sellers with capacity and asks.

A buyer ``b`` offers a list of options ``o`` (a quantity ``q[b, o]`` and the value ``v[b, o]`` it bids for it);
seller ``s`` has ``capacity[s]`` units and asks ``ask[s]`` per unit; ``allowed[b, s]`` says whether ``b`` may buy
from ``s``. An allocation gives each buyer at most one (option, seller); the sellers' capacities hold. Its welfare
is ``Σ (v[b, o] − ask[s]·q[b, o])`` over the trades.

* lower level: buyers are miners (one option: their demand and bid), sellers are MESPs (capacity ``C_j + c_j``);
* upper level: buyers are MESPs (one option per bundle ``k·g``), sellers are CCSPs (ask = unit cost ``κ``).

Options with ``v < base_price·q`` are not admitted; a trade needs ``v ≥ ask·q`` (a non-negative surplus). Unused
option slots carry ``q = 0`` and are ignored (``valid`` is ``q > 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from bazaar.mechanisms.errors import MechanismError

NO_TRADE = -1
"""Marker in ``seller`` / ``option`` arrays for a buyer that does not trade."""

_REL = 1e-9


def fit_tolerance(quantity: float) -> float:
    """The rounding slack :func:`fits` allows ``quantity`` (relative, at least absolute 1e-9)."""
    return _REL * max(1.0, abs(quantity))


def fits(remaining: float, quantity: float) -> bool:
    """Whether ``quantity`` fits into ``remaining`` up to a relative rounding tolerance."""
    return quantity <= remaining + fit_tolerance(quantity)


@dataclass(frozen=True)
class Market:
    """A validated double-auction winner-determination instance.

    Attributes:
        quantity: ``(B, O)`` units of each option (``0`` marks an unused slot).
        value: ``(B, O)`` bid for each option.
        capacity: ``(S,)`` seller capacities.
        ask: ``(S,)`` per-unit asks.
        allowed: ``(B, S)`` reachability.
        base_price: per-unit reserve; options below it are not admitted.
    """

    quantity: np.ndarray
    value: np.ndarray
    capacity: np.ndarray
    ask: np.ndarray
    allowed: np.ndarray
    base_price: float = 0.0

    @property
    def n_buyers(self) -> int:
        """Number of buyers."""
        return int(self.quantity.shape[0])

    @property
    def n_options(self) -> int:
        """Option slots per buyer."""
        return int(self.quantity.shape[1])

    @property
    def n_sellers(self) -> int:
        """Number of sellers."""
        return int(self.capacity.shape[0])

    def admitted(self) -> np.ndarray:
        """``(B, O)`` mask of options that exist and bid at least the base price."""
        q = self.quantity
        return (q > 0) & (self.value >= self.base_price * q - _REL * np.maximum(1.0, self.base_price * q))

    def trade_ok(self, b: int, o: int, s: int, value: float | None = None) -> bool:
        """Whether buyer ``b`` may trade option ``o`` with seller ``s`` at bid ``value`` (default: its bid)."""
        q = float(self.quantity[b, o])
        v = float(self.value[b, o]) if value is None else value
        return bool(self.allowed[b, s]) and q > 0 and v >= max(self.ask[s], self.base_price) * q - _REL * max(
            1.0, abs(v)
        )

    def with_value(self, b: int, o: int, v: float) -> Market:
        """A copy with buyer ``b``'s bid for option ``o`` replaced by ``v``."""
        value = self.value.copy()
        value[b, o] = v
        return Market(self.quantity, value, self.capacity, self.ask, self.allowed, self.base_price)

    def without_buyer(self, b: int) -> Market:
        """A copy in which buyer ``b`` offers nothing (its options become unused)."""
        q = self.quantity.copy()
        q[b, :] = 0.0
        return Market(q, self.value, self.capacity, self.ask, self.allowed, self.base_price)

    def with_capacity(self, capacity: np.ndarray) -> Market:
        """A copy with other seller capacities."""
        return Market(self.quantity, self.value, np.asarray(capacity, float), self.ask, self.allowed,
                      self.base_price)


def make_market(
    quantity: ArrayLike,
    value: ArrayLike,
    capacity: ArrayLike,
    ask: ArrayLike,
    allowed: ArrayLike | None = None,
    base_price: float = 0.0,
) -> Market:
    """Build and validate a :class:`Market`; 1-D ``quantity``/``value`` mean one option per buyer.

    Raises:
        MechanismError: inconsistent shapes, non-finite numbers, negative quantities, capacities, asks or
            base price.
    """
    q = np.asarray(quantity, dtype=float)
    v = np.asarray(value, dtype=float)
    if q.ndim == 1:
        q = q[:, None]
    if v.ndim == 1:
        v = v[:, None]
    cap = np.asarray(capacity, dtype=float).reshape(-1)
    a = np.asarray(ask, dtype=float).reshape(-1)
    if q.shape != v.shape or q.ndim != 2:
        raise MechanismError(f"quantity {q.shape} and value {v.shape} must have the same (buyers, options) shape")
    if cap.shape != a.shape:
        raise MechanismError(f"capacity ({cap.size}) and ask ({a.size}) need one entry per seller")
    if cap.size == 0:
        raise MechanismError("a market needs at least one seller")
    for name, arr in (("quantity", q), ("value", v), ("capacity", cap), ("ask", a)):
        if not np.all(np.isfinite(arr)):
            raise MechanismError(f"{name} must be finite")
    if np.any(q < 0) or np.any(cap < 0) or np.any(a < 0):
        raise MechanismError("quantities, capacities and asks must be non-negative")
    if not (np.isfinite(base_price) and base_price >= 0):
        raise MechanismError(f"base price must be finite and non-negative, got {base_price}")
    if allowed is None:
        al = np.ones((q.shape[0], cap.size), dtype=bool)
    else:
        al = np.asarray(allowed, dtype=bool)
        if al.shape != (q.shape[0], cap.size):
            raise MechanismError(f"allowed must have shape {(q.shape[0], cap.size)}, got {al.shape}")
    return Market(q, v, cap, a, al, float(base_price))


@dataclass
class Allocation:
    """Who trades what with whom, and what each buyer pays.

    Attributes:
        seller: ``(B,)`` seller index per buyer, ``NO_TRADE`` if it does not trade.
        option: ``(B,)`` option index per buyer, ``NO_TRADE`` if it does not trade.
        payment: ``(B,)`` what each buyer pays (0 for losers).
        welfare: ``Σ (v − ask·q)`` over the trades.
        method: the solver that produced it.
        proven: ``False`` when an exact solver stopped at a time limit before proving optimality.
    """

    seller: np.ndarray
    option: np.ndarray
    payment: np.ndarray = field(default_factory=lambda: np.zeros(0))
    welfare: float = 0.0
    method: str = ""
    proven: bool = True

    def won(self, b: int) -> bool:
        """Whether buyer ``b`` trades."""
        return bool(self.seller[b] != NO_TRADE)


def welfare_of(m: Market, seller: np.ndarray, option: np.ndarray) -> float:
    """Welfare ``Σ (v − ask·q)`` of an allocation."""
    total = 0.0
    for b in range(m.n_buyers):
        s, o = int(seller[b]), int(option[b])
        if s != NO_TRADE:
            total += float(m.value[b, o]) - float(m.ask[s]) * float(m.quantity[b, o])
    return total


def check_feasible(m: Market, seller: np.ndarray, option: np.ndarray) -> None:
    """Raise :class:`MechanismError` if an allocation breaks a capacity, reachability or admission rule."""
    used = np.zeros(m.n_sellers)
    for b in range(m.n_buyers):
        s, o = int(seller[b]), int(option[b])
        if s == NO_TRADE:
            if o != NO_TRADE:
                raise MechanismError(f"buyer {b} has an option but no seller")
            continue
        if not m.trade_ok(b, o, s):
            raise MechanismError(f"buyer {b} may not trade option {o} with seller {s}")
        used[s] += m.quantity[b, o]
    for s in range(m.n_sellers):
        if not fits(float(m.capacity[s]), float(used[s])):
            raise MechanismError(f"seller {s} sells {used[s]} > capacity {m.capacity[s]}")


def served_quantity(m: Market, seller: np.ndarray, option: np.ndarray) -> np.ndarray:
    """``(S,)`` units each seller sells in an allocation."""
    used = np.zeros(m.n_sellers)
    for b in range(m.n_buyers):
        if seller[b] != NO_TRADE:
            used[int(seller[b])] += m.quantity[b, int(option[b])]
    return used
