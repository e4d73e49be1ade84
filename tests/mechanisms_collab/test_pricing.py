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


def _independent_state(sellers: list[Seller], pubs: list[Publisher], tol: float
                       ) -> tuple[list[float], list[bool]]:
    """Demand per offer and the cleared test, recomputed from the definitions without ``market.py``:
    plans on the full book, filled in publisher order cheapest first within budget, unmet demand spread over
    the sold-out offers of its resource in proportion to capacity."""
    from bazaar.mechanisms.collab import optimize_portfolio

    n = len(sellers)
    prices = [s.compute_price for s in sellers] + [s.data_price for s in sellers]
    caps = [s.compute_capacity for s in sellers] + [s.data_capacity for s in sellers]
    left = list(caps)
    got = [0.0] * (2 * n)
    unmet = [0.0, 0.0]
    for pub in pubs:
        plan = optimize_portfolio(pub, sellers, "sgsa", integral=False)
        if not plan.feasible:
            continue
        money = pub.budget
        for r, want in enumerate((plan.compute, plan.data)):
            slots = sorted(range(r * n, (r + 1) * n), key=lambda k: (prices[k], k))
            for k in slots:
                q = min(left[k], want, money / prices[k] if prices[k] > 0 else np.inf)
                q = max(q, 0.0)
                left[k] -= q
                got[k] += q
                want -= q
                money -= q * prices[k]
            unmet[r] += max(0.0, want)
    dem = list(got)
    for r in range(2):
        sold = [k for k in range(r * n, (r + 1) * n) if caps[k] > 0 and left[k] <= 1e-9 * max(1.0, caps[k])]
        tot = sum(caps[k] for k in sold)
        for k in sold:
            dem[k] += unmet[r] * caps[k] / tot if unmet[r] > 1e-12 else 0.0
    cleared = [caps[k] <= 0 or abs(dem[k] - caps[k]) <= tol * caps[k] or (prices[k] <= 0 and dem[k] < caps[k])
               for k in range(2 * n)]
    return dem, cleared


def test_paper_range_market_reaches_equilibrium_within_200_iterations() -> None:
    # 10 sellers x 10 publishers drawn from the paper's ranges (fixed seed), paper coefficients, 200 iterations.
    # PDPA (whose step shrinks as prices draw together) clears 5 of 6 such markets; TAPA clears none once the
    # publishers' portfolios are optimal (ADR 0031), which test_tapa_reports_the_cap_cleanly pins down.
    rng = np.random.default_rng([0, 10, 4])
    sellers, pubs = random_sellers(rng, 10), random_publishers(rng, 10)
    cfg = PricingConfig(max_iter=200)
    res = run_pricing(sellers, pubs, "pdpa", cfg)
    assert res.equilibrium and res.iterations <= 200
    final = [s.with_prices(pf, pd) for s, pf, pd in zip(sellers, res.compute_prices, res.data_prices, strict=True)]
    dem, cleared = _independent_state(final, pubs, cfg.tol)
    assert all(cleared)
    assert dem == pytest.approx(list(res.state.demand_qty), rel=1e-9, abs=1e-9)
    assert res.state.supply == pytest.approx([p * c for p, c in zip(res.state.prices, res.state.capacity,
                                                                     strict=True)])


def test_tapa_reports_the_cap_cleanly() -> None:
    rng = np.random.default_rng([0, 10, 4])
    sellers, pubs = random_sellers(rng, 10), random_publishers(rng, 10)
    cfg = PricingConfig(max_iter=200)
    res = run_pricing(sellers, pubs, "tapa", cfg)
    assert not res.equilibrium and res.iterations == 200
    final = [s.with_prices(pf, pd) for s, pf, pd in zip(sellers, res.compute_prices, res.data_prices, strict=True)]
    _, cleared = _independent_state(final, pubs, cfg.tol)
    assert not all(cleared)  # "not reached" is true, not a reporting artefact
    assert all(0.0 <= p <= cfg.p_max_compute for p in res.compute_prices)
    assert all(0.0 <= p <= cfg.p_max_data for p in res.data_prices)


@pytest.mark.parametrize("seed", [2, 3])
def test_equilibrium_check_matches_an_independent_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sellers, pubs = random_sellers(rng, 4), random_publishers(rng, 6)
    st = evaluate_market(sellers, pubs)
    dem, cleared = _independent_state(sellers, pubs, 0.05)
    assert dem == pytest.approx(list(st.demand_qty), rel=1e-9, abs=1e-9)
    assert list(st.cleared) == cleared


def test_damping_shrinks_steps_after_a_reversal() -> None:
    sellers, pubs = _market(1)
    # σ = 1: every out-of-equilibrium offer moves each iteration, so each reversal is seen by a move
    cfg = PricingConfig(max_iter=30, record_history=True, sigma=1.0, damping=0.5, damping_growth=1.0)
    hist = run_pricing(sellers, pubs, "spa", cfg).history
    last: dict[int, tuple[int, float]] = {}
    for (p0, _dirs), (p1, _) in itertools.pairwise(hist):
        for k, (a, b) in enumerate(zip(p0, p1, strict=True)):
            if b == a or b in (0.0, cfg.p_max_compute, cfg.p_max_data) or a == 0.0:
                continue
            d, size = int(np.sign(b - a)), abs(b - a)
            if k in last and last[k][0] == -d:
                assert size == pytest.approx(last[k][1] / 2, rel=1e-9)
            elif k in last:
                assert size == pytest.approx(last[k][1], rel=1e-9)
            last[k] = (d, size)
    with pytest.raises(MechanismError):
        PricingConfig(damping=0.0)
