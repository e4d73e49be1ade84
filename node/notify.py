"""Wait for a condition on node state with a deadline, without polling loops in callers."""

from __future__ import annotations

from collections.abc import Callable

import trio


class Changes:
    """A broadcast "something changed" signal.

    ``await changes.wait_for(predicate, timeout)`` returns as soon as ``predicate()`` holds, re-checking it
    each time :meth:`notify` is called; raises ``trio.TooSlowError`` at the deadline.
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        """Wake every waiter so it re-checks its predicate."""
        self._event.set()
        self._event = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Block until ``predicate()`` is true (raises ``trio.TooSlowError`` after ``timeout`` s)."""
        with trio.fail_after(timeout):
            while not predicate():
                await self._event.wait()

    async def holds_within(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Whether ``predicate()`` holds within ``timeout`` s (re-checked on each :meth:`notify`); never raises."""
        try:
            await self.wait_for(predicate, timeout)
        except trio.TooSlowError:
            return False
        return True
