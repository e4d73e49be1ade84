"""The allocation objective J and its pieces (docs/models/cloudchain.md §Allocation), shared by the contract
(:mod:`.contract`), its local search (:mod:`.search`) and the exact reference (:mod:`.reference`).

For an assignment ``x`` (each task whole to one provider or unserved)::

    J(x) = Σ_i Σ_p x_ip · C_i · (v_i · r_p − P_p)  −  μ · Σ_p cap_p · φ(u_p),   u_p = (L_p + Σ_i x_ip C_i) / cap_p

with v_i the task's value per unit, r_p the provider's reliability (the expected share of the value delivered),
P_p its price, L_p the load it already carries and φ the convex piecewise-linear interpolation of u² on
``BREAKPOINTS`` (load balancing: a provider's marginal cost grows with its utilisation). ``μ = BALANCE`` × the
mean price of the providers, so the objective does not depend on the unit of account.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .model import Provider, Task

BALANCE = 0.5
"""μ as a share of the providers' mean price: the balance term's weight per unit of capacity at full use."""
BREAKPOINTS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Where φ interpolates u² (utilisation never exceeds 1: capacity is a hard bound)."""
SLACK = 1e-9
"""Capacity tolerance (units) for float loads."""


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


def loads_of(tasks: Sequence[Task], n_providers: int, assignment: Sequence[int],
             load: Sequence[float] | None = None) -> list[float]:
    """Each provider's load: the ``load`` passed in plus its tasks' units, summed in task order."""
    loads = [float(x) for x in load] if load is not None else [0.0] * n_providers
    for task, p in zip(tasks, assignment, strict=True):
        if p >= 0:
            loads[p] += task.units
    return loads


def objective_of(tasks: Sequence[Task], providers: Sequence[Provider], assignment: Sequence[int],
                 load: Sequence[float] | None = None) -> float:
    """J of an assignment."""
    total = sum(gain(task, providers[p]) for task, p in zip(tasks, assignment, strict=True) if p >= 0)
    loads = loads_of(tasks, len(providers), assignment, load)
    mu = balance_weight(providers)
    return total - sum(mu * prov.capacity * phi(loads[j] / prov.capacity) for j, prov in enumerate(providers))
