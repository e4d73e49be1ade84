"""The ported scalar routines (mechanisms/scalar.py) return scipy's results bit for bit (docs/adr/0121)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq as scipy_brentq
from scipy.optimize import minimize_scalar

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.scalar import brentq, minimize_bounded

coef = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)


def _cubic(a: float, b: float, c: float):  # type: ignore[no-untyped-def]
    return lambda x: x ** 3 + a * x * x + b * x + c


@settings(max_examples=300, deadline=None)
@given(coef, coef, coef, st.floats(min_value=1e-15, max_value=1e-3))
def test_brentq_is_scipys_bit_for_bit(a: float, b: float, c: float, xtol: float) -> None:
    f = _cubic(a, b, c)
    lo, hi = -200.0, 200.0  # the cubic changes sign on this bracket for these coefficients
    assert f(lo) < 0 < f(hi)
    want = scipy_brentq(f, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=500)
    got = brentq(f, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=500)
    assert got == want  # exact equality: the same operations in the same order


def test_brentq_on_the_follower_root_shape() -> None:
    # h(X) = sum(clip(X - c X^2)) / X - 1, the shape of ai-bazaar's aggregate equation
    c = np.array([0.01, 0.02, 0.015, 0.03])

    def h(x: float) -> float:
        return float(np.sum(np.clip(x - c * x * x, 0.5, 40.0)) / x - 1.0)

    want = scipy_brentq(h, 2.0, 160.0, xtol=1e-15 * 160.0, rtol=4 * np.finfo(float).eps, maxiter=500)
    assert brentq(h, 2.0, 160.0, xtol=1e-15 * 160.0, rtol=4 * np.finfo(float).eps, maxiter=500) == want


def test_brentq_refuses_a_bracket_without_a_sign_change() -> None:
    with pytest.raises(MechanismError):
        brentq(lambda x: x * x + 1.0, -1.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(coef, coef, st.floats(min_value=0.1, max_value=20), st.floats(min_value=-20, max_value=20),
       st.floats(min_value=1e-14, max_value=1e-2))
def test_minimize_bounded_is_scipys_bit_for_bit(a: float, b: float, width: float, lo: float, xatol: float) -> None:
    def f(x: float) -> float:
        return math.sin(a * 0.1 * x) * b + (x - lo - width / 3) ** 2

    want = minimize_scalar(f, bounds=(lo, lo + width), method="bounded", options={"xatol": xatol})
    got = minimize_bounded(f, (lo, lo + width), xatol=xatol)
    assert (got.x, got.fun, got.nfev) == (float(want.x), float(want.fun), int(want.nfev))
    assert got.converged == bool(want.success)


def test_minimize_bounded_refuses_bad_bounds() -> None:
    with pytest.raises(MechanismError):
        minimize_bounded(lambda x: x, (1.0, 0.0))
    with pytest.raises(MechanismError):
        minimize_bounded(lambda x: x, (0.0, math.inf))
