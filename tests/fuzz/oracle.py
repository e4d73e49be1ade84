"""The fuzzers' oracle: what counts as a refusal (a coded reason) and what counts as a crash.

A target either accepts an input, refuses it, or crashes. A refusal is an exception of the coded vocabulary
(:class:`~bazaar.protocol.errors.BazaarError` — protocol, ledger and node refusals — or the transport's
:class:`~bazaar.protocol.transport.RejectRequest`), or, where the node catches and logs for itself, a warning
event that names a ``reason``. A crash is any other exception escaping the target, and any error-level event
the node logs while it runs (``msg.handler_failed``, ``task.failed``, ``hook.failed``, ...: a bug of ours that a
catch-all kept from taking the node down) or a ``handler-error`` refusal.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bazaar.protocol.errors import BazaarError
from bazaar.protocol.transport import RejectRequest

CODED = (BazaarError, RejectRequest)


def reason_of(err: BaseException) -> str | None:
    """The coded reason of a refusal, or None when ``err`` is not one (a crash)."""
    if isinstance(err, CODED):
        reason = getattr(err, "reason", None)
        return str(reason) if reason else None
    return None


@dataclass
class Crash:
    """One crash: the target, the input's description and what escaped."""

    target: str
    error: str
    trace: str
    sample: str

    def line(self) -> str:
        """One line for a report."""
        return f"{self.target}: {self.error} on {self.sample}"


@dataclass
class Tally:
    """Inputs tried, refusals by target and reason, accepts, crashes."""

    tried: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    crashes: list[Crash] = field(default_factory=list)
    skipped: int = 0
    """Generated inputs our own encoder could not sign (no peer could send them either)."""

    @property
    def total(self) -> int:
        """Inputs tried over all targets."""
        return sum(self.tried.values())

    def refuse(self, target: str, reason: str) -> None:
        """Count one coded refusal."""
        self.refused[(target, str(reason))] += 1

    def crash(self, target: str, err: BaseException | str, sample: Any) -> None:
        """Record one crash (kept short: the first 50 in full, then counted)."""
        text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"[:300]
        trace = "" if isinstance(err, str) else "".join(traceback.format_exception(err))[-3000:]
        self.crashes.append(Crash(target, text, trace, repr(sample)[:200]))

    def run(self, target: str, fn: Any, *args: Any) -> Any:
        """Call a synchronous target; count its outcome; returns its result (None after a refusal/crash)."""
        self.tried[target] += 1
        try:
            out = fn(*args)
        except CODED as err:
            self.refuse(target, reason_of(err) or "uncoded")
            return None
        except Exception as err:
            self.crash(target, err, args)
            return None
        self.accepted[target] += 1
        return out

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts to ours."""
        self.tried.update(other.tried)
        self.accepted.update(other.accepted)
        self.refused.update(other.refused)
        self.crashes.extend(other.crashes)
        self.skipped += other.skipped

    def by_reason(self) -> Counter[str]:
        """Refusals by reason over all targets."""
        out: Counter[str] = Counter()
        for (_, reason), n in self.refused.items():
            out[reason] += n
        return out

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON object."""
        return {
            "messages": self.total,
            "crashes": len(self.crashes),
            "accepted": sum(self.accepted.values()),
            "refused": sum(self.refused.values()),
            "skipped_unencodable": self.skipped,
            "tried_by_target": dict(sorted(self.tried.items())),
            "refused_by_reason": dict(self.by_reason().most_common()),
            "refused_by_target_reason": {f"{t} {r}": n for (t, r), n in sorted(self.refused.items())},
            "crash_samples": [c.line() for c in self.crashes[:20]],
        }

    def print(self) -> None:
        """Print a human-readable summary."""
        print(f"messages tried: {self.total}   crashes: {len(self.crashes)}   "
              f"accepted: {sum(self.accepted.values())}   refused: {sum(self.refused.values())}")
        print("by target:")
        for target, n in sorted(self.tried.items()):
            print(f"  {target:<28} {n:>8}  accepted {self.accepted[target]}")
        print("refusals by reason:")
        for reason, n in self.by_reason().most_common():
            print(f"  {reason:<28} {n:>8}")
        for c in self.crashes[:20]:
            print("CRASH", c.line())


class EventWatch(logging.Handler):
    """Collects the node's structured events while a fuzzer runs: error-level events are crashes; warning
    events with a ``reason`` are refusals the node caught and logged itself."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.errors: list[str] = []
        self.handler_errors: list[str] = []
        self.reasons: Counter[str] = Counter()
        self.uncoded: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = getattr(record, "fields", {})
        event = record.getMessage()
        if record.levelno >= logging.ERROR:
            self.errors.append(f"{event} {str(fields)[:300]}")
        elif "reason" in fields:
            self.reasons[str(fields["reason"])] += 1
            if str(fields["reason"]) == "handler-error":  # a catch-all kept a handler's bug from the node
                self.handler_errors.append(f"{event} {str(fields)[:300]}")
        else:
            self.uncoded[event] += 1


@contextmanager
def watch_events() -> Iterator[EventWatch]:
    """Attach an :class:`EventWatch` to the ``bazaar`` loggers for the duration of the block."""
    logger = logging.getLogger("bazaar")
    watch = EventWatch()
    old_level = logger.level
    logger.addHandler(watch)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)
