"""``read_exactly`` that stops at end of stream (docs/adr/0201).

py-libp2p 0.8.1's ``libp2p.io.utils.read_exactly(reader, n, retry_count=100)`` calls ``reader.read`` once and
then up to ``retry_count`` more times until it holds ``n`` bytes; it never looks at what a read returned. Two
traps follow:

- a frame that arrives in more than 101 pieces fails on a healthy connection (a 10 MB msgio frame did,
  libp2p.md §6.4), which is why Bazaar raised the count to 100 000;
- at end of stream every read returns ``b""`` at once, so a connection the peer closed is read ``retry_count``
  more times before the ``IncompleteReadError``: with 100 000 that is about 1.4 CPU s of empty ``recv`` calls for
  every closed connection (``benchmarks/bench_eof.py``). At 50 processes every watchdog kick, expired
  on-demand link and duplicate dial cost the other side that much; the starved nodes answered stream
  negotiations late, which caused more kicks.

:func:`read_until_eof` reads until it holds ``n`` bytes however many pieces they come in, and raises the
library's own ``IncompleteReadError`` at the first empty read: every reader py-libp2p hands it (a TCP stream,
a noise session, a yamux stream) returns ``b""`` only at end of stream. :func:`install` puts it in place of the
library's function in every module that imported it by name.
"""

from __future__ import annotations

from types import ModuleType

import libp2p.host.ping as _ping
import libp2p.io.msgio as _msgio
import libp2p.io.utils as _io_utils
import libp2p.stream_muxer.yamux.yamux as _yamux
from libp2p.io.abc import Reader
from libp2p.io.exceptions import IncompleteReadError

_IMPORTERS: tuple[ModuleType, ...] = (_io_utils, _msgio, _yamux, _ping)
"""The py-libp2p modules that call ``read_exactly`` through a module-level name (0.8.1)."""


async def read_until_eof(reader: Reader, n: int, retry_count: int | None = None) -> bytes:
    """Exactly ``n`` bytes from ``reader``, in as many reads as they take.

    ``retry_count`` is accepted for the library's signature and ignored: the loop ends when ``n`` bytes have
    arrived or at end of stream, never after a number of reads.

    Raises:
        IncompleteReadError: the stream ended (a read returned ``b""``) before ``n`` bytes arrived.
    """
    del retry_count
    buffer = bytearray()
    while len(buffer) < n:
        chunk = await reader.read(n - len(buffer))
        if not chunk:
            raise IncompleteReadError(
                f"Connection closed during read operation: expected {n} bytes but received {len(buffer)} bytes",
                expected_bytes=n, received_bytes=len(buffer))
        buffer.extend(chunk)
    return bytes(buffer)


def install() -> None:
    """Use :func:`read_until_eof` wherever py-libp2p calls ``read_exactly`` (idempotent; process-wide)."""
    for module in _IMPORTERS:
        if getattr(module, "read_exactly", None) is not read_until_eof:
            module.read_exactly = read_until_eof  # type: ignore[attr-defined]
