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


def refined_regret(
    outcome: Outcome,
    costs: np.ndarray,
    profiles: np.ndarray | None,
    reserve: float,
    *,
    points: int = 101,
    refine: int = 21,
    starts: int = 3,
    steps: int = 20,
    sizes: int = 6,
    chunk_rows: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Regret by the grid of :func:`grid_regret`, then gradient refinement from the best grid points.

    From the ``starts`` best points of the coarse grid (the first one replaced by the fine-grid optimum), each
    start climbs the seller's utility in its own bid: a central finite difference (``h = 1e-7 b_bar``) gives
    the slope, a line search tries ``sizes`` steps ``delta, delta/2, ...`` along it (``delta`` starts at the
    grid step, doubles after an accepted full step, else becomes the accepted size), for ``steps``
    iterations. It only ever keeps improvements, so refined regret >= grid regret.

    Returns:
        ``(grid, refined)``, both ``(batch, S)``: the regret found by the grid alone and after refinement.

    Raises:
        MechanismError: bad sizes.
    """
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2 or points < 2 or reserve <= 0 or starts < 1 or steps < 0 or sizes < 1:
        raise MechanismError("costs must be (batch, S), points >= 2, reserve > 0, starts, sizes >= 1")
    grid, best_bid = grid_regret(outcome, c, profiles, reserve, points=points, refine=refine,
                                 chunk_rows=chunk_rows)
    batch, S = c.shape
    coarse = np.linspace(0.0, reserve, points)
    step0 = coarse[1] - coarse[0]
    refined = grid.copy()
    per = max(1, chunk_rows // (starts * (sizes + 2)))
    for lo in range(0, batch, per):
        sl = slice(lo, min(batch, lo + per))
        cs = c[sl]
        ps = None if profiles is None else profiles[sl]
        n = cs.shape[0]
        for s in range(S):
            cand = np.concatenate([cs[:, s : s + 1], np.broadcast_to(coarse, (n, points))], axis=1)
            u = _utilities(outcome, cs, ps, s, cand)
            truthful = u[:, 0]
            top = np.argsort(-u[:, 1:], axis=1, kind="stable")[:, :starts] + 1
            x = np.take_along_axis(cand, top, axis=1)
            x[:, 0] = best_bid[sl, s]
            ux = _ascend(outcome, cs, ps, s, x, reserve, step0, steps, sizes)
            refined[sl, s] = np.maximum(grid[sl, s], np.maximum(ux.max(axis=1) - truthful, 0.0))
    return grid, refined


def _ascend(
    outcome: Outcome, cs: np.ndarray, ps: np.ndarray | None, s: int, x: np.ndarray, reserve: float,
    step0: float, steps: int, sizes: int,
) -> np.ndarray:
    """Climb seller ``s``'s utility from the bids ``x`` ``(n, m)``; returns the best utility of each start."""
    n, m = x.shape
    h = 1e-7 * reserve
    ux = _utilities(outcome, cs, ps, s, x)
    delta = np.full_like(x, step0)
    frac = 0.5 ** np.arange(sizes)
    for _ in range(steps):
        up = np.minimum(x + h, reserve)
        dn = np.maximum(x - h, 0.0)
        ud = _utilities(outcome, cs, ps, s, np.concatenate([up, dn], axis=1))
        direction = np.sign(ud[:, :m] - ud[:, m:])
        trial = np.clip(x[:, :, None] + (direction * delta)[:, :, None] * frac, 0.0, reserve)
        ut = _utilities(outcome, cs, ps, s, trial.reshape(n, m * sizes)).reshape(n, m, sizes)
        k = ut.argmax(axis=2)
        u_best = np.take_along_axis(ut, k[..., None], axis=2)[..., 0]
        better = (u_best > ux) & (direction != 0)
        x = np.where(better, np.take_along_axis(trial, k[..., None], axis=2)[..., 0], x)
        ux = np.where(better, u_best, ux)
        delta = np.where(better, np.where(k == 0, 2.0 * delta, delta * 0.5**k), delta * 0.5**sizes)
        delta = np.maximum(delta, 1e-12 * reserve)
    return ux


def gradient_regret(
    outcome: Outcome,
    costs: np.ndarray,
    profiles: np.ndarray | None,
    reserve: float,
    *,
    steps: int = 20,
    sizes: int = 6,
    step0: float | None = None,
) -> np.ndarray:
    """Regret as gradient-based training measures it: the same ascent, started from the truthful bid only
    (no grid). Shown beside :func:`refined_regret` to show how much a local search misses.

    Returns:
        ``(batch, S)`` regret found.
    """
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 2 or reserve <= 0 or steps < 0 or sizes < 1:
        raise MechanismError("costs must be (batch, S), reserve > 0, sizes >= 1")
    out = np.zeros_like(c)
    first = reserve / 100 if step0 is None else step0
    for s in range(c.shape[1]):
        truthful = _utilities(outcome, c, profiles, s, c[:, s : s + 1])[:, 0]
        best = _ascend(outcome, c, profiles, s, c[:, s : s + 1].copy(), reserve, first, steps, sizes)[:, 0]
        out[:, s] = np.maximum(best - truthful, 0.0)
    return out
