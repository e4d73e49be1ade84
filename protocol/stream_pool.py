"""Direct-request streams kept open for the next request to the same peer on the same protocol (docs/adr/0180).

A new libp2p stream costs a yamux open and a multistream-select negotiation on both sides before the first byte
of the request (≈ 4–9 ms a round trip against ≈ 1.2 ms on an open stream, docs/libp2p.md §4), and the CPU of it
on a node that serves many requests a round (a MESP takes 20 bids a round, an aggregator one vote per validator).
The requester keeps a stream whose exchange ended cleanly and takes it for its next request to that peer and
protocol; the responder serves exchanges on a stream one after the other until it has been idle for
:data:`SERVE_IDLE_S`. A requester reuses a stream idle at most :data:`IDLE_S` (shorter), so a responder never
closes a stream a requester may still pick; if it does anyway (it stopped), the requester sees a clean end
before any byte of the response (``framing.StreamEnded``): nothing was handled, and the request goes out again
on a new stream.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import trio

PER_KEY = 4
"""Idle streams kept per (peer, protocol): the concurrency a node's requests to one peer usually reach."""
IDLE_S = 10.0
"""A requester reuses a stream idle at most this long (older ones are closed)."""
SERVE_IDLE_S = 30.0
"""A responder closes a stream after this long without the next request (longer than :data:`IDLE_S`)."""


def usable(stream: Any) -> bool:
    """Whether a kept libp2p stream can carry another exchange: neither side closed or reset, and its
    connection open (a stream pair without these attributes, as in tests, counts as usable)."""
    muxed = getattr(stream, "muxed_stream", None)
    if muxed is not None and any(getattr(muxed, f, False) for f in ("closed", "send_closed", "recv_closed")):
        return False
    conn = getattr(stream, "muxed_conn", None)
    return not (conn is not None and getattr(conn, "is_closed", False))


class StreamPool:
    """Idle request streams by (peer, protocol), most recently used first out."""

    def __init__(self, *, per_key: int = PER_KEY, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.per_key = per_key
        self.idle_s = idle_s
        self._clock = clock
        self._idle: dict[tuple[Hashable, str], list[tuple[float, Any]]] = {}
        self.reused = 0
        """Requests that went out on a kept stream."""

    def take(self, peer: Hashable, protocol: str) -> tuple[Any | None, list[Any]]:
        """A kept stream to ``peer`` on ``protocol`` that can carry a request (None: open a new one), and the
        kept streams found unusable or idle too long on the way (the caller closes them)."""
        key = (peer, protocol)
        entries = self._idle.get(key)
        stale: list[Any] = []
        now = self._clock()
        while entries:
            at, stream = entries.pop()
            if self._fresh(at, stream, now):
                if not entries:
                    del self._idle[key]
                self.reused += 1
                return stream, stale
            stale.append(stream)
        self._idle.pop(key, None)
        return None, stale

    def _fresh(self, at: float, stream: Any, now: float) -> bool:
        """Whether a stream kept since ``at`` may carry the next request."""
        return now - at <= self.idle_s and usable(stream)

    def give_back(self, peer: Hashable, protocol: str, stream: Any) -> Any | None:
        """Keep ``stream`` (its exchange ended cleanly) for the next request; returns a stream the caller must
        close when ``per_key`` are kept already (the oldest)."""
        entries = self._idle.setdefault((peer, protocol), [])
        entries.append((self._clock(), stream))
        if len(entries) > self.per_key:
            return entries.pop(0)[1]
        return None

    def drop_peer(self, peer: Hashable) -> list[Any]:
        """Forget every kept stream to ``peer`` (it was disconnected or blocked); returns them to close."""
        out: list[Any] = []
        for key in [k for k in self._idle if k[0] == peer]:
            out.extend(s for _, s in self._idle.pop(key))
        return out

    def expire(self) -> list[Any]:
        """Forget the kept streams idle longer than ``idle_s`` or no longer usable; returns them to close."""
        now = self._clock()
        out: list[Any] = []
        for key, entries in list(self._idle.items()):
            keep = []
            for at, stream in entries:
                if self._fresh(at, stream, now):
                    keep.append((at, stream))
                else:
                    out.append(stream)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self._idle.values())
