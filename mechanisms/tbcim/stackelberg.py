"""The lower-level ES-ED Stackelberg game with the completed ES utility of docs/models/tbcim.md.

ES s (leader) announces a unit price p for "ED utility" ``C_i d_i / (kappa theta_i)``; each ED i (follower)
chooses its compute C_i and whether to take part. With ``m = delta_1 delta_g M``:

* ED profit ``pi_i = p C_i d_i/(kappa theta_i) - c^m_i - gamma_i d_i - d_i m beta_i C_i^2``, best response
  ``C_i* = p / (2 kappa theta_i m beta_i)``, fee ``V_i = p C_i* d_i/(kappa theta_i) = p^2 k_i`` with
  ``k_i = d_i / (2 kappa^2 theta_i^2 m beta_i)``, and profit at the best response ``p^2 k_i / 2 - f_i``,
  ``f_i = c^m_i + gamma_i d_i``. ED i takes part iff that is >= 0, i.e. ``p >= t_i = sqrt(2 f_i / k_i)``.
* ES profit for participants W: ``U_d(W) + omega log(1 + p K_W) - p^2 K_W - a6 g_e p_g |W|`` with
  ``K_W = sum_{i in W} k_i`` (and 0 for an empty W: no workers, no model, no payments).
  For fixed W it is maximised by ``p*(K) = (-1 + sqrt(1 + 2 K omega)) / (2K)``, evaluated as the equal
  ``omega / (1 + sqrt(1 + 2 K omega))`` (no cancellation).

Two ways to settle participation:

* ``"exact"`` (default): the leader anticipates participation. W(p) is the prefix of the EDs sorted by
  threshold t_i, so the price axis splits into intervals on which W is fixed and the profit concave; the
  optimum on each is the closed form clipped to the interval, and the best interval wins. Indifferent EDs
  (profit exactly 0 at a threshold) break ties in the leader's favour (strong Stackelberg equilibrium).
  This is an equilibrium: no ED gains by changing C_i, joining or leaving; no other price pays the ES more.
* ``"drop"``: the procedure of docs/models/tbcim.md: start from all EDs, take p*(K_W), drop the ED with the most
  negative profit, repeat. Every remaining ED is individually rational, but a dropped ED may want back in at the
  final (higher) price and the ES may prefer a price at a threshold; kept for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import MechanismError
from .constants import TbcimConstants
from .costs import blockchain_cost
from .quality import data_utility

Array = NDArray[np.float64]
PARTICIPATION = ("exact", "drop")
TOL = 1e-12


def _vector(name: str, x: ArrayLike, positive: bool) -> Array:
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise MechanismError(f"{name} must be a 1-D list")
    if not np.all(np.isfinite(arr)):
        raise MechanismError(f"{name} must be finite")
    if positive and np.any(arr <= 0):
        raise MechanismError(f"{name} must be positive")
    if not positive and np.any(arr < 0):
        raise MechanismError(f"{name} must be non-negative")
    return arr


@dataclass(frozen=True)
class StackelbergGame:
    """One ES and its candidate EDs.

    Attributes:
        d: data sizes (samples, > 0).
        theta: EMDs (> 0; they divide the ED utility).
        beta: unit compute costs (> 0).
        gamma: unit data costs (>= 0).
        c_m: communication costs ``P^m (M/R) delta_g phi`` (>= 0), see :func:`costs.comm_cost`.
        omega: the ES's value-of-compute weight (> 0).
        kappa: the utility scale of the paper (> 0).
        p_g: gas price (>= 0).
        consts: model constants (delta_1, delta_g, M, a1..a6, g_e, units).
    """

    d: Array
    theta: Array
    beta: Array
    gamma: Array
    c_m: Array
    omega: float
    kappa: float
    p_g: float
    consts: TbcimConstants = field(default_factory=TbcimConstants)

    def __post_init__(self) -> None:
        arrays = {
            "d": _vector("d", self.d, True),
            "theta": _vector("theta", self.theta, True),
            "beta": _vector("beta", self.beta, True),
            "gamma": _vector("gamma", self.gamma, False),
            "c_m": _vector("c_m", self.c_m, False),
        }
        n = arrays["d"].size
        if n == 0:
            raise MechanismError("the game needs at least one ED")
        for name, arr in arrays.items():
            if arr.size != n:
                raise MechanismError(f"{name} has {arr.size} entries, d has {n}")
            object.__setattr__(self, name, arr)
        for name in ("omega", "kappa"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise MechanismError(f"{name} must be a positive finite number, got {v!r}")
        if not (math.isfinite(self.p_g) and self.p_g >= 0):
            raise MechanismError(f"p_g must be a non-negative finite number, got {self.p_g!r}")
        if not np.all(np.isfinite(self.k)) or np.any(self.k <= 0):
            raise MechanismError("the EDs' utility coefficients overflow; rescale d, theta, beta or kappa")

    @property
    def n(self) -> int:
        """Number of candidate EDs."""
        return int(self.d.size)

    @property
    def m(self) -> float:
        """``delta_1 delta_g M``: the per-sample, per-unit-compute training effort."""
        return self.consts.delta_1 * self.consts.delta_g * self.consts.M

    @property
    def k(self) -> Array:
        """``k_i = d_i / (2 kappa^2 theta_i^2 m beta_i)``: ED i's fee is ``p^2 k_i`` at its best response."""
        return self.d / (2.0 * self.kappa**2 * self.theta**2 * self.m * self.beta)

    @property
    def fixed_cost(self) -> Array:
        """``f_i = c^m_i + gamma_i d_i``, the costs an ED pays whatever compute it gives."""
        return self.c_m + self.gamma * self.d

    @property
    def thresholds(self) -> Array:
        """Lowest price at which each ED's best-response profit is >= 0: ``sqrt(2 f_i / k_i)``."""
        return np.sqrt(2.0 * self.fixed_cost / self.k)

    def best_response(self, price: float) -> Array:
        """``C_i* = p / (2 kappa theta_i m beta_i)`` for every ED."""
        return price / (2.0 * self.kappa * self.theta * self.m * self.beta)

    def ed_profit(self, price: float, compute: ArrayLike) -> Array:
        """Each ED's profit when taking part with compute ``C`` at price ``p`` (eq. 34)."""
        c = np.asarray(compute, dtype=np.float64)
        fee = price * c * self.d / (self.kappa * self.theta)
        return fee - self.fixed_cost - self.d * self.m * self.beta * c * c

    def es_profit(self, price: float, members: ArrayLike) -> float:
        """The ES's completed profit for participant set ``members`` (indices) at its EDs' best responses."""
        idx = np.asarray(members, dtype=np.int64)
        if idx.size == 0:
            return 0.0
        K = float(self.k[idx].sum())
        u = float(data_utility(float(self.d[idx].sum()), float(self.theta[idx].mean()), self.consts))
        cb = float(blockchain_cost(idx.size, self.p_g, self.consts))
        return u + self.omega * math.log1p(price * K) - price * price * K - cb


