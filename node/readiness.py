"""The ready pipe between the launcher and the nodes it starts (docs/adr/0120).

The launcher opens a pipe, hands its write end to the node processes (inherited, named by
``BAZAAR_READY_FD``) and blocks on the read end: each node writes one JSON line — what it also writes to
``ready.json`` — the moment it is ready, so readiness is an event, not a file polled on a timer. The launcher
wakes up at least every ``check_every`` seconds to notice a node that died instead (its log's last line says why).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import stat
import time
from collections.abc import Callable
from typing import Any

READY_FD_ENV = "BAZAAR_READY_FD"
"""Environment variable naming an inherited pipe on which a node writes one JSON line when it is ready."""


def notify_ready(ready: dict[str, Any]) -> None:
    """Write ``ready`` as one line on the pipe named in ``BAZAAR_READY_FD``, then close it. The variable is
    consumed, so nothing this process starts inherits it; a descriptor that is not a pipe is left alone."""
    value = os.environ.pop(READY_FD_ENV, None)
    if value is None or not value.isdigit():
        return
    fd = int(value)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except OSError:
        return
    try:
        os.write(fd, (json.dumps(ready) + "\n").encode())  # < PIPE_BUF: atomic beside the other nodes' lines
    except OSError:
        pass  # the launcher is gone or stopped waiting: nothing to tell
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class ReadyPipe:
    """The launcher's end: ``with ReadyPipe() as pipe:`` pass ``pipe.env()`` and ``pass_fds=pipe.pass_fds`` to
    the processes, call :meth:`started`, then :meth:`wait`."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self._buffer = b""

    def __enter__(self) -> ReadyPipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pass_fds(self) -> tuple[int, ...]:
        """The descriptor the node processes must inherit (empty once :meth:`started` closed ours)."""
        return (self._write,) if self._write >= 0 else ()

    def env(self) -> dict[str, str]:
        """The environment entry naming the pipe."""
        return {READY_FD_ENV: str(self._write)}

    def started(self) -> None:
        """Close the launcher's copy of the write end (the processes hold theirs)."""
        if self._write >= 0:
            os.close(self._write)
            self._write = -1

    def close(self) -> None:
        """Close both ends."""
        self.started()
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def wait(self, names: set[str], deadline: float, check: Callable[[set[str]], None],
             check_every: float = 0.5, on_ready: Callable[[dict[str, Any]], None] | None = None,
             ) -> dict[str, dict[str, Any]]:
        """Block until every node in ``names`` reported ready; returns name -> its ready document.

        ``check(pending)`` runs whenever nothing arrived for ``check_every`` seconds (and at the end of the
        pipe) and raises when a pending node died. Raises ``TimeoutError`` at ``deadline`` (``time.monotonic``).
        """
        got: dict[str, dict[str, Any]] = {}
        while names - set(got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"not ready: {', '.join(sorted(names - set(got)))}")
            readable, _, _ = select.select([self._read], [], [], min(check_every, left))
            if not readable:
                check(names - set(got))
                continue
            chunk = os.read(self._read, 65536)
            if not chunk:  # every writer closed: the rest died before writing; check says which
                check(names - set(got))
                raise TimeoutError(f"not ready: {', '.join(sorted(names - set(got)))}")
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    doc = dict(json.loads(line))
                    if doc["name"] in names:
                        got[doc["name"]] = doc
                        if on_ready is not None:
                            on_ready(doc)
        return got
