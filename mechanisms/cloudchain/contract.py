"""The allocation contract (docs/models/cloudchain.md §Allocation): a deterministic greedy and local search every
validator re-executes, on the objective J (:mod:`.objective`) the exact reference (:mod:`.reference`) maximises.

The greedy takes tasks by decreasing value ``C_i·v_i`` (ties: id) and gives each to the eligible provider with
spare capacity of largest marginal gain ``ΔJ`` if positive (ties: lower price, higher reliability, name); the
local search (:mod:`.search`) then relocates, swaps in and exchanges tasks while J rises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Provider, Task
from .objective import (
    BALANCE,
    BREAKPOINTS,
    SLACK,
    balance_cost,
    balance_weight,
    eligible,
    gain,
    loads_of,
    objective_of,
    phi,
)
from .search import improve

__all__ = ["BALANCE", "BREAKPOINTS", "Allocation", "allocate", "balance_cost", "balance_weight", "eligible", "gain",
           "greedy", "objective_of", "phi"]


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


def _order(tasks: Sequence[Task]) -> list[int]:
    return sorted(range(len(tasks)), key=lambda i: (-tasks[i].units * tasks[i].value, tasks[i].id))


def greedy(tasks: Sequence[Task], providers: Sequence[Provider], load: Sequence[float] | None = None) -> list[int]:
    """The greedy alone (no local search): tasks by decreasing ``C·v``, each to its eligible provider with room
    of largest positive ΔJ."""
    loads = [float(x) for x in load] if load is not None else [0.0] * len(providers)
    mu = balance_weight(providers)
    assignment = [-1] * len(tasks)
    for i in _order(tasks):
        task = tasks[i]
        best: tuple[float, float, float, str] | None = None
        pick = -1
        for j, prov in enumerate(providers):
            if not eligible(task, prov) or loads[j] + task.units > prov.capacity + SLACK:
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
    return assignment


def allocate(tasks: Sequence[Task], providers: Sequence[Provider], load: Sequence[float] | None = None) -> Allocation:
    """The contract: deterministic, capacity-bounded, never above a task's maximum price, equivariant under a
    relabelling of the providers (ties are broken by price, reliability and only then name).

    Raises:
        ValueError: ``load`` does not have one entry per provider.
    """
    if load is not None and len(load) != len(providers):
        raise ValueError(f"{len(load)} loads for {len(providers)} providers")
    start = greedy(tasks, providers, load)
    assignment = improve(tasks, providers, start, loads_of(tasks, len(providers), start, load),
                         balance_weight(providers), _order(tasks))
    prices = tuple(providers[p].price if p >= 0 else 0.0 for p in assignment)
    return Allocation(tuple(assignment), prices, tuple(loads_of(tasks, len(providers), assignment, load)),
                      objective_of(tasks, providers, assignment, load),
                      tuple(t.id for t, p in zip(tasks, assignment, strict=True) if p < 0))



def allocate_in_batches(tasks: Sequence[Task], providers: Sequence[Provider], batch: int,
                        load: Sequence[float] | None = None) -> Allocation:
    """The contract run over ``tasks`` (in the given order) in consecutive batches of at most ``batch``, each on
    the providers' load left by the batches before it: what a network that allocates at most ``batch`` tasks a
    block computes when nothing settles in between (docs/adr/0154). ``batch <= 0`` or ``batch >= len(tasks)`` is
    the contract on all of them at once (:func:`allocate`).

    Raises:
        ValueError: ``load`` does not have one entry per provider.
    """
    if batch <= 0 or batch >= len(tasks):
        return allocate(tasks, providers, load)
    start_load = [float(x) for x in load] if load is not None else [0.0] * len(providers)
    running: Sequence[float] = start_load
    assignment: list[int] = []
    prices: list[float] = []
    unserved: list[str] = []
    for k in range(0, len(tasks), batch):
        part = allocate(tasks[k:k + batch], providers, running)
        assignment += part.assignment
        prices += part.prices
        unserved += part.unserved
        running = part.load
    return Allocation(tuple(assignment), tuple(prices), tuple(running),
                      objective_of(tasks, providers, assignment, start_load), tuple(unserved))
