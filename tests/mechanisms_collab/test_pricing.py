"""Price regulation: bounds, direction of every move, equilibrium reporting, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from bazaar.mechanisms.collab import (
    ALGORITHMS,
    PricingConfig,
    Publisher,
    Seller,
    evaluate_market,
    run_pricing,
)
from bazaar.mechanisms.collab.instances import random_publishers, random_sellers
from bazaar.mechanisms.errors import MechanismError


def _market(seed: int, i: int = 4, j: int = 5) -> tuple[list[Seller], list[Publisher]]:
    rng = np.random.default_rng(seed)
    return random_sellers(rng, i), random_publishers(rng, j)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_prices_stay_in_range_and_follow_the_gap(algorithm: str, seed: int) -> None:
    sellers, pubs = _market(seed)
    cfg = PricingConfig(max_iter=25, record_history=True, evo_population=3, seed=seed)
    res = run_pricing(sellers, pubs, algorithm, cfg)
    hist = res.history
    assert len(hist) == res.iterations + 1
    n = len(sellers)
    for (p0, dirs), (p1, _) in itertools.pairwise(hist):
        for k, (a, b, d) in enumerate(zip(p0, p1, dirs, strict=True)):
            pmax = cfg.p_max_compute if k < n else cfg.p_max_data
            assert 0.0 <= b <= pmax
            assert np.sign(b - a) in (0, d)
    assert res.equilibrium == res.state.equilibrium
    assert res.equilibrium or res.iterations == cfg.max_iter
    assert res.gap == pytest.approx(res.state.gap)


def test_settled_trades_respect_capacity_and_budgets() -> None:
    sellers, pubs = _market(3, 3, 8)
    res = run_pricing(sellers, pubs, "pdpa", PricingConfig(max_iter=40))
    for i, s in enumerate(sellers):
        assert sum(p.compute_purchases[i] for p in res.portfolios) <= s.compute_capacity + 1e-6
        assert sum(p.data_purchases[i] for p in res.portfolios) <= s.data_capacity + 1e-6
    for pub, port in zip(pubs, res.portfolios, strict=True):
        assert port.spent <= pub.budget + 1e-6
    assert res.total_payoff == pytest.approx(sum(p.payoff for p in res.portfolios))


def test_equilibrium_test_and_direction() -> None:
    # one small seller, two publishers that each want all of it: excess demand, its price must rise
    sellers = [Seller(1, 1.0, 1, 5.0, 0.5, 0.01)]
    pubs = [Publisher(100, 30, 5, 2.0, 0.7), Publisher(100, 30, 5, 2.0, 0.7)]
    st = evaluate_market(sellers, pubs)
    assert not st.equilibrium and st.direction(0) == 1
    # a seller at price zero with unsold capacity is cleared (free disposal)
    st2 = evaluate_market([Seller(1000, 0.0, 0, 5.0)], [Publisher(50, 10, 10, 0.0, 0.5)])
    assert st2.cleared[0] and st2.equilibrium


def test_deterministic_for_a_seed() -> None:
    sellers, pubs = _market(5)
    a = run_pricing(sellers, pubs, "qlearning", PricingConfig(max_iter=15, seed=7))
    b = run_pricing(sellers, pubs, "qlearning", PricingConfig(max_iter=15, seed=7))
    assert a.to_dict() == b.to_dict()


def test_bad_pricing_input() -> None:
    sellers, pubs = _market(0)
    with pytest.raises(MechanismError):
        run_pricing(sellers, pubs, "auction")
    with pytest.raises(MechanismError):
        run_pricing(sellers, [], "spa")
    with pytest.raises(MechanismError):
        PricingConfig(sigma=0)
    with pytest.raises(MechanismError):
        run_pricing(sellers, pubs, "spa", PricingConfig(p_max_compute=0.5))
