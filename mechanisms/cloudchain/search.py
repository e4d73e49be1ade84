"""The contract's local search (docs/models/cloudchain.md §Allocation): improving moves on a greedy assignment,
each raising J by more than ``MIN_GAIN``, until none is left or ``PASSES`` passes are done.

A pass makes, in this order:

1. **relocate**: each task (in the greedy's order) moves to the provider — or out of the allocation — that
   raises J the most;
2. **swap in**: each unserved task takes the place of one served task of an eligible provider when that raises J;
3. **chain in**: each unserved task goes to a full eligible provider by moving one of its tasks to another
   provider with room, when that raises J (an ejection chain of length two);
4. **exchange**: two served tasks on different providers trade providers when that raises J.

Choices between moves are made by gain, then price, reliability, and names only last, and the loops run over
tasks in an order that does not depend on the providers' labels: relabelling the providers permutes the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import Provider, Task
from .objective import SLACK, balance_cost, eligible, gain

PASSES = 8
"""At most this many passes (each accepted move raises J, so the search also ends on its own)."""
MIN_GAIN = 1e-9
"""A move must raise J by more than this (tokens)."""


class _State:
    """An assignment, its loads, the eligible providers of every task and μ."""

    def __init__(self, tasks: Sequence[Task], providers: Sequence[Provider], assignment: Sequence[int],
                 loads: Sequence[float], mu: float) -> None:
        self.tasks, self.providers, self.mu = tasks, providers, mu
        self.assignment = list(assignment)
        self.loads = list(loads)
        self.eligible = [[j for j, p in enumerate(providers) if eligible(t, p)] for t in tasks]

    def fits(self, j: int, load: float) -> bool:
        return load <= self.providers[j].capacity + SLACK

    def added(self, i: int, j: int, before: float) -> float:
        """J gained by putting task i on provider j when j carries ``before``."""
        p, c = self.providers[j], self.tasks[i].units
        return gain(self.tasks[i], p) - balance_cost(p, before, before + c, self.mu)

    def move(self, i: int, j: int) -> None:
        c, cur = self.tasks[i].units, self.assignment[i]
        if cur >= 0:
            self.loads[cur] -= c
        if j >= 0:
            self.loads[j] += c
        self.assignment[i] = j


def _relocate(s: _State, order: Sequence[int]) -> bool:
    moved = False
    for i in order:
        c, cur = s.tasks[i].units, s.assignment[i]
        here = s.added(i, cur, s.loads[cur] - c) if cur >= 0 else 0.0
        best: tuple[float, int, float, float, str] | None = None
        pick = cur
        if cur >= 0 and -here > MIN_GAIN:  # dropping the task raises J
            best, pick = (here, 1, 0.0, 0.0, ""), -1
        for j in s.eligible[i]:
            if j == cur or not s.fits(j, s.loads[j] + c):
                continue
            delta = s.added(i, j, s.loads[j]) - here
            if delta <= MIN_GAIN:
                continue
            p = s.providers[j]
            key = (-delta, 0, p.price, -p.reliability, p.name)
            if best is None or key < best:
                best, pick = key, j
        if pick != cur:
            s.move(i, pick)
            moved = True
    return moved


def _served_by(s: _State, order: Sequence[int]) -> dict[int, list[int]]:
    """Provider -> the tasks it serves, in ``order``."""
    on: dict[int, list[int]] = {}
    for k in order:
        if s.assignment[k] >= 0:
            on.setdefault(s.assignment[k], []).append(k)
    return on


def _swap_in(s: _State, order: Sequence[int]) -> bool:
    moved = False
    on = _served_by(s, order)
    for u in order:
        if s.assignment[u] >= 0:
            continue
        tu = s.tasks[u]
        best: tuple[float, float, float, str, str] | None = None
        pick = (-1, -1)
        for j in s.eligible[u]:
            p = s.providers[j]
            for k in on.get(j, ()):
                after = s.loads[j] - s.tasks[k].units + tu.units
                if not s.fits(j, after):
                    continue
                delta = gain(tu, p) - gain(s.tasks[k], p) - balance_cost(p, s.loads[j], after, s.mu)
                if delta <= MIN_GAIN:
                    continue
                key = (-delta, p.price, -p.reliability, p.name, s.tasks[k].id)
                if best is None or key < best:
                    best, pick = key, (j, k)
        if best is not None:
            j, k = pick
            s.move(k, -1)
            s.move(u, j)
            on[j] = [u if x == k else x for x in on[j]]
            moved = True
    return moved


def _chain_in(s: _State, order: Sequence[int]) -> bool:
    moved = False
    on = _served_by(s, order)
    for u in order:
        if s.assignment[u] >= 0:
            continue
        tu = s.tasks[u]
        best: tuple[float, float, float, str, str, float, float, str] | None = None
        pick = (-1, -1, -1)
        for j in s.eligible[u]:
            p = s.providers[j]
            if s.fits(j, s.loads[j] + tu.units):
                continue  # room already: relocate's move
            for k in on.get(j, ()):
                tk = s.tasks[k]
                after = s.loads[j] - tk.units + tu.units
                if not s.fits(j, after):
                    continue
                here = gain(tu, p) - gain(tk, p) - balance_cost(p, s.loads[j], after, s.mu)
                for j2 in s.eligible[k]:
                    if j2 == j or not s.fits(j2, s.loads[j2] + tk.units):
                        continue
                    delta = here + s.added(k, j2, s.loads[j2])
                    if delta <= MIN_GAIN:
                        continue
                    q = s.providers[j2]
                    key = (-delta, p.price, -p.reliability, p.name, tk.id, q.price, -q.reliability, q.name)
                    if best is None or key < best:
                        best, pick = key, (j, k, j2)
        if best is not None:
            j, k, j2 = pick
            s.move(k, j2)
            s.move(u, j)
            on[j] = [u if x == k else x for x in on[j]]
            on.setdefault(j2, []).append(k)
            moved = True
    return moved


def _exchange(s: _State, order: Sequence[int]) -> bool:
    moved = False
    served = [i for i in order if s.assignment[i] >= 0]
    for x, a in enumerate(served):
        for b in served[x + 1:]:
            ja, jb = s.assignment[a], s.assignment[b]
            if ja == jb:
                continue
            ta, tb = s.tasks[a], s.tasks[b]
            pa, pb = s.providers[ja], s.providers[jb]
            if not (eligible(ta, pb) and eligible(tb, pa)):
                continue
            la, lb = s.loads[ja] - ta.units + tb.units, s.loads[jb] - tb.units + ta.units
            if not (s.fits(ja, la) and s.fits(jb, lb)):
                continue
            delta = (gain(ta, pb) + gain(tb, pa) - gain(ta, pa) - gain(tb, pb)
                     - balance_cost(pa, s.loads[ja], la, s.mu) - balance_cost(pb, s.loads[jb], lb, s.mu))
            if delta > MIN_GAIN:
                s.move(a, jb)
                s.move(b, ja)
                moved = True
    return moved


def improve(tasks: Sequence[Task], providers: Sequence[Provider], assignment: Sequence[int],
            loads: Sequence[float], mu: float, order: Sequence[int], passes: int = PASSES) -> list[int]:
    """The assignment after the local search (feasible if ``assignment`` is; J never lower).

    Args:
        tasks, providers: the instance.
        assignment: the starting assignment (provider index or -1 per task).
        loads: the providers' loads under it (including any load carried in).
        mu: the balance weight μ.
        order: the task order moves are tried in (must not depend on the providers' labels).
        passes: at most this many passes.
    """
    s = _State(tasks, providers, assignment, loads, mu)
    for _ in range(passes):
        moved = _relocate(s, order)
        moved = _swap_in(s, order) or moved
        moved = _chain_in(s, order) or moved
        moved = _exchange(s, order) or moved
        if not moved:
            break
    return s.assignment
