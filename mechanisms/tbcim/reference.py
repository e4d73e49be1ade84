"""Slow, obviously-correct references for the Stackelberg game (numeric maximisation, no closed forms).

Used by the property tests and the benchmark to check the closed-form solver of :mod:`.stackelberg`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .quality import data_utility
from .stackelberg import StackelbergGame, StackelbergResult

Array = NDArray[np.float64]


def numeric_best_response(game: StackelbergGame, i: int, price: float) -> tuple[float, float]:
    """ED i's profit-maximising compute by bounded scalar search (scipy), and that profit.

    The search interval ``[0, 4 p / (kappa theta_i m beta_i)]`` holds the optimum with room to spare
    (twice the analytical one); the profit is evaluated straight from eq. (34).
    """
    from scipy.optimize import minimize_scalar  # reference solvers only: a node never loads scipy for them

    hi = 4.0 * price / (game.kappa * game.theta[i] * game.m * game.beta[i]) + 1e-12

    def neg(c: float) -> float:
        fee = price * c * game.d[i] / (game.kappa * game.theta[i])
        return -(fee - game.fixed_cost[i] - game.d[i] * game.m * game.beta[i] * c * c)

    res = minimize_scalar(neg, bounds=(0.0, hi), method="bounded", options={"xatol": 1e-13 * max(hi, 1e-300)})
    c = float(res.x)
    return c, -neg(c)


def _members_at(game: StackelbergGame, price: float) -> NDArray[np.int64]:
    """EDs whose best-response profit at ``price`` is strictly positive, computed from eq. (34)."""
    profit = game.ed_profit(price, game.best_response(price))
    return np.flatnonzero(profit > 0).astype(np.int64)


def leader_value(game: StackelbergGame, price: float) -> float:
    """The ES's profit at ``price`` when exactly the EDs with positive profit take part."""
    return game.es_profit(price, _members_at(game, price))


def price_upper_bound(game: StackelbergGame) -> float:
    """A price above which the leader's profit only falls (all EDs in, past the unconstrained optimum)."""
    K = float(game.k.sum())
    top = max(float(game.thresholds.max()), game.omega / 2.0, math.sqrt(game.omega / max(K, 1e-300)))
    return 2.0 * top + 1.0


def reference_leader(game: StackelbergGame, grid: int = 20001) -> tuple[float, float]:
    """The leader's best price by dense grid, bounded refinement and the thresholds (approached from above).

    Returns:
        ``(price, profit)`` maximising :func:`leader_value` over the candidates found.
    """
    from scipy.optimize import minimize_scalar  # reference solvers only: a node never loads scipy for them

    hi = price_upper_bound(game)
    ps = np.linspace(0.0, hi, grid)
    k, f = game.k, game.fixed_cost
    inside = (ps[None, :] ** 2) * k[:, None] / 2.0 - f[:, None] > 0  # n x G
    cnt = inside.sum(axis=0)
    K = (k[:, None] * inside).sum(axis=0)
    D = (game.d[:, None] * inside).sum(axis=0)
    th = np.where(cnt > 0, (game.theta[:, None] * inside).sum(axis=0) / np.maximum(cnt, 1), 0.0)
    u = np.asarray(data_utility(D, th, game.consts), dtype=np.float64)
    cb = game.consts.a6 * game.consts.g_e * game.p_g * cnt
    vals = np.where(cnt > 0, u + game.omega * np.log1p(ps * K) - ps * ps * K - cb, 0.0)
    best = (0.0, 0.0)
    cands = [float(ps[j]) for j in np.argsort(vals)[-5:]]
    # thresholds from both sides: just above, the indifferent ED is in; just below, it is out (the sup of
    # the piece that ends there, which the leader attains under leader-favourable tie-breaking)
    cands += [float(t) * (1 + 1e-12) + 1e-300 for t in game.thresholds]
    cands += [float(t) * (1 - 1e-12) for t in game.thresholds if t > 0]
    for p0 in list(cands):
        j = int(np.searchsorted(ps, p0))
        lo, up = float(ps[max(j - 1, 0)]), float(ps[min(j + 1, grid - 1)])
        members = _members_at(game, p0)
        if up > lo and members.size:

            def neg(p: float, members: NDArray[np.int64] = members) -> float:
                return -game.es_profit(p, members)

            opts = {"xatol": 1e-12 * max(up, 1.0)}
            r = minimize_scalar(neg, bounds=(lo, up), method="bounded", options=opts)
            cands.append(float(r.x))
    for p in cands:
        v = leader_value(game, p)
        if v > best[1]:
            best = (p, v)
    return best


def es_deviation_gain(game: StackelbergGame, result: StackelbergResult) -> float:
    """How much more the ES earns at the reference's best price than at ``result`` (<= 0 is good)."""
    return reference_leader(game)[1] - result.es_profit


def ed_deviation_gain(game: StackelbergGame, result: StackelbergResult) -> float:
    """The largest gain any single ED gets by deviating at the announced price.

    Participants may change compute (numeric best response) or leave (profit 0); outsiders may join with
    their numeric best response.
    """
    gain = 0.0
    inside = set(result.participants.tolist())
    for i in range(game.n):
        _, best = numeric_best_response(game, i, result.price)
        current = float(result.ed_profit[i])
        options = [best, 0.0]
        gain = max(gain, max(options) - current if i in inside else best - 0.0)
    return gain
