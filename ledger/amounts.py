"""Token amounts: integers of micro-tokens on the ledger, floats only at the edges (docs/adr/0004).

Every balance, escrow, stake and reward on chain is an ``int`` number of micro-tokens, so conservation is an
exact equality and every node computes the same state root. Market code that thinks in real-valued prices
converts once, with :func:`to_units`, when it builds a transaction.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

UNIT = 10**6
"""Micro-tokens per token."""

MAX_AMOUNT = 2**63 - 1
"""Largest amount a transaction may carry (fits a signed 64-bit msgpack integer)."""


def to_units(x: float) -> int:
    """Convert a token amount to micro-tokens, rounding half to even.

    Args:
        x: tokens (float or int), finite and non-negative.

    Returns:
        The integer number of micro-tokens.

    Raises:
        ValueError: ``x`` is negative, not finite, not a number, or too large.
    """
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"amount must be a number, got {type(x).__name__}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"amount must be finite, got {x}")
    if x < 0:
        raise ValueError(f"amount must be non-negative, got {x}")
    units = int((Decimal(x) * UNIT).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if units > MAX_AMOUNT:
        raise ValueError(f"amount {x} exceeds the ledger's maximum")
    return units


def from_units(n: int) -> float:
    """Convert micro-tokens to tokens (for display and for market code).

    Raises:
        ValueError: ``n`` is not an integer.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"units must be an int, got {type(n).__name__}")
    return n / UNIT
