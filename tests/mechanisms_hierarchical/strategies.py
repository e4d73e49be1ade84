"""Hypothesis strategies: small hierarchical instances (brute force stays cheap)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bazaar.mechanisms.hierarchical import HierarchicalInstance, make_instance, make_market


@st.composite
def lower_markets(draw: st.DrawFn, max_buyers: int = 6, max_sellers: int = 2, reach: bool = True):
    """A lower-level market with continuous bids (ties have probability zero)."""
    n = draw(st.integers(1, max_buyers))
    m = draw(st.integers(1, max_sellers))
    d = np.array(draw(st.lists(st.integers(1, 10), min_size=n, max_size=n)), float)
    per_unit = np.array(draw(st.lists(st.floats(0.05, 3.0), min_size=n, max_size=n)))
    cap = np.array(draw(st.lists(st.integers(0, 20), min_size=m, max_size=m)), float)
    ask = np.array(draw(st.lists(st.floats(0.0, 1.5), min_size=m, max_size=m)))
    allowed = None
    if reach and m > 1 and draw(st.booleans()):
        allowed = np.array(draw(st.lists(st.lists(st.booleans(), min_size=m, max_size=m), min_size=n,
                                         max_size=n)))
    base = draw(st.sampled_from([0.0, 0.0, 0.2]))
    return make_market(d, d * per_unit, cap, ask, allowed, base)


@st.composite
def instances(draw: st.DrawFn, max_miners: int = 5, max_mesps: int = 2, separable: bool | None = None
              ) -> HierarchicalInstance:
    """A whole single-CCSP instance with a coarse bundle grid."""
    n = draw(st.integers(1, max_miners))
    m = draw(st.integers(1, max_mesps))
    d = np.array(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)), float)
    per_unit = np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n)))
    cap = np.array(draw(st.lists(st.integers(0, 10), min_size=m, max_size=m)), float)
    ask = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m)))
    step = float(draw(st.sampled_from([2, 3, 4])))
    spare = step * draw(st.integers(0, 3))
    kappa = draw(st.sampled_from([0.0, 0.0, 0.3]))
    if separable is None:
        separable = draw(st.booleans())
    reach = None
    if separable:
        home = draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n))
        reach = np.zeros((n, m), bool)
        reach[np.arange(n), home] = True
    return make_instance(d, d * per_unit, cap, ask, cap.sum() + spare, step, kappa, 0.0, reach)
