"""What a node spent on its own work per round (training, solving), measured where the work runs.

A role times the calls that are its own work — a miner's training, a bidder's or a leader's solver — with
:meth:`WorkLog.timed`; ``GET /status`` shows the last rounds under ``work_s`` (round number -> seconds), so a
benchmark can subtract the slowest participant's work from a round's latency (benchmarks/bench_network.py,
docs/adr/0116). Nothing here waits or changes a round.
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
