"""The allocation contract against its exact MILP and its economic properties (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bazaar.mechanisms.cloudchain.contract import allocate, allocate_in_batches, eligible, greedy, objective_of, phi
from bazaar.mechanisms.cloudchain.metrics import jain, normalised_allocation, storage_latency
from bazaar.mechanisms.cloudchain.model import Provider, Sla, Task
from bazaar.mechanisms.cloudchain.profiles import paper_providers, workloads
from bazaar.mechanisms.cloudchain.reference import allocate_exact

providers_st = st.lists(st.builds(
    lambda cap, price, rel, lat: (cap, price, rel, lat),
    st.integers(2, 30), st.floats(0.2, 5.0), st.floats(0.9, 1.0), st.floats(10, 300)), min_size=1, max_size=5)
tasks_st = st.lists(st.builds(
    lambda units, mp, val, lat, av: (units, mp, val, lat, av),
    st.integers(1, 12), st.floats(0.2, 6.0), st.floats(0.0, 10.0), st.floats(10, 600), st.floats(0.9, 1.0)),
    min_size=0, max_size=8)


def _make(ps: list[tuple], ts: list[tuple]) -> tuple[list[Provider], list[Task]]:
    provs = [Provider(f"p{k}", "community", float(c), round(pr, 3), round(r, 4), round(lat, 1), 1.0, 50.0, 10.0, 0.1)
             for k, (c, pr, r, lat) in enumerate(ps)]
    tasks = [Task(f"t{k}", "inference", float(u), round(mp, 3), Sla(round(lat, 1), round(av, 4), 60.0), round(v, 3))
             for k, (u, mp, v, lat, av) in enumerate(ts)]
    return provs, tasks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(providers_st, tasks_st, st.lists(st.integers(0, 30), min_size=5, max_size=5))
def test_capacity_price_and_sla_always_hold_and_the_milp_is_never_beaten(ps: list[tuple], ts: list[tuple],
                                                                         carried: list[int]) -> None:
    provs, tasks = _make(ps, ts)
    load = [float(min(c, p.capacity)) for c, p in zip(carried, provs, strict=False)]
    alloc = allocate(tasks, provs, load)
    used = list(load)
    for t, j, price in zip(tasks, alloc.assignment, alloc.prices, strict=True):
        if j >= 0:
            assert eligible(t, provs[j]) and price == provs[j].price <= t.max_price
            used[j] += t.units
    assert all(u <= p.capacity + 1e-9 for u, p in zip(used, provs, strict=True))
    assert alloc.load == tuple(used)
    assert alloc.objective == pytest.approx(objective_of(tasks, provs, alloc.assignment, load))
    assert alloc.objective >= objective_of(tasks, provs, greedy(tasks, provs, load), load) - 1e-9  # search never loses
    exact = allocate_exact(tasks, provs, load)
    assert exact.optimal
    assert alloc.objective <= exact.objective + 1e-6
    assert allocate(tasks, provs, load) == alloc  # deterministic


@settings(max_examples=40, deadline=None)
@given(providers_st, tasks_st, st.permutations(range(5)), st.lists(st.integers(0, 30), min_size=5, max_size=5))
def test_relabelling_the_providers_permutes_the_outcome(ps: list[tuple], ts: list[tuple], perm: list[int],
                                                        carried: list[int]) -> None:
    provs, tasks = _make(ps, ts)
    load = [float(min(c, p.capacity)) for c, p in zip(carried, provs, strict=False)]
    order = [i for i in perm if i < len(provs)]
    shuffled = [provs[i] for i in order]  # names travel with their providers
    a, b = allocate(tasks, provs, load), allocate(tasks, shuffled, [load[i] for i in order])
    assert [provs[j].name if j >= 0 else None for j in a.assignment] == \
        [shuffled[j].name if j >= 0 else None for j in b.assignment]
    assert b.load == tuple(a.load[i] for i in order) and b.prices == a.prices
    assert a.objective == pytest.approx(b.objective)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 5), tasks_st, st.randoms(use_true_random=False))
def test_identical_providers_are_told_apart_by_name_alone_and_names_travel_with_them(
        n: int, ts: list[tuple], rnd) -> None:  # type: ignore[no-untyped-def]
    provs, tasks = _make([(8, 1.0, 0.99, 50.0)] * n, ts)
    shuffled = list(provs)
    rnd.shuffle(shuffled)
    a, b = allocate(tasks, provs), allocate(tasks, shuffled)
    assert [provs[j].name if j >= 0 else None for j in a.assignment] == \
        [shuffled[j].name if j >= 0 else None for j in b.assignment]


def test_the_load_passed_in_counts_against_capacity() -> None:
    provs, tasks = _make([(10, 1.0, 0.99, 50)], [(6, 3.0, 5.0, 100, 0.95), (6, 3.0, 5.0, 100, 0.95)])
    assert allocate(tasks, provs).assignment.count(0) == 1
    assert allocate(tasks, provs, [8.0]).assignment == (-1, -1)


def test_phi_is_the_convex_interpolation_of_the_square() -> None:
    assert [phi(u) for u in (0.0, 0.25, 0.5, 1.0)] == [0.0, 0.0625, 0.25, 1.0]
    assert phi(0.1) == pytest.approx(0.025) and phi(0.6) > 0.36


def test_on_the_paper_market_the_contract_is_close_to_the_exact_optimum() -> None:
    provs = paper_providers(0)
    tasks = workloads(60, 3)
    alloc, exact = allocate(tasks, provs), allocate_exact(tasks, provs, time_limit=30)
    assert exact.optimal
    assert alloc.objective <= exact.objective + 1e-6 and alloc.objective >= 0.95 * exact.objective
    assert 0 < jain(normalised_allocation(alloc, provs)) <= 1


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_jain_lies_between_one_over_n_and_one(xs: list[float]) -> None:
    j = jain(xs)
    assert 1 / len(xs) - 1e-9 <= j <= 1 + 1e-9
    assert jain([x * 3 for x in xs]) == pytest.approx(j)


def test_storage_latency_follows_size_over_bandwidth() -> None:
    p = replace(paper_providers(0)[0], read_mbps=100.0, write_mbps=50.0, commit_s=0.2)
    assert storage_latency(10_000_000, p) == pytest.approx((0.1, 0.4))


def test_a_load_per_provider_is_required() -> None:
    provs, tasks = _make([(10, 1.0, 0.99, 50), (10, 1.0, 0.99, 50)], [(6, 3.0, 5.0, 100, 0.95)])
    with pytest.raises(ValueError, match="1 loads for 2 providers"):
        allocate(tasks, provs, [0.0])


@settings(max_examples=40, deadline=None)
@given(providers_st, tasks_st, st.integers(1, 9))
def test_batches_chain_the_contract_on_the_load_each_batch_leaves(ps: list[tuple], ts: list[tuple],
                                                                  batch: int) -> None:
    provs, tasks = _make(ps, ts)
    got = allocate_in_batches(tasks, provs, batch)
    load: tuple[float, ...] = tuple(0.0 for _ in provs)
    assignment: list[int] = []
    for k in range(0, len(tasks), batch):  # what the network's blocks do, one batch each (ADR 0154)
        part = allocate(tasks[k:k + batch], provs, load)
        assignment += part.assignment
        load = part.load
    assert list(got.assignment) == assignment
    assert got.load == load
    for j, p in enumerate(provs):
        assert got.load[j] <= p.capacity + 1e-6
    assert got.objective == pytest.approx(objective_of(tasks, provs, assignment, [0.0] * len(provs)))
    assert set(got.unserved) == {t.id for t, a in zip(tasks, assignment, strict=True) if a < 0}
    if batch >= len(tasks):
        assert got == allocate(tasks, provs)
