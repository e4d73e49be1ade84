"""The monotone variant of RANet: monotone allocation, critical payments, IR, zero regret, API, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.ranet import (
    MonotoneRANet,
    RANet,
    Transform,
    get_setting,
    myerson_expected_utility,
    myerson_outcome,
    refined_regret,
    vcg,
)

SHIPPED = [("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)]


def _random_net(setting: str, sellers: int, seed: int, groups: int = 3, units: int = 3) -> MonotoneRANet:
    """A monotone net with arbitrary (untrained) parameters: truthfulness must not depend on training."""
    rng = np.random.default_rng(seed)
    s = get_setting(setting)
    tr = Transform(rng.normal(0.0, 0.7, (groups, units)), rng.normal(0.0, 0.3, (groups, units)),
                   rng.normal(0.0, 0.2, (groups, units, s.profile_width)))
    return MonotoneRANet(s, sellers, tr)


@pytest.mark.parametrize(("setting", "sellers"), SHIPPED)
def test_shipped_weights_load_through_ranet_load(setting: str, sellers: int) -> None:
    net = RANet.load(sellers=sellers, setting=setting, variant="monotone")
    assert isinstance(net, MonotoneRANet)
    costs, profiles = net.setting.sample(np.random.default_rng(3), 200, sellers)
    z, p = net.allocate(costs, profiles)
    assert z.shape == p.shape == (200, sellers)
    assert set(np.unique(z)) <= {0.0, 1.0}
    if setting == "single-uniform":
        assert np.all(z.sum(axis=1) <= 1)
    assert np.all(p >= z * costs - 1e-12)  # IR
    assert np.all(p <= z * net.reserve + 1e-15)
    assert np.all(p[z == 0] == 0)
    assert net.meta["final"]["evaluations"] >= 1


def test_one_profile_and_input_errors() -> None:
    net = RANet.load(3, "single-uniform", variant="monotone")
    z, p = net.allocate(np.array([0.2, 0.5, 0.9]))
    zb, pb = net.allocate(np.array([[0.2, 0.5, 0.9]]))
    assert z.shape == (3,)
    np.testing.assert_array_equal(z, zb[0])
    np.testing.assert_array_equal(p, pb[0])
    with pytest.raises(MechanismError, match="non-negative"):
        net.allocate(np.array([[0.1, -0.2, 0.3]]))
    with pytest.raises(MechanismError, match="variant"):
        RANet.load(3, "single-uniform", variant="convex")
    with pytest.raises(MechanismError, match="no shipped monotone"):
        RANet.load(4, "single-uniform", variant="monotone")


def test_bids_above_the_reserve_never_win() -> None:
    net = RANet.load(3, "single-uniform", variant="monotone")
    z, p = net.allocate(np.array([[1.5, 0.1, 0.4], [2.0, 3.0, 4.0]]))
    assert z[0, 0] == 0 and p[0, 0] == 0
    assert np.all(z[1] == 0) and np.all(p[1] == 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), setting=st.sampled_from(["single-uniform", "tbcim"]),
       sellers=st.integers(1, 4), seller=st.integers(0, 3), lower=st.floats(0.0, 1.0))
def test_lowering_a_bid_never_lowers_its_allocation(seed: int, setting: str, sellers: int, seller: int,
                                                    lower: float) -> None:
    net = _random_net(setting, sellers, seed)
    seller %= sellers
    costs, profiles = net.setting.sample(np.random.default_rng(seed), 1, sellers)
    low = costs.copy()
    low[0, seller] *= lower
    z_hi, _ = net.allocate(costs, profiles)
    z_lo, _ = net.allocate(low, profiles)
    assert z_lo[0, seller] >= z_hi[0, seller]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), setting=st.sampled_from(["single-uniform", "tbcim"]), sellers=st.integers(1, 4))
def test_a_winner_is_paid_its_critical_bid(seed: int, setting: str, sellers: int) -> None:
    net = _random_net(setting, sellers, seed)
    costs, profiles = net.setting.sample(np.random.default_rng(seed + 1), 20, sellers)
    z, p = net.allocate(costs, profiles)
    eps = 1e-7 * net.reserve
    for i, s in zip(*np.nonzero(z), strict=True):
        assert p[i, s] >= costs[i, s] - 1e-12  # IR
        prof = None if profiles is None else profiles[i : i + 1]
        below = costs[i : i + 1].copy()
        below[0, s] = max(p[i, s] - eps, 0.0)
        assert net.allocate(below, prof)[0][0, s] == 1.0  # still wins just below the payment
        # and its payment does not move with its own bid
        assert net.allocate(below, prof)[1][0, s] == pytest.approx(p[i, s], abs=1e-12)
        if p[i, s] < net.reserve - eps:
            above = costs[i : i + 1].copy()
            above[0, s] = p[i, s] + eps
            assert net.allocate(above, prof)[0][0, s] == 0.0  # loses just above it


@pytest.mark.parametrize(("setting", "sellers", "profiles"), [("single-uniform", 3, 200), ("tbcim", 3, 60),
                                                              ("tbcim", 5, 20)])
def test_shipped_regret_is_zero_on_the_grid_and_after_refinement(setting: str, sellers: int,
                                                                 profiles: int) -> None:
    net = RANet.load(sellers, setting, variant="monotone")
    costs, prof = net.setting.sample(np.random.default_rng(11), profiles, sellers)
    grid, refined = refined_regret(net._forward, costs, prof, net.reserve, steps=8)
    assert grid.max() <= 1e-12
    assert refined.max() <= 1e-12


def test_identity_transform_is_vcg_and_slope_two_is_myerson() -> None:
    su = MonotoneRANet(get_setting("single-uniform"), 3, Transform.identity(2, 2, 0, slope=2.0))
    b = np.random.default_rng(0).uniform(size=(2000, 3))
    z, p = su.allocate(b)
    zm, pm = myerson_outcome(b)
    np.testing.assert_array_equal(z, zm)
    np.testing.assert_allclose(p, pm, atol=1e-15)
    tb = get_setting("tbcim")
    net = MonotoneRANet(tb, 4, Transform.identity(1, 1, 2))
    costs, prof = tb.sample(np.random.default_rng(1), 300, 4)
    z, p = net.allocate(costs, prof)
    zv, pv = vcg(tb, costs, prof)
    np.testing.assert_array_equal(z, zv)
    np.testing.assert_allclose(p, np.minimum(pv, tb.reserve), atol=1e-14)  # VCG capped at the reserve


def test_shipped_single_uniform_is_within_two_percent_of_myerson_and_not_above_it() -> None:
    net = RANet.load(3, "single-uniform", variant="monotone")
    costs, _ = net.setting.sample(np.random.default_rng(2024), 20_000, 3)
    z, p = net.allocate(costs)
    u = z.sum(axis=1) - p.sum(axis=1)
    zm, pm = myerson_outcome(costs)
    diff = u - (zm.sum(axis=1) - pm.sum(axis=1))
    opt = myerson_expected_utility(3)
    assert abs(u.mean() / opt - 1.0) < 0.02
    # never above the optimum beyond Monte Carlo error (paired with Myerson on the same profiles)
    assert diff.mean() <= 3.0 * diff.std(ddof=1) / np.sqrt(diff.size)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = _random_net("tbcim", 3, 5)
    path = tmp_path / "m.npz"
    net.save(path)
    back = RANet.load(3, "tbcim", path, variant="monotone")
    costs, prof = net.setting.sample(np.random.default_rng(0), 50, 3)
    for a, b in zip(net.allocate(costs, prof), back.allocate(costs, prof), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(MechanismError, match="weights are for"):
        RANet.load(5, "tbcim", path, variant="monotone")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(MechanismError, match="cannot read"):
        MonotoneRANet.from_file(tmp_path / "bad.npz")
    with pytest.raises(MechanismError, match="not a monotone"):
        MonotoneRANet.from_file(Path(__file__).parents[2] / "mechanisms/ranet/weights/tbcim-s3.npz")


def test_refinement_finds_an_off_grid_maximiser_the_grid_misses() -> None:
    peak = 0.123456789

    def outcome(bids: np.ndarray, _prof: object) -> tuple[np.ndarray, np.ndarray]:
        z = np.ones_like(bids)
        return z, bids + 0.5 - (bids - peak) ** 2 * 50.0 - bids * 0.0 + 0.0 * z

    costs = np.full((4, 1), 0.9)
    grid, refined = refined_regret(outcome, costs, None, 1.0, points=11, refine=0)
    # utility(b) = b - c + 0.5 - 50 (b - peak)^2 peaks at b* = peak + 0.01
    best = (peak + 0.01) - 0.9 + 0.5 - 50.0 * 0.01**2
    truthful = 0.5 - 50.0 * (0.9 - peak) ** 2
    assert refined[0, 0] == pytest.approx(best - truthful, abs=1e-9)
    assert grid[0, 0] < refined[0, 0] - 1e-4


def test_short_training_improves_and_is_reproducible() -> None:
    pytest.importorskip("cma")
    from bazaar.mechanisms.ranet.monotone_training import MonotoneConfig, train_monotone

    cfg = MonotoneConfig(seed=3, samples=2000, evaluations=120)
    net, log = train_monotone("single-uniform", 2, cfg)
    again, _ = train_monotone("single-uniform", 2, cfg)
    np.testing.assert_array_equal(net.transform.to_vector(), again.transform.to_vector())
    assert log[-1]["utility"] > net.meta["start_utility"]  # VCG (the start) is far from optimal here
    with pytest.raises(MechanismError, match="samples"):
        train_monotone("single-uniform", 2, MonotoneConfig(samples=0))
