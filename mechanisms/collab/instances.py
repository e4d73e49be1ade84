"""Random publishers and sellers drawn from the paper's ranges (seeded; used by experiments and tests)."""

from __future__ import annotations

import numpy as np

from .model import Publisher, Seller


def random_sellers(rng: np.random.Generator, n: int, integral: bool = True) -> list[Seller]:
    """Sellers with compute capacity 10–50 at 1–20 and data capacity 10–30 at 5–20 (paper), φ ∈ [0.2, 0.6],
    θ ∈ [0.01, 0.05] (ours: the paper does not give them)."""
    out = []
    for _ in range(n):
        cc = float(rng.integers(10, 51)) if integral else float(rng.uniform(10, 50))
        dc = float(rng.integers(10, 31)) if integral else float(rng.uniform(10, 30))
        out.append(Seller(cc, round(float(rng.uniform(1, 20)), 2), dc, round(float(rng.uniform(5, 20)), 2),
                          round(float(rng.uniform(0.2, 0.6)), 3), round(float(rng.uniform(0.01, 0.05)), 4)))
    return out


def random_publishers(rng: np.random.Generator, n: int, multiplier: tuple[float, float] = (1.0, 4.0)
                      ) -> list[Publisher]:
    """Publishers with budget 20–100, deadline 5–30 (paper), own data 10–50, ω ∈ [0.4, 0.8] and multiplier
    in ``multiplier`` (ours), ε_t = 10, ε_d = 50 (paper)."""
    out = []
    for _ in range(n):
        out.append(Publisher(
            budget=round(float(rng.uniform(20, 100)), 2), deadline=round(float(rng.uniform(5, 30)), 2),
            own_data=round(float(rng.uniform(10, 50)), 2),
            multiplier=round(float(rng.uniform(*multiplier)), 3),
            omega=round(float(rng.uniform(0.4, 0.8)), 3)))
    return out
