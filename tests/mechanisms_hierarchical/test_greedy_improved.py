"""``greedy-1opt`` (the experiment's third curve): the greedy allocation plus the Lagrangian heuristic's 1-opt
search is feasible, never below the greedy's welfare, and never above the exact optimum."""

from __future__ import annotations

import numpy as np
import pytest

from bazaar.mechanisms.hierarchical import exact_clear, solve_multi_ccsp
from bazaar.mechanisms.hierarchical.greedy import greedy_allocate
from bazaar.mechanisms.hierarchical.lagrangian import greedy_improved_allocate
from bazaar.mechanisms.hierarchical.levels import bundle_bids
from bazaar.mechanisms.hierarchical.market import NO_TRADE
from bazaar.mechanisms.hierarchical.multi_ccsp import MULTI_UPPER_METHODS, multi_upper_market
from bazaar.mechanisms.hierarchical.scenarios import multi_ccsp_instance


@pytest.mark.parametrize("seed", range(6))
def test_greedy_plus_local_search_is_feasible_and_between_greedy_and_optimum(seed: int) -> None:
    inst, _ = multi_ccsp_instance(12, np.random.default_rng(seed))
    um = multi_upper_market(inst, bundle_bids(inst.single(), "greedy").values)
    base, improved = greedy_allocate(um), greedy_improved_allocate(um)
    used = np.zeros(um.n_sellers)
    for b in range(um.n_buyers):
        if improved.seller[b] != NO_TRADE:
            assert um.trade_ok(b, int(improved.option[b]), int(improved.seller[b]))
            used[improved.seller[b]] += um.quantity[b, improved.option[b]]
    assert np.all(used <= um.capacity + 1e-9)
    assert improved.welfare >= base.welfare - 1e-9
    assert improved.welfare <= exact_clear(um, "milp").welfare + 1e-6


def test_the_payment_less_method_is_never_a_network_rule() -> None:
    assert "greedy-1opt" not in MULTI_UPPER_METHODS
    inst, _ = multi_ccsp_instance(8, np.random.default_rng(0))
    assert solve_multi_ccsp(inst, "greedy-1opt", "greedy", reference=False).assignment is not None
