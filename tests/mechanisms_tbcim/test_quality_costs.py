"""EMD, quality, data utility, costs and client selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.tbcim import TbcimConstants, costs, select_clients
from bazaar.mechanisms.tbcim import quality as Q

C = TbcimConstants()


def test_constants_are_the_paper_values_and_validated() -> None:
    assert (C.a1, C.a2, C.a3, C.a4, C.a5, C.a6) == (0.87, 1e-5, 0.13, 1e5, 0.64, 3.48e-2)
    assert (C.g_e, C.M, C.delta_g, C.delta_1, C.eta) == (7.68e4, 0.5, 100, 5, 0.01)
    with pytest.raises(MechanismError):
        TbcimConstants(a1=-1.0)
    with pytest.raises(MechanismError):
        TbcimConstants(theta_unit=float("nan"))


def test_emd_is_l1_distance() -> None:
    assert Q.emd([1, 0, 0], [0, 0, 1]) == 2.0
    assert Q.emd([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert Q.emd([0.2, 0.8], [0.5, 0.5]) == pytest.approx(0.6)
    for p, r in [([1, 0], [1, 0, 0]), ([0.5, 0.6], [0.5, 0.5]), ([-0.5, 1.5], [0.5, 0.5])]:
        with pytest.raises(MechanismError):
            Q.emd(p, r)


def test_quality_formula_and_empty_set() -> None:
    D, th = 3e4, 0.8
    a = math.exp(-((th * C.theta_unit / C.a4 + C.a3) ** 2))
    assert Q.quality(D, th, C) == pytest.approx(a - C.a1 * math.exp(-((C.a2 * D) ** a)), rel=1e-14)
    assert Q.quality(0.0, 0.0, C) == pytest.approx(math.exp(-(C.a3**2)) - C.a1)
    assert Q.data_utility(D, th, C) == pytest.approx(C.a5 * Q.quality(D, th, C))
    assert Q.set_quality([], [], C) == Q.quality(0.0, 0.0, C)


def test_quality_is_vectorised_and_monotone() -> None:
    D = np.linspace(0, 2e5, 50)
    q = np.asarray(Q.quality(D, 0.5, C))
    assert q.shape == (50,) and np.all(np.diff(q) > 0)  # more data, better
    th = np.linspace(0, 2, 50)
    q2 = np.asarray(Q.quality(5e4, th, C))
    assert np.all(np.diff(q2) < 0)  # larger EMD, worse
    grid = np.asarray(Q.quality(D[:, None], th[None, :], C))
    assert grid.shape == (50, 50)


def test_quality_is_not_flat_in_the_units_we_use() -> None:
    # D: between a tenth and all of a CIFAR-sized task changes q by more than 0.3
    assert Q.quality(5e4, 0.3, C) - Q.quality(5e3, 0.3, C) > 0.3
    # theta: the default theta_unit makes the distribution term matter; raw paper units do not
    assert Q.quality(5e4, 0.2, C) - Q.quality(5e4, 1.5, C) > 0.3
    raw = TbcimConstants.paper_units()
    assert abs(Q.quality(5e4, 0.2, raw) - Q.quality(5e4, 1.5, raw)) < 1e-4


def test_quality_rejects_bad_input() -> None:
    with pytest.raises(MechanismError):
        Q.quality(-1.0, 0.1, C)
    with pytest.raises(MechanismError):
        Q.quality(1.0, float("nan"), C)


def test_costs() -> None:
    assert costs.data_cost(100, 0.02) == pytest.approx(2.0)
    assert costs.compute_cost(10, 2.0, 3.0, C) == pytest.approx(10 * 5 * 100 * 0.5 * 2 * 9)
    assert costs.comm_cost(2.0, 4.0, 0.1, C) == pytest.approx(2.0 * (0.5 / 4.0) * 100 * 0.1)
    assert costs.blockchain_cost(3, 0.01, C) == pytest.approx(3.48e-2 * 7.68e4 * 0.01 * 3)
    np.testing.assert_allclose(costs.data_cost(np.array([1.0, 2.0]), 3.0), [3.0, 6.0])
    with pytest.raises(MechanismError):
        costs.comm_cost(1.0, 0.0, 1.0, C)
    with pytest.raises(MechanismError):
        costs.data_cost(-1.0, 1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30))
def test_selection_keeps_exactly_the_at_most_average(emds: list[float]) -> None:
    e = np.array(emds)
    sel = select_clients(e)
    mean = math.fsum(emds) / len(emds)
    assert sel.size >= 1
    assert set(sel.tolist()) >= set(np.flatnonzero(e < mean).tolist())
    assert all(e[i] <= mean * (1 + 1e-12) for i in sel)
    assert np.all(np.diff(sel) > 0)
    # relabelling permutes the selection
    perm = np.random.default_rng(len(emds)).permutation(len(emds))
    assert sorted(perm[select_clients(e[perm])].tolist()) == sel.tolist()


def test_selection_keeps_low_emd_and_all_equal() -> None:
    assert select_clients([0.3, 0.1, 0.5, 0.2]).tolist() == [1, 3]
    assert select_clients([0.1] * 7).tolist() == list(range(7))
    with pytest.raises(MechanismError):
        select_clients([])
    with pytest.raises(MechanismError):
        select_clients([0.1, -0.2])
