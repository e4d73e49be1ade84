"""The order book: each resource's offers sorted cheapest first, as piecewise-linear cost curves."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import MechanismError
from .model import Seller


@dataclass(frozen=True)
class Ladder:
    """Offers of one resource, cheapest first (ties by seller index).

    ``q[k]`` is the quantity available below the k-th cheapest offer and ``c[k]`` its cost, so the cost
    of buying ``x`` units cheapest first is ``c[k] + prices[k]·(x − q[k])`` on piece k (convex, piecewise
    linear).

    Attributes:
        order: seller index of each piece.
        prices: price of each piece (non-decreasing).
        caps: capacity of each piece (> 0).
        q: cumulative quantities, ``len(prices) + 1`` entries.
        c: cumulative costs, ``len(prices) + 1`` entries.
        n_sellers: number of sellers in the market (for per-seller vectors).
    """

    order: tuple[int, ...]
    prices: tuple[float, ...]
    caps: tuple[float, ...]
    q: tuple[float, ...]
    c: tuple[float, ...]
    n_sellers: int

    @classmethod
    def build(cls, prices: Sequence[float], caps: Sequence[float]) -> Ladder:
        """Sort offers cheapest first, dropping empty ones.

        Raises:
            MechanismError: different lengths or negative / non-finite values.
        """
        if len(prices) != len(caps):
            raise MechanismError("prices and capacities differ in length")
        for v in (*prices, *caps):
            if not math.isfinite(v) or v < 0:
                raise MechanismError(f"prices and capacities must be finite and >= 0, got {v!r}")
        idx = sorted((i for i in range(len(prices)) if caps[i] > 0), key=lambda i: (prices[i], i))
        q, c = [0.0], [0.0]
        for i in idx:
            q.append(q[-1] + float(caps[i]))
            c.append(c[-1] + float(caps[i]) * float(prices[i]))
        return cls(tuple(idx), tuple(float(prices[i]) for i in idx), tuple(float(caps[i]) for i in idx),
                   tuple(q), tuple(c), len(prices))

    @property
    def total(self) -> float:
        """All units on offer."""
        return self.q[-1]

    def piece(self, x: float) -> int:
        """Index of the piece holding the unit just above ``x`` (the last piece at the total)."""
        k = bisect.bisect_right(self.q, x) - 1
        return min(max(k, 0), len(self.prices) - 1)

    def cost(self, x: float) -> float:
        """Cost of ``x`` units bought cheapest first (``x`` is clipped to the total)."""
        if not self.prices or x <= 0:
            return 0.0
        x = min(x, self.total)
        k = self.piece(x)
        return self.c[k] + self.prices[k] * (x - self.q[k])

    def affordable(self, money: float) -> float:
        """Most units that ``money`` buys cheapest first (−1 when ``money`` < 0)."""
        if money < 0:
            return -1.0
        k = bisect.bisect_right(self.c, money) - 1
        if k >= len(self.prices):
            return self.total
        p = self.prices[k]
        return self.q[k + 1] if p <= 0 else min(self.q[k] + (money - self.c[k]) / p, self.q[k + 1])

    def allocate(self, x: float) -> list[float]:
        """Per-seller quantities of ``x`` units bought cheapest first (indexed like the sellers)."""
        out = [0.0] * self.n_sellers
        left = min(max(x, 0.0), self.total)
        for i, cap in zip(self.order, self.caps, strict=True):
            if left <= 0:
                break
            take = min(cap, left)
            out[i] = take
            left -= take
        return out


@dataclass(frozen=True)
class Book:
    """The market's offers as seen by a publisher: one ladder per resource plus the data factors."""

    compute: Ladder
    data: Ladder
    phi: tuple[float, ...]
    theta: tuple[float, ...]

    @classmethod
    def from_sellers(cls, sellers: Sequence[Seller], compute_left: Sequence[float] | None = None,
                     data_left: Sequence[float] | None = None) -> Book:
        """Build the book, optionally with residual capacities instead of the full ones.

        Raises:
            MechanismError: no sellers, or residual vectors of the wrong length.
        """
        if not sellers:
            raise MechanismError("the market has no sellers")
        cc = [s.compute_capacity for s in sellers] if compute_left is None else list(compute_left)
        dc = [s.data_capacity for s in sellers] if data_left is None else list(data_left)
        if len(cc) != len(sellers) or len(dc) != len(sellers):
            raise MechanismError("residual capacities must have one entry per seller")
        return cls(Ladder.build([s.compute_price for s in sellers], [max(0.0, v) for v in cc]),
                   Ladder.build([s.data_price for s in sellers], [max(0.0, v) for v in dc]),
                   tuple(s.phi for s in sellers), tuple(s.theta for s in sellers))
