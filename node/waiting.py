"""One ``wait_until`` (and its trio twin ``wait_until_async``) instead of hand-written ``while ...: sleep``
loops: poll a condition with a deadline. For conditions nothing signals (another process's HTTP status, a
transport's peer list). Conditions on our own node's state wait on events instead
(:class:`~bazaar.node.notify.Changes`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline."""


def wait_until(probe: Callable[[], T | None], *, timeout: float | None = None, deadline: float | None = None,
               interval: float = 0.1, what: str = "condition") -> T:
    """Call ``probe()`` until it returns a truthy value, and return that value.

    Args:
        probe: the condition; its truthy result is returned.
        timeout: seconds from now (or give ``deadline``, a ``time.monotonic()`` instant).
        interval: seconds between probes.
        what: named in the timeout error.

    Raises:
        WaitTimeout: still falsy at the deadline.
    """
    if deadline is None:
        if timeout is None:
            raise ValueError("give a timeout or a deadline")
        deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out waiting for {what}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def wait_until_async(probe: Callable[[], T | None], *, timeout: float, interval: float = 0.05,
                           what: str = "condition") -> T:
    """Like :func:`wait_until` inside trio: ``probe()`` is re-checked every ``interval`` seconds.

    Raises:
        WaitTimeout: still falsy after ``timeout`` seconds.
    """
    try:
        with trio.fail_after(timeout):
            while True:
                value = probe()
                if value:
                    return value
                await trio.sleep(interval)
    except trio.TooSlowError as err:
        raise WaitTimeout(f"timed out waiting for {what}") from err
