"""Miner model: hash shares, orphan factor, valuations, the normalised network effect."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.hierarchical import (
    MinerPopulation,
    NoEffect,
    SShapedEffect,
    ex_ante_valuation,
    ex_post_valuation,
    hash_share,
    orphan_factor,
    paper_population,
    success_probability,
)


def test_hash_shares_sum_to_one_over_the_served():
    d = np.array([100.0, 300.0, 600.0])
    h = hash_share(d, np.array([True, False, True]))
    assert h.sum() == pytest.approx(1.0)
    assert h[1] == 0 and h[2] == pytest.approx(600 / 700)
    assert hash_share(d, np.zeros(3, bool)).sum() == 0


def test_valuation_formula():
    pop = MinerPopulation(np.array([100.0, 300.0]), np.array([200.0, 800.0]), 4.0, 0.005, 1 / 600, 0.1)
    v = ex_ante_valuation(pop)
    expected = (4.0 + 0.005 * np.array([200, 800])) * np.array([0.25, 0.75]) * np.exp(
        -(1 / 600) * 0.1 * np.array([200, 800]))
    np.testing.assert_allclose(v, expected)
    np.testing.assert_allclose(orphan_factor(pop), np.exp(-np.array([200, 800]) / 6000))
    served = np.array([True, False])
    np.testing.assert_allclose(success_probability(pop, served), [np.exp(-200 / 6000), 0.0])
    post = ex_post_valuation(pop, served, SShapedEffect(reference=100.0))
    w = (1 - np.exp(-1)) / (1 + 0.5 * np.exp(-1))
    np.testing.assert_allclose(post, [w * v[0], 0.0])
    np.testing.assert_allclose(ex_post_valuation(pop, served, NoEffect()), [v[0], 0.0])


def test_network_effect_is_flat_on_raw_units_and_informative_once_normalised():
    raw = SShapedEffect()
    assert raw(1000.0) == pytest.approx(1.0)  # the paper's a = 1 on raw MIPS: w ≡ 1
    norm = SShapedEffect(reference=2500.0)
    ws = [norm(x) for x in (0.0, 1000.0, 2500.0, 5000.0, 10000.0)]
    assert ws[0] == 0.0 and all(a < b for a, b in itertools.pairwise(ws)) and ws[-1] < 1.0
    assert ws[2] - ws[1] > 0.1  # not flat over the allocations that occur
    with pytest.raises(MechanismError):
        SShapedEffect(a=0.0)


def test_paper_population_ranges():
    pop = paper_population(200, np.random.default_rng(0))
    assert pop.demand.min() >= 100 and pop.demand.max() <= 1000
    assert pop.block_size.min() >= 100 and pop.block_size.max() <= 1000
    assert 0 <= pop.fixed_reward <= 6 and 0.002 <= pop.fee_rate <= 0.01
    with pytest.raises(MechanismError):
        MinerPopulation(np.array([0.0]), np.array([1.0]), 1.0, 0.1)
