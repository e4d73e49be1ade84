"""Yamux receive-window updates at half a window, as go-yamux sends them (docs/adr/0145).

py-libp2p 0.8.1's ``YamuxStream._auto_tune_and_send_window_update`` runs after every read and, besides
go-yamux's rule (update once the window has fallen by half its target), has a "partial slack" branch that
sends a WINDOW_UPDATE frame for almost every read of a small message: one more noise-encrypted frame written
by the reader and read by the writer per gossip message. On the 9-process ai-bazaar network these updates were
≈ 6 % of the nodes' CPU.

:func:`half_window_updates` replaces the method with go-yamux's hysteresis and keeps the library's own pieces
(``_grow_threshold``, ``_grow_to_delta``, window auto-tuning): a read credits the window only once the
consumed-and-unreleased bytes reach half the target window. A sender is never left without credit while the
reader keeps reading: when a stalled sender has used the window up, the reader's next read brings the
shortfall to at least half the target and the update goes out.
"""

from __future__ import annotations

from typing import Any

from libp2p.stream_muxer.yamux.yamux import YamuxStream

_MARK = "_bazaar_half_window"


async def _half_window_update(self: Any, *, bytes_read: int = 0) -> None:
    """go-yamux ``sendWindowUpdate``: credit the window back to its target once it is short by half or more."""
    increment = 0
    async with self.window_lock:
        buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
        if self.target_recv_window - (self.recv_window + buffered) >= self._grow_threshold():
            increment = self._grow_to_delta(buffered)
            if increment > 0:
                increment += self._apply_autotune_epoch(buffered)
        self._pending_recv_release = 0
    if increment > 0:
        await self.send_window_update(increment, skip_lock=True)


def half_window_updates() -> None:
    """Install the go-yamux window-update rule in py-libp2p's ``YamuxStream`` (idempotent; process-wide)."""
    if getattr(YamuxStream._auto_tune_and_send_window_update, _MARK, False):
        return
    setattr(_half_window_update, _MARK, True)
    YamuxStream._auto_tune_and_send_window_update = _half_window_update  # type: ignore[method-assign]
