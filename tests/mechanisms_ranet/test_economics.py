"""Reference solvers beside the fast ones: Myerson, VCG, greedy, the regret search, the tbcim value."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.ranet import (
    get_setting,
    greedy,
    grid_regret,
    myerson_expected_utility,
    myerson_outcome,
    random_selection,
    vcg,
)
from bazaar.mechanisms.tbcim import data_utility, select_clients

SU = get_setting("single-uniform")
TB = get_setting("tbcim")


def _brute_vcg(value, bids: np.ndarray, max_winners: int):
    """One profile, explicit loops: welfare-maximising set and Clarke payments."""
    S = bids.size
    sets = [()] + [c for k in range(1, max_winners + 1) for c in combinations(range(S), k)]

    def welfare(ws):
        z = np.zeros(S)
        z[list(ws)] = 1.0
        return value(z) - bids[list(ws)].sum()

    best = max(sets, key=welfare)
    pay = np.zeros(S)
    for s in best:
        pay[s] = bids[s] + welfare(best) - max(welfare(w) for w in sets if s not in w)
    return best, welfare(best), pay


def test_myerson_closed_form_matches_monte_carlo() -> None:
    costs, _ = SU.sample(np.random.default_rng(5), 200_000, 3)
    z, p = myerson_outcome(costs)
    mc = float((z.sum(axis=1) - p.sum(axis=1)).mean())
    assert abs(mc - myerson_expected_utility(3)) < 0.004
    assert myerson_expected_utility(1) == pytest.approx(0.25)  # one seller: posted price 1/2, E[(1 - 2c)^+]


def test_myerson_payment_is_the_threshold_found_by_bisection() -> None:
    rng = np.random.default_rng(3)
    bids = rng.uniform(0, 1, size=(40, 3))
    z, p = myerson_outcome(bids)
    for i in range(40):
        for s in np.flatnonzero(z[i]):
            lo, hi = bids[i, s], 1.0
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                trial = bids[i].copy()
                trial[s] = mid
                if myerson_outcome(trial[None])[0][0, s] == 1:
                    lo = mid
                else:
                    hi = mid
            assert p[i, s] == pytest.approx(lo, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 4))
def test_vcg_matches_brute_force_on_tbcim(seed: int, sellers: int) -> None:
    costs, profiles = TB.sample(np.random.default_rng(seed), 3, sellers)
    z, p = vcg(TB, costs, profiles)
    for i in range(3):
        def value(zz: np.ndarray, i: int = i) -> float:
            return float(TB.value(zz[None], profiles[i : i + 1])[0])

        best, top, pay = _brute_vcg(value, costs[i], sellers)
        zz = np.zeros(sellers)
        zz[list(best)] = 1
        got = TB.value(z[i : i + 1], profiles[i : i + 1])[0] - (z[i] * costs[i]).sum()
        assert got == pytest.approx(top, abs=1e-12)
        if np.array_equal(zz, z[i]):
            np.testing.assert_allclose(p[i], pay, atol=1e-12)
        assert np.all(p[i] >= z[i] * costs[i] - 1e-12)  # IR


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 100_000))
def test_vcg_and_greedy_are_invariant_to_relabelling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    costs, profiles = TB.sample(rng, 4, 4)
    perm = rng.permutation(4)
    for mech in (vcg, greedy):
        z, p = mech(TB, costs, profiles)
        zp, pp = mech(TB, costs[:, perm], profiles[:, perm])
        wel = TB.value(z, profiles) - (z * costs).sum(axis=1)
        welp = TB.value(zp, profiles[:, perm]) - (zp * costs[:, perm]).sum(axis=1)
        np.testing.assert_allclose(wel, welp, atol=1e-12)
        if mech is vcg:
            np.testing.assert_allclose(p[:, perm].sum(axis=1), pp.sum(axis=1), atol=1e-12)


def test_vcg_single_is_a_second_price_auction_with_reserve() -> None:
    bids = np.array([[0.3, 0.6, 0.9], [0.95, 0.97, 0.99], [1.2, 1.5, 0.5]])
    z, p = vcg(SU, bids)
    np.testing.assert_allclose(z, [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(p.sum(axis=1), [0.6, 0.97, 1.0])


def test_greedy_and_random_pay_the_bid_and_respect_the_reserve() -> None:
    costs, profiles = TB.sample(np.random.default_rng(9), 200, 5)
    costs[:, 0] = TB.reserve * 1.5
    rnd = random_selection(TB, costs, profiles, np.random.default_rng(1))
    for z, p in (greedy(TB, costs, profiles), rnd):
        np.testing.assert_allclose(p, z * costs)
        assert np.all(z[:, 0] == 0)
    zg, _ = greedy(TB, costs, profiles)
    zv, _ = vcg(TB, costs, profiles)
    # greedy never beats the welfare optimum
    wg = TB.value(zg, profiles) - (zg * costs).sum(1)
    assert np.all(wg <= TB.value(zv, profiles) - (zv * costs).sum(1) + 1e-12)


def test_grid_regret_of_truthful_mechanisms_is_zero_and_first_price_matches_closed_form() -> None:
    costs, _ = SU.sample(np.random.default_rng(11), 300, 3)
    for outcome in (lambda b, pr: myerson_outcome(b), lambda b, pr: vcg(SU, b, pr)):
        rgt, _ = grid_regret(outcome, costs, None, 1.0, points=51, refine=11)
        assert rgt.max() <= 1e-12
    # pay-as-bid, lowest wins: the winner gains by bidding up to the second-lowest cost
    rgt, _ = grid_regret(lambda b, pr: greedy(SU, b, pr), costs, None, 1.0, points=101, refine=21)
    srt = np.sort(costs, axis=1)
    expected = srt[:, 1] - srt[:, 0]
    step = 2 * 0.01 / 20
    np.testing.assert_allclose(rgt.max(axis=1), expected, atol=step + 1e-9)
    with pytest.raises(MechanismError):
        grid_regret(lambda b, pr: greedy(SU, b, pr), costs, None, 1.0, points=1)


def test_tbcim_value_matches_the_tbcim_data_utility() -> None:
    _, profiles = TB.sample(np.random.default_rng(2), 50, 4)
    z = (np.random.default_rng(3).random((50, 4)) < 0.5).astype(float)
    got = TB.value(z, profiles)
    for i in range(50):
        if z[i].sum() == 0:
            assert got[i] == 0
            continue
        D = (z[i] * profiles[i, :, 0]).sum()
        th = (z[i] * profiles[i, :, 1]).sum() / z[i].sum()
        assert got[i] == pytest.approx(float(data_utility(D, th)) - float(data_utility(0.0, 0.0)), abs=1e-12)


def test_tbcim_sampler_follows_algorithm_2() -> None:
    # re-derive one profile with the tbcim package's select_clients on the same draws
    sm = TB.sampler
    rng = np.random.default_rng(7)
    _, profiles = TB.sample(rng, 1, 1)
    rng = np.random.default_rng(7)
    n = int(rng.integers(sm.eds[0], sm.eds[1] + 1, size=(1, 1))[0, 0])
    d = rng.uniform(sm.ed_data[0], sm.ed_data[1], size=(1, 1, sm.eds[1]))[0, 0, :n]
    labels = rng.dirichlet(np.full(sm.classes, sm.dirichlet), size=(1, 1, sm.eds[1]))[0, 0, :n]
    emds = np.abs(labels - 1.0 / sm.classes).sum(axis=1)
    keep = select_clients(emds)
    assert profiles[0, 0, 0] == pytest.approx(d[keep].sum())
    assert profiles[0, 0, 1] == pytest.approx(emds[keep].mean())
    with_chain, _ = replace(TB, chain="with").sample(np.random.default_rng(7), 1, 1)
    without, _ = replace(TB, chain="without").sample(np.random.default_rng(7), 1, 1)
    assert with_chain[0, 0] > without[0, 0]
    with pytest.raises(MechanismError):
        replace(TB, chain="sometimes")
