"""The allocation contract (docs/models/cloudchain.md §Allocation): a deterministic greedy every validator
re-executes, on the objective the exact reference (:mod:`.reference`) maximises.

Objective, for an assignment ``x`` (each task whole to one provider or unserved)::

    J(x) = Σ_i Σ_p x_ip · C_i · (v_i · r_p − P_p)  −  μ · Σ_p cap_p · φ(u_p),   u_p = (L_p + Σ_i x_ip C_i) / cap_p

with v_i the task's value per unit, r_p the provider's reliability (the expected share of the value delivered),
P_p its price, L_p the load it already carries and φ the convex piecewise-linear interpolation of u² on
``BREAKPOINTS`` (load balancing: a provider's marginal cost grows with its utilisation). ``μ = BALANCE`` × the
mean price of the providers, so the objective does not depend on the unit of account.

The greedy takes tasks by decreasing value ``C_i·v_i`` (ties: id) and gives each to the eligible provider with
spare capacity of largest marginal gain ``ΔJ`` if positive (ties: lower price, higher reliability, name).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from .model import Provider, Task

BALANCE = 0.5
"""μ as a share of the providers' mean price: the balance term's weight per unit of capacity at full use."""
BREAKPOINTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Where φ interpolates u² (utilisation never exceeds 1: capacity is a hard bound)."""


@dataclass(frozen=True)
class Allocation:
    """The contract's outcome.

    Attributes:
        assignment: per task (input order), the provider index, or -1 when unserved.
        prices: per task, tokens per unit charged (the provider's price; 0.0 when unserved).
        load: per provider, units allocated including the load passed in.
        objective: J of the assignment.
        unserved: ids of unserved tasks.
    """

    assignment: tuple[int, ...]
    prices: tuple[float, ...]
    load: tuple[float, ...]
    objective: float
    unserved: tuple[str, ...]


def phi(u: float) -> float:
    """φ(u): the piecewise-linear interpolation of u² on ``BREAKPOINTS`` (extrapolated linearly above 1)."""
    u = max(0.0, u)
    for lo, hi in itertools.pairwise(BREAKPOINTS):
        if u <= hi:
            return lo * lo + (u - lo) * (hi + lo)
    lo, hi = BREAKPOINTS[-2], BREAKPOINTS[-1]
    return hi * hi + (u - hi) * (hi + lo)


def eligible(task: Task, provider: Provider) -> bool:
    """Whether ``provider`` may serve ``task`` at all: its price within the task's maximum, its promised latency
    and reliability meeting the SLA, and its capacity holding the whole task."""
    return (provider.price <= task.max_price and provider.latency_ms <= task.sla.latency_ms
            and provider.reliability >= task.sla.availability and task.units <= provider.capacity)


def gain(task: Task, provider: Provider) -> float:
    """The first term of J for one pair: ``C·(v·r − P)``."""
    return task.units * (task.value * provider.reliability - provider.price)


def balance_weight(providers: Sequence[Provider]) -> float:
    """μ = ``BALANCE`` × the providers' mean price."""
    return BALANCE * sum(p.price for p in providers) / len(providers) if providers else 0.0


def balance_cost(provider: Provider, before: float, after: float, mu: float) -> float:
    """``μ·cap·(φ(after/cap) − φ(before/cap))``: the balance term's change when the load goes from before to after."""
    return mu * provider.capacity * (phi(after / provider.capacity) - phi(before / provider.capacity))


def objective_of(tasks: Sequence[Task], providers: Sequence[Provider], assignment: Sequence[int],
                 load: Sequence[float] | None = None) -> float:
    """J of an assignment."""
    loads = list(load) if load is not None else [0.0] * len(providers)
    total = 0.0
    for task, p in zip(tasks, assignment, strict=True):
        if p >= 0:
            total += gain(task, providers[p])
            loads[p] += task.units
    mu = balance_weight(providers)
    return total - sum(mu * prov.capacity * phi(loads[j] / prov.capacity) for j, prov in enumerate(providers))


def allocate(tasks: Sequence[Task], providers: Sequence[Provider], load: Sequence[float] | None = None) -> Allocation:
    """The contract: deterministic, capacity-bounded, never above a task's maximum price, equivariant under a
    relabelling of the providers (ties are broken by price, reliability and only then name)."""
    loads = list(load) if load is not None else [0.0] * len(providers)
    if len(loads) != len(providers):
        raise ValueError(f"{len(loads)} loads for {len(providers)} providers")
    mu = balance_weight(providers)
    order = sorted(range(len(tasks)), key=lambda i: (-tasks[i].units * tasks[i].value, tasks[i].id))
    assignment = [-1] * len(tasks)
    for i in order:
        task = tasks[i]
        best: tuple[float, float, float, str] | None = None
        pick = -1
        for j, prov in enumerate(providers):
            if not eligible(task, prov) or loads[j] + task.units > prov.capacity + 1e-9:
                continue
            delta = gain(task, prov) - balance_cost(prov, loads[j], loads[j] + task.units, mu)
            if delta <= 0:
                continue
            key = (-delta, prov.price, -prov.reliability, prov.name)
            if best is None or key < best:
                best, pick = key, j
        if pick >= 0:
            assignment[i] = pick
            loads[pick] += task.units
    prices = tuple(providers[p].price if p >= 0 else 0.0 for p in assignment)
    return Allocation(tuple(assignment), prices, tuple(loads),
                      objective_of(tasks, providers, assignment, load),
                      tuple(t.id for t, p in zip(tasks, assignment, strict=True) if p < 0))
