"""Baseline procurement auctions on the same settings: exact VCG, greedy by cost per quality, random.

Each returns ``(z, p)`` of shape ``(batch, S)`` with integral ``z``. ``vcg`` is truthful and IR and
maximises welfare among the winner sets the setting allows; ``greedy`` and ``random_selection`` pay the bid
(no incentive design; "No-IM" in the paper) and are evaluated at truthful bids as the paper does.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from ..errors import MechanismError
from .settings import Setting

VCG_MAX_SELLERS = 12


def winner_sets(sellers: int, max_winners: int) -> np.ndarray:
    """All winner sets of size at most ``max_winners`` as a 0/1 matrix ``(K, S)`` (first row: empty set)."""
    rows = [np.zeros(sellers)]
    for k in range(1, min(max_winners, sellers) + 1):
        for combo in combinations(range(sellers), k):
            row = np.zeros(sellers)
            row[list(combo)] = 1.0
            rows.append(row)
    return np.array(rows)


def _set_values(setting: Setting, masks: np.ndarray, profiles: np.ndarray | None, batch: int) -> np.ndarray:
    """``V(W)`` for every sample and winner set: ``(batch, K)``."""
    K, S = masks.shape
    z = np.broadcast_to(masks[None], (batch, K, S)).reshape(batch * K, S)
    prof = None if profiles is None else np.repeat(profiles, K, axis=0)
    return setting.value(z, prof).reshape(batch, K)


def vcg(
    setting: Setting, bids: np.ndarray, profiles: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """VCG procurement over all winner sets (exact; ``S <= 12``).

    Winners ``W* = argmax_W V(W) - sum_{s in W} b_s``; winner ``s`` is paid
    ``b_s + welfare(W*) - max_{W not containing s} welfare(W)`` (its externality on the others).

    Raises:
        MechanismError: more than ``VCG_MAX_SELLERS`` sellers.
    """
    b = np.asarray(bids, dtype=np.float64)
    batch, S = b.shape
    if S > VCG_MAX_SELLERS:
        raise MechanismError(f"exact VCG enumerates 2^S sets; S = {S} > {VCG_MAX_SELLERS}")
    masks = winner_sets(S, setting.max_winners(S))
    welfare = _set_values(setting, masks, profiles, batch) - b @ masks.T
    best = welfare.argmax(axis=1)
    top = welfare[np.arange(batch), best]
    z = masks[best]
    p = np.zeros_like(b)
    for s in range(S):
        without = np.where(masks[:, s] == 0)[0]
        top_without = welfare[:, without].max(axis=1)
        p[:, s] = z[:, s] * (b[:, s] + top - top_without)
    return z, p


def greedy(
    setting: Setting, bids: np.ndarray, profiles: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy by cost per quality, pay-as-bid.

    Sellers with a bid at most the reserve are ranked by ``b_s / q_s`` with ``q_s = V({s})`` (sellers whose
    stand-alone value is not positive go last, by bid); the winners are the best prefix of that ranking,
    ``argmax_k V(first k) - sum of their bids`` with ``k`` up to the setting's winner limit. Taking the best
    prefix instead of stopping at the first seller whose marginal value is below its bid matters for TBCIM,
    whose data utility is convex for small data sizes (one ES alone is often worth nothing).
    """
    b = np.asarray(bids, dtype=np.float64)
    batch, S = b.shape
    solo = _set_values(setting, np.eye(S), profiles, batch)
    key = np.where(solo > 0, b / np.where(solo > 0, solo, 1.0), np.inf)
    key = np.where(b <= setting.reserve, key, np.nan)
    order = np.lexsort((b, key), axis=1)  # by key, then bid; NaN (above the reserve) last
    rows = np.arange(batch)
    eligible = (b <= setting.reserve).sum(axis=1)
    z = np.zeros_like(b)
    best = np.zeros(batch)
    best_z = z.copy()
    for k in range(min(S, setting.max_winners(S))):
        z[rows, order[:, k]] = 1.0
        welfare = setting.value(z, profiles) - (z * b).sum(axis=1)
        take = (welfare > best) & (k < eligible)
        best = np.where(take, welfare, best)
        best_z[take] = z[take]
    return best_z, best_z * b


def random_selection(
    setting: Setting, bids: np.ndarray, profiles: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """"No-IM": sellers picked at random, pay-as-bid, bids above the reserve excluded.

    ``single`` head: one uniformly random seller. ``multi``: every seller independently with probability 1/2.
    """
    b = np.asarray(bids, dtype=np.float64)
    batch, S = b.shape
    if setting.max_winners(S) == 1:
        z = np.zeros_like(b)
        z[np.arange(batch), rng.integers(0, S, size=batch)] = 1.0
    else:
        z = (rng.random((batch, S)) < 0.5).astype(np.float64)
    z = z * (b <= setting.reserve)
    return z, z * b
