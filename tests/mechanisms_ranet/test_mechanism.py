"""RANet as a mechanism: shipped weights, shapes, input errors, reserve, IR, relabelling of profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.ranet import RANet, get_setting

SHIPPED = [("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)]


@pytest.mark.parametrize(("setting", "sellers"), SHIPPED)
def test_shipped_weights_load_and_run(setting: str, sellers: int) -> None:
    net = RANet.load(sellers=sellers, setting=setting)
    costs, profiles = net.setting.sample(np.random.default_rng(0), 64, sellers)
    z, p = net.allocate(costs, profiles)
    assert z.shape == p.shape == (64, sellers)
    assert np.all((z >= 0) & (z <= 1))
    if net.head == "single":
        assert np.all(z.sum(axis=1) <= 1 + 1e-12)
    # individual rationality: a truthful seller is paid at least its cost times its win probability
    assert np.all(p >= z * costs - 1e-12)
    assert np.all(p <= z * net.reserve + 1e-12)
    assert net.meta["final"]["iteration"] >= 1


def test_one_profile_gives_one_dimensional_output() -> None:
    net = RANet.load(sellers=3, setting="single-uniform")
    z, p = net.allocate(np.array([0.2, 0.5, 0.9]))
    zb, pb = net.allocate(np.array([[0.2, 0.5, 0.9]]))
    assert z.shape == (3,)
    np.testing.assert_allclose(z, zb[0])
    np.testing.assert_allclose(p, pb[0])


def test_bids_above_the_reserve_never_win() -> None:
    net = RANet.load(sellers=3, setting="single-uniform")
    z, p = net.allocate(np.array([[1.5, 0.3, 0.4], [2.0, 3.0, 4.0]]))
    assert z[0, 0] == 0 and p[0, 0] == 0
    assert np.all(z[1] == 0) and np.all(p[1] == 0)


@pytest.mark.parametrize(
    ("bids", "profiles", "setting", "sellers"),
    [
        (np.array([[0.1, -0.2, 0.3]]), None, "single-uniform", 3),
        (np.array([[0.1, np.nan, 0.3]]), None, "single-uniform", 3),
        (np.array([[0.1, 0.2]]), None, "single-uniform", 3),
        (np.array([[0.1, 0.2, 0.3]]), np.zeros((1, 3, 2)), "single-uniform", 3),
        (np.array([[0.01, 0.02, 0.03]]), None, "tbcim", 3),
        (np.array([[0.01, 0.02, 0.03]]), np.zeros((1, 3, 3)), "tbcim", 3),
    ],
)
def test_bad_input_is_a_mechanism_error(bids, profiles, setting, sellers) -> None:
    net = RANet.load(sellers=sellers, setting=setting)
    with pytest.raises(MechanismError):
        net.allocate(bids, profiles)


def test_unknown_setting_and_missing_weights() -> None:
    with pytest.raises(MechanismError, match="unknown RANet setting"):
        get_setting("double-exponential")
    with pytest.raises(MechanismError, match="no shipped"):
        RANet.load(sellers=4, setting="single-uniform")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = RANet.load(sellers=3, setting="tbcim")
    path = tmp_path / "w.npz"
    net.save(path)
    again = RANet.load(sellers=3, setting="tbcim", path=path)
    costs, profiles = net.setting.sample(np.random.default_rng(1), 16, 3)
    for a, b in zip(net.allocate(costs, profiles), again.allocate(costs, profiles), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(MechanismError, match="not 'tbcim' with 5"):
        RANet.load(sellers=5, setting="tbcim", path=path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    with pytest.raises(MechanismError, match="not a RANet weights file"):
        RANet.from_file(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(MechanismError, match="cannot read"):
        RANet.from_file(junk)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
def test_single_uniform_is_individually_rational_everywhere(bids: list[float]) -> None:
    net = RANet.load(sellers=3, setting="single-uniform")
    z, p = net.allocate(np.array([bids]))
    assert np.all(p >= z * np.array(bids) - 1e-12)
    assert z.sum() <= 1 + 1e-12


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(1.0, 3.0))
def test_tbcim_is_individually_rational_for_any_bid_scale(seed: int, scale: float) -> None:
    net = RANet.load(sellers=5, setting="tbcim")
    costs, profiles = net.setting.sample(np.random.default_rng(seed), 8, 5)
    bids = np.minimum(costs * scale, net.reserve)
    z, p = net.allocate(bids, profiles)
    assert np.all(p >= z * bids - 1e-12)
