"""The per-round work log: summed work, and the longest deadline wait (docs/adr/0116, 0184)."""

from __future__ import annotations

from bazaar.node.rounds.work import ROUNDS_KEPT, WorkLog


def test_work_adds_up_and_a_deadline_wait_keeps_the_longest() -> None:
    work = WorkLog()
    work.add(3, 0.25)
    work.add(3, 0.5)
    work.add(4, -1.0)  # a clock step back never counts as negative work
    assert work.status() == {"3": 0.75, "4": 0.0}
    waits = WorkLog()
    for s in (2.0, 1.5, 2.25, 0.1):  # the probes of several providers wait side by side
        waits.longest(7, s)
    assert waits.status() == {"7": 2.25}


def test_only_the_last_rounds_are_kept() -> None:
    waits = WorkLog()
    for r in range(ROUNDS_KEPT + 5):
        waits.longest(r, 1.0)
    assert len(waits.status()) == ROUNDS_KEPT and "0" not in waits.status()
