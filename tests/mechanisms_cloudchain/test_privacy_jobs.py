"""Private gradients (calibration, accounting), the jobs providers run and the spot checks oracles make, and
the providers' pricing rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.cloudchain.jobs import _train, _training_data, run_job, spot_check, training_steps
from bazaar.mechanisms.cloudchain.pricing import COST_SHARE, best_response_price, leader_price
from bazaar.mechanisms.cloudchain.privacy import BudgetExceeded, PrivacyAccountant, clip, gaussian_sigma, privatize
from bazaar.mechanisms.cloudchain.profiles import paper_providers, workloads


def test_sigma_grows_as_the_budget_shrinks_and_meets_it() -> None:
    s1, s2, s4 = (gaussian_sigma(e, 1e-5, 1.0, 50) for e in (1.0, 2.0, 4.0))
    assert s1 > s2 > s4 > 0
    acc = PrivacyAccountant(2.0, 1e-5)
    assert acc.spend("t", s2, 50) == pytest.approx(2.0, abs=0.01)
    assert gaussian_sigma(2.0, 1e-5, 3.0, 50) == pytest.approx(3 * s2)


def test_the_accountant_composes_and_refuses_with_the_task_and_the_spent_budget() -> None:
    acc = PrivacyAccountant(3.0, 1e-5)
    z = gaussian_sigma(2.0, 1e-5, 1.0, 40)
    first = acc.spend("a", z, 40)
    second = acc.spend("b", z, 40)
    assert first < second < 2 * first + 1e-9  # RDP composes tighter than adding epsilons
    with pytest.raises(BudgetExceeded) as err:
        acc.check("c", z, 40)
    assert "'c'" in str(err.value) and f"{second:.3f}" in str(err.value) and err.value.budget == 3.0
    assert len(acc.events) == 2 and acc.spent() == pytest.approx(second)


@pytest.mark.parametrize("events", [((1.0, 1),), ((0.7, 50),), ((3.0, 10), (1.2, 40)), ((25.0, 160),)])
def test_the_closed_form_equals_dp_accountings_rdp_accountant(events: tuple[tuple[float, int], ...]) -> None:
    import dp_accounting
    from dp_accounting import rdp

    from bazaar.mechanisms.cloudchain.privacy import epsilon_of

    acc = rdp.RdpAccountant()
    for z, count in events:
        acc.compose(dp_accounting.GaussianDpEvent(z), count)
    for delta in (1e-5, 1e-3):
        assert epsilon_of(events, delta) == pytest.approx(acc.get_epsilon(delta), rel=1e-9, abs=1e-12)


def test_clip_and_privatize() -> None:
    g = np.full(16, 3.0)
    assert np.linalg.norm(clip(g, 1.0)) == pytest.approx(1.0)
    assert np.array_equal(clip(g * 0.01, 1.0), g * 0.01)
    noisy = privatize(g, 1.0, 0.5, np.random.default_rng(0))
    assert noisy.shape == g.shape and not np.allclose(noisy, clip(g, 1.0))


@pytest.mark.parametrize("kind", ["training", "inference", "preprocessing"])
def test_an_honest_result_passes_and_wrong_ones_fail(kind: str) -> None:
    job = run_job(kind, 4, 11)
    assert spot_check(kind, 4, 11, job.blob, job.metadata)
    assert spot_check(kind, 4, 11, job.blob, job.metadata, sample_seed=5)
    assert not spot_check(kind, 4, 12, job.blob, job.metadata)            # another seed's work
    assert not spot_check(kind, 4, 11, bytes(len(job.blob)), job.metadata)  # zeros
    assert not spot_check(kind, 4, 11, job.blob[:-8], job.metadata)       # truncated
    rng = np.random.default_rng(1)
    assert not spot_check(kind, 4, 11, rng.bytes(len(job.blob)), job.metadata)  # garbage
    if kind == "inference":
        labels = np.frombuffer(job.blob, dtype="<i1")
        assert not spot_check(kind, 4, 11, rng.permutation(labels).tobytes(), job.metadata)  # shuffled


def test_a_private_training_result_passes_its_noise_bound_and_garbage_does_not() -> None:
    clean = run_job("training", 6, 3)
    for noise_seed in range(5):
        job = run_job("training", 6, 3, epsilon=2.0, delta=1e-5, noise_seed=noise_seed)
        assert job.metadata["private"] and job.metadata["steps"] == training_steps(6)
        assert spot_check("training", 6, 3, job.blob, job.metadata, epsilon=2.0, delta=1e-5)
    skipped = _train(3, training_steps(6), 1.0, 0.0, None)  # clipped, but the noise never added
    meta = {**job.metadata, "quality": float(np.mean(np.argmax(_training_data(3)[0] @ skipped, axis=1)
                                                     == _training_data(3)[1]))}
    assert not spot_check("training", 6, 3, skipped.tobytes(), meta, epsilon=2.0, delta=1e-5)
    w = np.frombuffer(job.blob, dtype="<f8") + 3.0
    assert not spot_check("training", 6, 3, w.tobytes(), job.metadata, epsilon=2.0, delta=1e-5)
    assert job.quality <= clean.quality + 1e-9  # privacy costs accuracy (or nothing)


def test_the_leader_prices_between_its_cost_and_twice_its_list_price() -> None:
    provs = paper_providers(0)
    me, others = provs[4], provs[:4] + provs[5:]
    price = leader_price(me, workloads(40, 2), others)
    assert COST_SHARE * me.price <= price <= 2 * me.price
    assert best_response_price(me, me.capacity, me.price) > me.price
    assert best_response_price(me, 0.0, me.price) < me.price
    assert best_response_price(me, 0.0, COST_SHARE * me.price) == pytest.approx(COST_SHARE * me.price)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20), st.floats(0.01, 10.0))
def test_clip_bounds_the_norm_and_keeps_the_direction(xs: list[float], bound: float) -> None:
    g = np.array(xs)
    c = clip(g, bound)
    assert np.linalg.norm(c) <= bound * (1 + 1e-9)
    assert float(np.dot(c, g)) >= 0  # the same direction: a non-negative multiple of g
    assert np.allclose(c, g * min(1.0, bound / max(float(np.linalg.norm(g)), 1e-300)))


def test_privatize_clips_before_it_adds_noise() -> None:
    g = np.full(64, 10.0)
    assert np.array_equal(privatize(g, 2.0, 0.0, np.random.default_rng(0)), clip(g, 2.0))
    draws = np.stack([privatize(g, 2.0, 0.5, np.random.default_rng(s)) for s in range(400)])
    assert np.allclose(draws.mean(axis=0), clip(g, 2.0), atol=0.1)  # centred on the clipped update
    assert float(draws.std()) == pytest.approx(0.5, rel=0.05)


def test_a_refused_spend_records_nothing() -> None:
    acc = PrivacyAccountant(1.0, 1e-5)
    z = gaussian_sigma(0.9, 1e-5, 1.0, 20)
    acc.spend("a", z, 20)
    before = (list(acc.events), acc.spent())
    with pytest.raises(BudgetExceeded) as err:
        acc.spend("b", z, 20)
    assert err.value.task == "b" and err.value.spent == pytest.approx(before[1])
    assert "'b'" in str(err.value) and f"{before[1]:.3f}" in str(err.value)
    assert (acc.events, acc.spent()) == before


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["training", "inference", "preprocessing"]), st.integers(1, 6), st.integers(0, 2**31),
       st.integers(0, 1000))
def test_every_honest_result_passes_and_a_shuffled_or_other_seed_one_fails(kind: str, units: int, seed: int,
                                                                           sample: int) -> None:
    job = run_job(kind, units, seed)
    assert spot_check(kind, units, seed, job.blob, job.metadata, sample_seed=sample)
    assert not spot_check(kind, units, seed + 1, job.blob, job.metadata, sample_seed=sample)
    width = {"training": 8, "inference": 1, "preprocessing": 4 * 32}[kind]  # bytes of one weight or one row
    rows = np.frombuffer(job.blob, dtype=np.uint8).reshape(-1, width)
    shuffled = rows[np.random.default_rng(sample).permutation(len(rows))]
    moved = int(np.any(shuffled != rows, axis=1).sum())
    if moved >= len(rows) // 2:  # a shuffle that leaves most rows in place may escape a sampled check
        assert not spot_check(kind, units, seed, shuffled.tobytes(), job.metadata, sample_seed=sample)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 8), st.sampled_from([1.0, 2.0, 4.0]), st.integers(0, 2**31), st.integers(0, 2**31))
def test_every_honest_private_result_passes_and_another_seeds_fails(units: int, eps: float, seed: int,
                                                                    noise: int) -> None:
    job = run_job("training", units, seed, epsilon=eps, delta=1e-5, noise_seed=noise)
    assert spot_check("training", units, seed, job.blob, job.metadata, epsilon=eps, delta=1e-5)
    other = run_job("training", units, seed + 1, epsilon=eps, delta=1e-5, noise_seed=noise)
    assert not spot_check("training", units, seed, other.blob, {**job.metadata, "quality": job.quality},
                          epsilon=eps, delta=1e-5)