@dataclass(frozen=True)
class StackelbergResult:
    """An equilibrium of one ES's lower game.

    Attributes:
        price: p_t*.
        compute: C_i* per candidate ED (0 for EDs that stay out).
        fees: V_i per candidate ED (0 for EDs that stay out).
        participants: sorted indices of the EDs that take part.
        es_profit: the ES's completed profit pi_s.
        ed_profit: each ED's profit (0 for EDs that stay out).
        K: sum of k_i over the participants.
        participation: ``"exact"`` or ``"drop"``.
    """

    price: float
    compute: Array
    fees: Array
    participants: NDArray[np.int64]
    es_profit: float
    ed_profit: Array
    K: float
    participation: str

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict with the keys of ``bazaar solve tbcim-stackelberg``."""
        return {
            "price": self.price,
            "compute": self.compute.tolist(),
            "fees": self.fees.tolist(),
            "participants": self.participants.tolist(),
            "es_profit": self.es_profit,
            "ed_profit": self.ed_profit.tolist(),
            "K": self.K,
            "participation": self.participation,
        }


def price_closed_form(K: float, omega: float) -> float:
    """``p*(K) = (-1 + sqrt(1 + 2 K omega)) / (2K)``, evaluated as ``omega / (1 + sqrt(1 + 2 K omega))``.

    Both forms are equal; the second has no cancellation for small ``K omega`` and gives ``omega / 2`` at
    ``K = 0``.

    Raises:
        MechanismError: negative K or non-positive omega.
    """
    if not (math.isfinite(K) and K >= 0):
        raise MechanismError(f"K must be finite and non-negative, got {K}")
    if not (math.isfinite(omega) and omega > 0):
        raise MechanismError(f"omega must be positive, got {omega}")
    return omega / (1.0 + math.sqrt(1.0 + 2.0 * K * omega))


def outcome(game: StackelbergGame, price: float, members: ArrayLike, participation: str) -> StackelbergResult:
    """The result record for price ``p`` and participant set ``members`` (EDs at their best responses)."""
    idx = np.sort(np.asarray(members, dtype=np.int64))
    inside = np.zeros(game.n, dtype=bool)
    inside[idx] = True
    compute = np.where(inside, game.best_response(price), 0.0)
    fees = np.where(inside, price * compute * game.d / (game.kappa * game.theta), 0.0)
    ed = np.where(inside, game.ed_profit(price, compute), 0.0)
    return StackelbergResult(
        price=float(price),
        compute=compute,
        fees=fees,
        participants=idx,
        es_profit=game.es_profit(price, idx),
        ed_profit=ed,
        K=float(game.k[idx].sum()),
        participation=participation,
    )


def _solve_exact(game: StackelbergGame) -> StackelbergResult:
    t = game.thresholds
    order = np.argsort(t, kind="stable")
    ts = t[order]
    size = np.arange(1, game.n + 1, dtype=np.float64)
    K = np.cumsum(game.k[order])
    D = np.cumsum(game.d[order])
    theta_mean = np.cumsum(game.theta[order]) / size
    p_star = game.omega / (1.0 + np.sqrt(1.0 + 2.0 * K * game.omega))
    hi = np.append(ts[1:], math.inf)
    p = np.minimum(np.maximum(p_star, ts), hi)
    u = np.asarray(data_utility(D, theta_mean, game.consts), dtype=np.float64)
    cb = game.consts.a6 * game.consts.g_e * game.p_g * size
    values = u + game.omega * np.log1p(p * K) - p * p * K - cb
    best = int(np.argmax(values))  # first maximum: the smallest worker set among equals
    if not values[best] > TOL:
        return outcome(game, 0.0, np.array([], dtype=np.int64), "exact")
    return outcome(game, float(p[best]), order[: best + 1], "exact")


def _solve_drop(game: StackelbergGame) -> StackelbergResult:
    members = list(range(game.n))
    while members:
        idx = np.array(members, dtype=np.int64)
        p = price_closed_form(float(game.k[idx].sum()), game.omega)
        profits = game.ed_profit(p, game.best_response(p))[idx]
        worst = int(np.argmin(profits))
        if profits[worst] >= -TOL * max(1.0, float(game.fixed_cost[idx[worst]])):
            return outcome(game, p, idx, "drop")
        members.pop(worst)
    return outcome(game, 0.0, np.array([], dtype=np.int64), "drop")


def solve_stackelberg(game: StackelbergGame, participation: str = "exact") -> StackelbergResult:
    """Solve one ES's lower game (see the module docstring for the two participation rules).

    Args:
        game: the ES and its candidate EDs.
        participation: ``"exact"`` (leader anticipates participation) or ``"drop"`` (SPEC's iteration).

    Returns:
        The equilibrium. If no price makes taking part worth it for the ES, price 0 and no participants.

    Raises:
        MechanismError: unknown participation rule.
    """
    if participation == "exact":
        return _solve_exact(game)
    if participation == "drop":
        return _solve_drop(game)
    raise MechanismError(f"participation must be one of {', '.join(PARTICIPATION)}, got {participation!r}")
