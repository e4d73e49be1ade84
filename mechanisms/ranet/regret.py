"""Ex-post regret by exhaustive search over each seller's misreport (a bid is one number).

For a profile of true costs ``c`` (and public profiles), seller ``s``'s regret is
``max_{b' in [0, b_bar]} u_s(b', c_-s) - u_s(c)`` with ``u_s = p_s - z_s c_s``. The search evaluates a
uniform grid of ``points`` bids over ``[0, b_bar]`` plus the truthful bid, then a fine grid of ``refine``
points over the two cells around the best coarse point, so the maximiser is located to within
``2 b_bar / ((points - 1)(refine - 1))``. Bids above ``b_bar`` never win (utility 0 <= truthful utility by
IR), so ``[0, b_bar]`` is the whole relevant misreport space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import MechanismError

Outcome = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]


def _utilities(
    outcome: Outcome, costs: np.ndarray, profiles: np.ndarray | None, seller: int, cand: np.ndarray
) -> np.ndarray:
    """``u[l, g]``: seller's utility bidding ``cand[l, g]`` while the others bid their costs."""
    batch = costs.shape[0]
    G = cand.shape[1]
    bids = np.repeat(costs, G, axis=0)
    bids[:, seller] = cand.reshape(-1)
    prof = None if profiles is None else np.repeat(profiles, G, axis=0)
    z, p = outcome(bids, prof)
    u = p[:, seller] - z[:, seller] * np.repeat(costs[:, seller], G)
    return u.reshape(batch, G)


def grid_regret(
    outcome: Outcome,
    costs: np.ndarray,
    profiles: np.ndarray | None,
    reserve: float,
    *,
    points: int = 101,
    refine: int = 21,
    chunk_rows: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Each seller's ex-post regret and best misreport at each profile.

    Args:
        outcome: ``(bids, profiles) -> (z, payments)`` of any mechanism (RANet, VCG, Myerson, ...).
        costs: ``(batch, S)`` true costs (the truthful bids).
        profiles: ``(batch, S, k)`` public profiles or None.
        reserve: ``b_bar``; the misreport range is ``[0, b_bar]``.
        points: coarse grid size (>= 2).
        refine: fine grid size around the best coarse point (0 or 1: no refinement).
        chunk_rows: bound on the rows of one forward pass (memory).

    Returns:
        ``(regret, best_bid)``, both ``(batch, S)``; ``regret >= 0``.

    Raises:
        MechanismError: bad sizes.
    """
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2 or points < 2 or reserve <= 0:
        raise MechanismError("costs must be (batch, S), points >= 2 and reserve > 0")
    batch, S = c.shape
    coarse = np.linspace(0.0, reserve, points)
    step = coarse[1] - coarse[0]
    regret = np.zeros((batch, S))
    best_bid = c.copy()
    per = max(1, chunk_rows // (points + 1))
    for lo in range(0, batch, per):
        sl = slice(lo, min(batch, lo + per))
        cs = c[sl]
        ps = None if profiles is None else profiles[sl]
        n = cs.shape[0]
        for s in range(S):
            cand = np.concatenate([cs[:, s : s + 1], np.broadcast_to(coarse, (n, points))], axis=1)
            u = _utilities(outcome, cs, ps, s, cand)
            truthful = u[:, 0]
            k = u.argmax(axis=1)
            best_u = u[np.arange(n), k]
            arg = cand[np.arange(n), k]
            if refine > 1:
                fine = np.clip(arg[:, None] + np.linspace(-step, step, refine)[None, :], 0.0, reserve)
                uf = _utilities(outcome, cs, ps, s, fine)
                kf = uf.argmax(axis=1)
                better = uf[np.arange(n), kf] > best_u
                best_u = np.where(better, uf[np.arange(n), kf], best_u)
                arg = np.where(better, fine[np.arange(n), kf], arg)
            regret[sl, s] = np.maximum(best_u - truthful, 0.0)
            best_bid[sl, s] = arg
    return regret, best_bid
