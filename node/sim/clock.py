"""The simulation's virtual clock: trio's ``MockClock`` jumping to the next deadline as soon as every task
waits, and the wall-clock milliseconds every node reads (``bazaar.protocol.envelope.TIME_SOURCE``) following it.

Everything that decides what lands on the chain then depends on the seed alone: keys and the genesis time are
derived from it, envelope timestamps and sequence numbers read the virtual clock, and trio's scheduler — which
reverses each batch of runnable tasks at random — draws from a generator seeded by it (docs/adr/0131).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import trio
import trio.testing

from bazaar.protocol.envelope import TIME_SOURCE

EPOCH_MS = 1_767_225_600_000
"""Virtual time zero: 2026-01-01T00:00:00Z, in Unix milliseconds (also the genesis time of every simulation)."""

T = TypeVar("T")


def virtual_ms() -> int:
    """The virtual wall clock of the running simulation, in Unix milliseconds."""
    return EPOCH_MS + int(trio.current_time() * 1000)


def derive_seed(seed: int, label: str) -> bytes:
    """A 32-byte key seed of one participant, from the simulation seed and its name."""
    return hashlib.sha256(b"bazaar/sim/v1\x00" + seed.to_bytes(8, "big") + label.encode()).digest()


@contextmanager
def seeded_scheduler(seed: int) -> Iterator[None]:
    """Seed trio's scheduler generator for one run (restored afterwards).

    trio (``trio._core._run._r``, no public API) reverses each batch of runnable tasks with probability 1/2;
    with the generator seeded, the same inputs give the same interleaving, hence the same chain.
    """
    from trio._core import _run

    rng = getattr(_run, "_r", None)
    if not isinstance(rng, random.Random):
        raise RuntimeError("this trio has no scheduler generator to seed (trio._core._run._r): a simulation "
                           "would not be reproducible")
    saved = rng.getstate()
    rng.seed(seed)
    try:
        yield
    finally:
        rng.setstate(saved)


def run_virtual(fn: Callable[..., Any], *args: Any, seed: int) -> Any:
    """``trio.run(fn, *args)`` on a virtual clock: ``MockClock(autojump_threshold=0)``, node wall clocks on it,
    the scheduler seeded."""

    async def main() -> Any:
        token = TIME_SOURCE.set(virtual_ms)
        try:
            return await fn(*args)
        finally:
            TIME_SOURCE.reset(token)

    with seeded_scheduler(seed):
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
