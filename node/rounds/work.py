"""What a node spent on its own work per round (training, solving), measured where the work runs.

A role times the calls that are its own work — a miner's training, a bidder's or a leader's solver — with
:meth:`WorkLog.timed`; ``GET /status`` shows the last rounds under ``work_s`` (round number -> seconds), so a
benchmark can subtract the slowest participant's work from a round's latency (benchmarks/bench_network.py,
docs/adr/0116). The same log keeps, under ``deadline_wait_s``, the longest a node waited out a contract deadline
for a participant that did not answer in time (:meth:`WorkLog.longest`; docs/adr/0184). Nothing here waits or
changes a round.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

ROUNDS_KEPT = 64


class WorkLog:
    """Seconds of own work per round number, for the last ``ROUNDS_KEPT`` rounds."""

    def __init__(self) -> None:
        self.rounds: OrderedDict[int, float] = OrderedDict()

    def add(self, round_no: int, seconds: float) -> None:
        """Count ``seconds`` of work towards ``round_no``."""
        self.rounds[round_no] = self.rounds.get(round_no, 0.0) + max(0.0, seconds)
        self.rounds.move_to_end(round_no)
        while len(self.rounds) > ROUNDS_KEPT:
            self.rounds.popitem(last=False)

    def longest(self, round_no: int, seconds: float) -> None:
        """Keep ``seconds`` for ``round_no`` if it is the longest so far (for waits that run side by side)."""
        if seconds > self.rounds.get(round_no, 0.0):
            self.add(round_no, seconds - self.rounds.get(round_no, 0.0))

    @contextmanager
    def timed(self, round_no: int) -> Iterator[None]:
        """Time the enclosed work (also when it raises) and count it towards ``round_no``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(round_no, time.perf_counter() - t0)

    def status(self) -> dict[str, float]:
        """``{"<round>": seconds}`` of the kept rounds (JSON keys are strings)."""
        return {str(r): round(s, 4) for r, s in self.rounds.items()}
