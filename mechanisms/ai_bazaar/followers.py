"""The followers' (AI consumers') game: profits, best responses and the verified Nash equilibrium.

Write ``x_i = β_i F_i`` (compute devoted to mining), ``X = Σ_j x_j``, ``a_i(p) = u_i p − (1−β_i) C_b`` and
``c_i = a_i / β_i``. Then ``U_i = −c_i x_i + R_i^c x_i / X``: a Tullock lottery with linear costs and box
constraints ``x_i ∈ [β_i F_min, β_i F_max]``. For a fixed aggregate ``X`` each miner's KKT point is unique,
``x_i(X) = clip(X − c_i X² / R_i^c, β_i F_min, β_i F_max)``, and its share ``x_i(X)/X`` is strictly decreasing
in ``X``; so the equilibrium is the unique root of ``Σ_i x_i(X)/X = 1`` (found by Brent's method) and is then
verified by :func:`max_deviation_gain`. See ``docs/models/ai-bazaar.md``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConvergenceError, MechanismError
from ..scalar import brentq
from .params import Params, mining_value

#: Relative tolerance of the equilibrium check (scaled by the size of the consumers' profits).
VERIFY_RTOL = 1e-8
#: Number of demand levels in the dense deviation grid of :func:`max_deviation_gain`.
DEVIATION_GRID = 257


def marginal_cost(params: Params, p: float) -> np.ndarray:
    """``a_i(p) = u_i p − (1−β_i) C_b``: the net cost of one more unit before mining; zero within rounding.

    Values within ``1e-12`` (relative) of zero are returned as exactly 0, so that a price set where a consumer
    is just indifferent (``a_i = 0``) is treated by the convention ``a_i <= 0 → F_max`` reproducibly.
    """
    pay = params.u * float(p)
    gain = (1.0 - params.beta) * params.C_b
    a = pay - gain
    return np.where(np.abs(a) <= 1e-12 * (np.abs(pay) + np.abs(gain)), 0.0, a)


def profit_scale(params: Params, p: float) -> float:
    """A size of the consumers' profits at price ``p`` (used to make tolerances relative)."""
    a = marginal_cost(params, p)
    return float(max(1.0, np.max(np.abs(a) * params.F_max + mining_value(params))))


