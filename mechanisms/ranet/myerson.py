"""The Myerson-optimal procurement auction for ``single-uniform`` (the optimum RANet must approach).

Costs i.i.d. U[0, 1] have virtual cost ``phi(c) = c + F(c)/f(c) = 2c``. The requester's expected utility
``E[v z - sum p]`` equals the expected virtual surplus ``E[sum_s z_s (v - phi(c_s))]`` for any IC and IR
mechanism, so the optimum buys from the lowest-cost seller when ``2 c_min <= v`` and pays it its threshold,
``min(v / 2, second-lowest cost)``.
"""

from __future__ import annotations

import numpy as np

from ..errors import MechanismError


def myerson_outcome(bids: np.ndarray, unit_value: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Allocation and payments of the optimal auction for costs U[0, 1].

    Args:
        bids: ``(batch, S)`` bids in ``[0, 1]``.
        unit_value: the requester's value ``v`` of the unit, ``0 < v <= 2``.

    Returns:
        ``(z, p)`` of shape ``(batch, S)``; ``z`` is 0/1, at most one winner (ties: lowest index).

    Raises:
        MechanismError: bad shape or value.
    """
    b = np.asarray(bids, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] < 1:
        raise MechanismError(f"bids must have shape (batch, S), got {b.shape}")
    if not 0 < unit_value <= 2:
        raise MechanismError("unit_value must lie in (0, 2] for costs U[0, 1]")
    batch, sellers = b.shape
    rows = np.arange(batch)
    win = b.argmin(axis=1)
    low = b[rows, win]
    second = np.partition(b, 1, axis=1)[:, 1] if sellers > 1 else np.full(batch, np.inf)
    buys = 2.0 * low <= unit_value
    z = np.zeros_like(b)
    p = np.zeros_like(b)
    z[rows[buys], win[buys]] = 1.0
    p[rows[buys], win[buys]] = np.minimum(unit_value / 2.0, second[buys])
    return z, p


def myerson_expected_utility(sellers: int, unit_value: float = 1.0) -> float:
    """Closed form of the optimum's expected requester utility.

    ``E[(v - 2 c_min)^+] = 2 * (v/2 - (1 - (1 - v/2)^(S+1)) / (S + 1))`` with ``P(c_min > x) = (1 - x)^S``.
    """
    if sellers < 1:
        raise MechanismError("sellers must be at least 1")
    if not 0 < unit_value <= 2:
        raise MechanismError("unit_value must lie in (0, 2] for costs U[0, 1]")
    r = unit_value / 2.0
    return 2.0 * (r - (1.0 - (1.0 - r) ** (sellers + 1)) / (sellers + 1))
