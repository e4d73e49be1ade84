"""Confidence intervals of the experiments (docs/adr/0135-experiment-repetitions-and-provenance.md).

* :func:`mean_ci` — the mean of N independent repetitions with a two-sided Student-t interval,
  ``mean ± t(1 − α/2, N − 1) · s / √N`` (``s`` the sample standard deviation, ddof = 1). With one repetition
  there is no interval: both ends are ``nan`` (written as ``null`` in JSON).
* :func:`median_ci` — a distribution-free interval for the median from order statistics (the binomial
  interval), used for "episodes to converge", which are skewed and censored (a run that never converges
  counts as ``+inf``: it sits above every finite value, so the median stays exact while fewer than half
  of the runs are censored).
* :func:`summarise` — group per-repetition rows and add ``<value>_mean``, ``<value>_lo``, ``<value>_hi``
  and ``<value>_n`` for each value column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

LEVEL = 0.95


def mean_ci(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean and its two-sided Student-t confidence interval.

    Args:
        values: one number per independent repetition; ``nan`` entries are dropped.
        level: the confidence level (0 < level < 1).

    Returns:
        The mean and the interval's ends; ends are ``nan`` with fewer than two values, all three are ``nan``
        with none. Identical values give a zero-width interval.
    """
    import numpy as np
    from scipy import stats

    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    xs = np.asarray([float(v) for v in values], dtype=float)
    xs = xs[~np.isnan(xs)]
    if xs.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(xs.mean())
    if xs.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2.0, xs.size - 1) * xs.std(ddof=1) / math.sqrt(xs.size))
    return mean, mean - half, mean + half


def median_ci(values: Iterable[float | None], level: float = LEVEL) -> tuple[float, float, float]:
    """``(median, lo, hi)``: the sample median and a distribution-free interval from order statistics.

    ``None`` (for instance "never converged") counts as ``+inf``. The interval is ``[x_(k), x_(n−k+1)]``
    with the largest ``k`` such that ``P(k ≤ B ≤ n − k) ≥ level`` for ``B ~ Binomial(n, 1/2)``; with too few
    values for that (n < 6 at 95 %) the ends are the sample minimum and maximum, whose coverage
    ``1 − 2^(1−n)`` is below ``level`` — callers with fewer values state so.

    Returns:
        The median and the interval's ends (any of them may be ``inf``).
    """
    from scipy import stats

    xs = sorted(math.inf if v is None else float(v) for v in values)
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan
    med = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0
    k = 1
    for cand in range(n // 2, 0, -1):  # largest k with coverage >= level
        cover = float(stats.binom.cdf(n - cand, n, 0.5) - stats.binom.cdf(cand - 1, n, 0.5))
        if cover >= level:
            k = cand
            break
    return med, xs[k - 1], xs[n - k]


def median_ci_coverage(n: int, level: float = LEVEL) -> float:
    """The exact coverage of :func:`median_ci`'s interval for ``n`` values."""
    from scipy import stats

    if n < 1:
        return math.nan
    for cand in range(n // 2, 0, -1):
        cover = float(stats.binom.cdf(n - cand, n, 0.5) - stats.binom.cdf(cand - 1, n, 0.5))
        if cover >= level:
            return cover
    return 1.0 - 2.0 ** (1 - n)


def summarise(rows: Sequence[dict[str, Any]], by: Sequence[str], values: Sequence[str],
              level: float = LEVEL) -> list[dict[str, Any]]:
    """Group ``rows`` (one per repetition) by the ``by`` columns; mean and t-interval of each ``values`` column.

    Returns:
        One row per group, in the order groups first appear: the ``by`` columns, then for every value ``v``
        the columns ``v_mean``, ``v_lo``, ``v_hi`` and ``v_n`` (the number of non-``nan`` repetitions).
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        for v in values:
            xs = [math.nan if r.get(v) is None else float(r[v]) for r in rs]
            mean, lo, hi = mean_ci(xs, level)
            row[f"{v}_mean"], row[f"{v}_lo"], row[f"{v}_hi"] = mean, lo, hi
            row[f"{v}_n"] = sum(1 for x in xs if not math.isnan(x))
        out.append(row)
    return out