def _check_demand(params: Params, F: np.ndarray) -> np.ndarray:
    arr = np.asarray(F, dtype=float)
    if arr.shape != (params.n,):
        raise MechanismError(f"demand must have shape ({params.n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MechanismError("demand must be finite")
    return arr


def consumer_profit(params: Params, p: float, F: np.ndarray) -> np.ndarray:
    """Every consumer's profit ``U_i = F_i((1−β_i)C_b − u_i p) + R_i^c β_i F_i / Σ_j β_j F_j``.

    Args:
        params: the game.
        p: the unit price.
        F: demands, shape ``(n,)``.

    Returns:
        Profits, shape ``(n,)``. With nobody mining (``Σ β_j F_j = 0``) the mining term is 0.
    """
    F = _check_demand(params, F)
    x = params.beta * F
    total = float(np.sum(x))
    share = x / total if total > 0 else np.zeros(params.n)
    return -marginal_cost(params, p) * F + mining_value(params) * share


def cpp_profit(params: Params, p: float, F: np.ndarray) -> float:
    """The CPP's profit ``U_cpp = Σ_i (p − C) F_i``."""
    F = _check_demand(params, F)
    return float((float(p) - params.C) * np.sum(F))


def own_profit(params: Params, i: int, p: float, F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Consumer ``i``'s profit if it bought ``y`` (an array of candidates) while the others keep ``F``."""
    F = _check_demand(params, F)
    y = np.asarray(y, dtype=float)
    a = float(marginal_cost(params, p)[i])
    rc = float(mining_value(params)[i])
    b = float(params.beta[i])
    others = float(np.sum(params.beta * F) - b * F[i])
    xi = b * y
    denom = xi + others
    share = np.divide(xi, denom, out=np.zeros_like(xi), where=denom > 0)
    return -a * y + rc * share


def best_response(params: Params, i: int, p: float, F: np.ndarray) -> float:
    """Consumer ``i``'s exact best demand against the others' demands ``F`` (its own entry is ignored).

    ``F_i = clip(sqrt(R_i^c S_−i / (β_i a_i)) − S_−i / β_i, F_min, F_max)`` when ``a_i > 0`` (``U_i`` is
    strictly concave in ``F_i`` then); ``F_min`` when ``a_i > 0`` and mining cannot pay (``β_i = 0``,
    ``R_i^c = 0`` or nobody else mines, so the share is 1 at any demand); ``F_max`` when ``a_i <= 0`` (each
    unit pays for itself).

    Raises:
        MechanismError: ``i`` out of range or ``F`` of the wrong shape.
    """
    if not 0 <= i < params.n:
        raise MechanismError(f"consumer index {i} out of range 0..{params.n - 1}")
    F = _check_demand(params, F)
    a = float(marginal_cost(params, p)[i])
    if a <= 0:
        return float(params.F_max)
    b = float(params.beta[i])
    rc = float(mining_value(params)[i])
    others = float(np.sum(params.beta * F) - b * F[i])
    if b <= 0 or rc <= 0 or others <= 0:
        return float(params.F_min)
    f = np.sqrt(rc * others / (b * a)) - others / b
    return float(np.clip(f, params.F_min, params.F_max))


def max_deviation_gain(params: Params, p: float, F: np.ndarray, *, grid: int = DEVIATION_GRID) -> float:
    """The largest gain any consumer gets by a unilateral deviation in ``[F_min, F_max]``.

    Each consumer's candidates are ``grid`` evenly spaced demands plus its exact best response; the gain is
    measured against its profit at ``F`` (so it is ``>= 0``).
    """
    F = _check_demand(params, F)
    candidates = np.linspace(params.F_min, params.F_max, max(2, grid))
    best = 0.0
    for i in range(params.n):
        ys = np.append(candidates, best_response(params, i, p, F))
        values = own_profit(params, i, p, F, np.append(ys, F[i]))
        best = max(best, float(np.max(values[:-1]) - values[-1]))
    return best


def _aggregate_solve(params: Params, p: float) -> np.ndarray:
    """The follower equilibrium by the aggregate (share-function) method, unverified."""
    a = marginal_cost(params, p)
    rc = mining_value(params)
    beta = params.beta
    F = np.where(a <= 0, params.F_max, params.F_min).astype(float)
    miners = np.flatnonzero(beta > 0)
    if miners.size == 0:
        return F
    lo = beta[miners] * params.F_min
    hi = beta[miners] * params.F_max
    am, rm = a[miners], rc[miners]
    fixed = (am <= 0) | (rm <= 0)
    fixed_x = np.where(am <= 0, hi, lo)
    var = ~fixed
    with np.errstate(over="ignore"):  # a vanishing R_i^c makes c_i / R_i^c infinite: x_i = lo_i, correctly
        cr = np.divide(am / beta[miners], rm, out=np.zeros_like(am), where=var)

    def x_of(X: float) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # cr = inf: X - inf = -inf, clipped to lo
            return np.where(var, np.clip(X - cr * X * X, lo, hi), fixed_x)

    def h(X: float) -> float:
        return float(np.sum(x_of(X)) / X - 1.0)

    x_lo = float(np.sum(np.where(fixed, fixed_x, lo)))
    x_hi = float(np.sum(np.where(fixed, fixed_x, hi)))
    if not var.any() or h(x_lo) <= 0.0:
        X = x_lo
    elif h(x_hi) >= 0.0:
        X = x_hi
    else:
        X = float(brentq(h, x_lo, x_hi, xtol=1e-15 * x_hi, rtol=4 * np.finfo(float).eps, maxiter=500))
    F[miners] = x_of(X) / beta[miners]
    return np.clip(F, params.F_min, params.F_max)


def follower_equilibrium(params: Params, p: float, *, tol: float | None = None) -> np.ndarray:
    """The consumers' Nash equilibrium demands at price ``p``, verified.

    Args:
        params: the game.
        p: the unit price (any real; normally in ``[p_min, p_max]``).
        tol: largest accepted unilateral deviation gain; default ``VERIFY_RTOL`` times :func:`profit_scale`.

    Returns:
        Demands ``F*``, shape ``(n,)``.

    Raises:
        ConvergenceError: the computed point is not an equilibrium within ``tol``.
    """
    F = _aggregate_solve(params, p)
    limit = VERIFY_RTOL * profit_scale(params, p) if tol is None else tol
    gain = max_deviation_gain(params, p, F)
    if gain > limit:
        raise ConvergenceError("follower equilibrium failed verification", iterations=1, residual=gain)
    return F


def closed_form_equilibrium(params: Params, p: float) -> np.ndarray:
    """The paper's eq. (18): ``X = (N−1) / Σ_j a_j/R_j^c``, ``F_i = X − X² a_i / R_i^c`` (no clipping).

    Valid when every ``β_i`` is equal and every consumer is interior; callers check the latter.

    Raises:
        MechanismError: unequal ``β``, ``β = 0``, ``R_i^c = 0``, ``N < 2`` or ``Σ a_j/R_j^c <= 0``.
    """
    rc = mining_value(params)
    if params.n < 2 or not np.all(params.beta == params.beta[0]) or params.beta[0] <= 0 or np.any(rc <= 0):
        raise MechanismError("eq. (18) needs N >= 2, equal positive β and positive mining values")
    a = marginal_cost(params, p)
    denom = float(np.sum(a / rc))
    if denom <= 0:
        raise MechanismError("eq. (18) needs Σ a_j / R_j^c > 0")
    X = (params.n - 1) / denom
    return X - X * X * a / rc


def _numeric_best_response(params: Params, i: int, p: float, F: np.ndarray) -> float:
    """Best response by bounded scalar maximisation plus a grid (independent of the closed form)."""
    grid = np.linspace(params.F_min, params.F_max, 65)
    values = own_profit(params, i, p, F, grid)
    k = int(np.argmax(values))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best_y, best_v = float(grid[k]), float(values[k])
    if hi > lo:
        from scipy.optimize import minimize_scalar  # the slow reference only: nodes never load scipy for it

        res = minimize_scalar(lambda y: -float(own_profit(params, i, p, F, np.array([y]))[0]),
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-12 * (1 + hi)})
        if -float(res.fun) > best_v:
            best_y = float(res.x)
    return best_y


def reference_follower_equilibrium(params: Params, p: float, *, max_sweeps: int = 5000,
                                   xtol: float = 1e-7) -> np.ndarray:
    """Slow reference: damped Gauss–Seidel best-response iteration with numerically maximised responses.

    Each sweep replaces ``F_i`` by ``(1−η) F_i + η BR_i`` in turn, where ``BR_i`` maximises ``U_i`` by a grid
    plus bounded Brent search (no closed form used). ``η`` starts at 1 and halves whenever a sweep moves more
    than the previous one (best-response cycles in lottery contests). Stops when a sweep moves less than
    ``xtol``·max(1, max F) (the numerical best response is only accurate to about 1e-8 relative).

    Raises:
        ConvergenceError: no convergence in ``max_sweeps`` sweeps.
    """
    F = np.full(params.n, params.F_max, dtype=float)
    eta, last = 1.0, np.inf
    for _sweep in range(1, max_sweeps + 1):
        old = F.copy()
        for i in range(params.n):
            F[i] = (1 - eta) * F[i] + eta * _numeric_best_response(params, i, p, F)
        move = float(np.max(np.abs(F - old)))
        if move <= xtol * max(1.0, float(np.max(F))):
            return F
        if move > last and eta > 1e-3:
            eta *= 0.5
        last = move
    raise ConvergenceError("reference best-response iteration did not converge", iterations=max_sweeps,
                           residual=last)
