"""The deadline collector: one answer per expected participant, fired as soon as everyone has answered.

    collector = Collector(expected=[k1, k2, k3], deadline_s=2.0)
    collector.offer(sender, value)          # from a handler; raises Refuse for late/unknown/duplicate
    result = await collector.wait()         # returns when all answered or at the deadline
    result.answers, result.missing

A leader collecting demands and a MESP collecting miner bids use the same primitive.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from ..markets.context import Refuse

T = TypeVar("T")


@dataclass(frozen=True)
class Collected(Generic[T]):
    """Who answered what, and who was left out (in the expected order)."""

    answers: dict[bytes, T]
    missing: list[bytes]
    waited_s: float

    @property
    def answered(self) -> list[bytes]:
        """Senders that answered, in arrival order."""
        return list(self.answers)


class Collector(Generic[T]):
    """Takes each expected participant's answer once until a deadline.

    Args:
        expected: the participants whose answers are awaited.
        deadline_s: seconds from now after which answers are refused as late.
    """

    def __init__(self, expected: Iterable[bytes], deadline_s: float) -> None:
        self.expected = list(dict.fromkeys(expected))
        self.deadline = time.monotonic() + deadline_s
        self.answers: dict[bytes, T] = {}
        self._all_in = trio.Event()
        self._closed = False
        self._started = time.monotonic()
        if not self.expected:
            self._all_in.set()

    def offer(self, sender: bytes, value: T) -> None:
        """Take ``sender``'s answer.

        Raises:
            Refuse: ``late`` (past the deadline or closed), ``unknown-participant`` or ``duplicate``.
        """
        if self._closed or time.monotonic() > self.deadline:
            raise Refuse("late", "the deadline for this answer has passed")
        if sender not in self.expected:
            raise Refuse("unknown-participant", "not a participant of this exchange")
        if sender in self.answers:
            raise Refuse("duplicate", "already answered")
        self.answers[sender] = value
        if len(self.answers) == len(self.expected):
            self._all_in.set()

    @property
    def complete(self) -> bool:
        """Whether every expected participant has answered."""
        return self._all_in.is_set()

    async def wait(self) -> Collected[T]:
        """Wait until everyone answered or the deadline passed; later offers are refused."""
        with trio.move_on_at(trio.current_time() + max(0.0, self.deadline - time.monotonic())):
            await self._all_in.wait()
        self._closed = True
        missing = [k for k in self.expected if k not in self.answers]
        return Collected(dict(self.answers), missing, round(time.monotonic() - self._started, 4))
