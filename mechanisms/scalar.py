"""Scalar root finding and bounded minimisation: scipy's algorithms, ported line for line (docs/adr/0121).

A node process of ``ai-bazaar`` solves the Stackelberg game every round with two scalar routines, Brent's root
finder (``scipy.optimize.brentq``) and bounded Brent minimisation (``minimize_scalar(method="bounded")``).
Importing ``scipy.optimize`` for them costs ≈ 40 MB of resident memory per process (it loads HiGHS, the sparse
and linear-algebra stacks), a third of the 110 MB a node may use. These are the same two algorithms, as
scipy 1.17 implements them (``scipy/optimize/Zeros/brentq.c`` and ``_optimize._minimize_scalar_bounded``,
BSD-3-Clause), with the same floating-point operations in the same order: tests/mechanisms_ai_bazaar/
test_scalar.py checks that they return bit-identical results to scipy's on random brackets and functions.
Solvers that need more of scipy (LP, MILP, reference solvers) import it inside the function that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConvergenceError, MechanismError

_SQRT_EPS = math.sqrt(2.2e-16)
_GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))


def brentq(f: Callable[[float], float], xa: float, xb: float, *, xtol: float = 2e-12,
           rtol: float = 8.881784197001252e-16, maxiter: int = 100) -> float:
    """A root of ``f`` in the sign-changing bracket ``[xa, xb]`` (scipy's ``brentq``, same bits).

    Raises:
        MechanismError: ``f(xa)`` and ``f(xb)`` have the same sign, or a tolerance is not positive.
        ConvergenceError: no convergence within ``maxiter`` iterations.
    """
    if xtol <= 0 or rtol < 4 * 2.220446049250313e-16:
        raise MechanismError(f"brentq tolerances too small (xtol={xtol}, rtol={rtol})")
    xpre, xcur = float(xa), float(xb)
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = float(f(xpre)), float(f(xcur))
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1.0, fpre) == math.copysign(1.0, fcur):
        raise MechanismError("brentq: f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1.0, fpre) != math.copysign(1.0, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):  # good short step
                spre, scur = scur, stry
            else:  # bisect
                spre = scur = sbis
        else:  # bisect
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        if abs(scur) > delta:
            xcur += scur
        else:
            xcur += delta if sbis > 0 else -delta
        fcur = float(f(xcur))
    raise ConvergenceError("brentq did not converge", iterations=maxiter, residual=abs(fcur))


@dataclass(frozen=True)
class Minimum:
    """The result of :func:`minimize_bounded`: the argument ``x``, the value ``fun`` and evaluations ``nfev``."""

    x: float
    fun: float
    nfev: int
    converged: bool


def _sign(v: float) -> float:
    """``np.sign(v) + (v == 0)`` of scipy's loop: 1.0 for v >= 0, -1.0 below."""
    return 1.0 if v >= 0 else -1.0


def minimize_bounded(func: Callable[[float], float], bounds: tuple[float, float], *, xatol: float = 1e-5,
                     maxiter: int = 500) -> Minimum:
    """Minimise ``func`` on ``[lo, hi]`` by Brent's bounded method (scipy's ``minimize_scalar(...,
    method="bounded")``, same bits).

    Raises:
        MechanismError: bounds that are not finite or not ordered.
    """
    x1, x2 = (float(b) for b in bounds)
    if not (math.isfinite(x1) and math.isfinite(x2)):
        raise MechanismError("optimization bounds must be finite scalars")
    if x1 > x2:
        raise MechanismError("the lower bound exceeds the upper bound")
    a, b = x1, x2
    fulc = a + _GOLDEN * (b - a)
    nfc = xf = fulc
    rat = e = 0.0
    x = xf
    fx = float(func(x))
    num = 1
    fu = math.inf
    ffulc = fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    converged = True
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:  # parabolic fit
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = rat
            if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    rat = tol1 * _sign(xm - xf)
            else:
                golden = True
        if golden:
            e = a - xf if xf >= xm else b - xf
            rat = _GOLDEN * e
        x = xf + _sign(rat) * max(abs(rat), tol1)
        fu = float(func(x))
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc, ffulc = nfc, fnfc
            nfc, fnfc = xf, fx
            xf, fx = x, fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc, ffulc = nfc, fnfc
                nfc, fnfc = x, fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:  # noqa: SIM109 - scipy's test, nan included
                fulc, ffulc = x, fu
        xm = 0.5 * (a + b)
        tol1 = _SQRT_EPS * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            converged = False
            break
    if math.isnan(xf) or math.isnan(fx) or math.isnan(fu):
        converged = False
    return Minimum(x=xf, fun=fx, nfev=num, converged=converged)
