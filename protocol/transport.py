"""The one seam between role code and the network (STYLE §1).

Peers are named by their 32-byte Ed25519 public key (their account; for libp2p the peer ID is derived from
it). Two implementations: ``protocol.memory`` (an in-process mesh for deterministic tests and large
simulations) and ``protocol.p2p`` (py-libp2p: gossipsub topics + direct streams with length-prefixed frames).
Both are tested by one conformance suite (tests/protocol/test_transport_conformance.py).

Semantics every implementation keeps:

* ``publish`` is best-effort fan-out to every *other* subscriber of the topic (never back to the sender);
  it never blocks for long and never raises on a slow peer; payloads are capped at ``MAX_GOSSIP``.
* ``subscribe`` returns a bounded receive channel of :class:`Delivery`; when the consumer falls behind,
  deliveries are dropped and counted (``stats["gossip_dropped"]``), never buffered without bound.
* ``request`` opens a direct exchange with one peer: one request frame, one response frame, each at most
  ``MAX_FRAME`` bytes; it raises :class:`PeerUnavailable` (no route / refused / reset / handler crashed),
  :class:`RemoteRejected` or ``trio.TooSlowError`` (deadline), never hangs past ``timeout``.
* a request handler receives the authenticated peer key and the request bytes and returns response bytes;
  raising :class:`RejectRequest` sends a typed error frame back; any other exception resets the stream.
  Handlers run concurrently, capped per protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

MAX_GOSSIP = 256 << 10
"""Largest gossip payload (py-libp2p drops > 1 MiB silently; keep announcements small)."""

MAX_FRAME = 16 << 20
"""Largest direct-stream frame (model weights, chain segments)."""

RequestHandler = Callable[[bytes, bytes], Awaitable[bytes]]
"""``handler(peer_key, request_bytes) -> response_bytes``."""


class TransportError(Exception):
    """Base of transport failures (ours or the peer's)."""


class PeerUnavailable(TransportError):
    """The peer cannot be reached or broke the exchange (refused, reset, EOF)."""


class RejectRequest(TransportError):
    """Raised by a handler to refuse a request with a reason the requester sees."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RemoteRejected(TransportError):
    """The remote handler refused our request; ``reason`` is what it said."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"peer rejected the request: {reason}")


PROTO_PUSH = "/bazaar/push/1"
"""A gossip payload handed straight to one subscriber (:meth:`Transport.push`): request ``{topic: str, data: bin}``
(canonical msgpack), answered empty; refused ``not-subscribed`` or ``malformed`` (docs/adr/0194)."""


@dataclass(frozen=True)
class Delivery:
    """One gossip message as received.

    Attributes:
        topic: the topic it arrived on.
        data: the payload bytes, exactly as published.
        forwarder: key of the peer that handed it to us (not necessarily the origin).
    """

    topic: str
    data: bytes
    forwarder: bytes


class Transport(Protocol):
    """What role code may use of the network."""

    @property
    def local_key(self) -> bytes:
        """Our 32-byte public key."""
        ...

    @property
    def stats(self) -> dict[str, int]:
        """Counters: gossip_in, gossip_dropped, requests_served, requests_failed, ..."""
        ...

    async def publish(self, topic: str, data: bytes) -> None:
        """Best-effort broadcast of ``data`` to the topic's other subscribers."""
        ...

    def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[Delivery]:
        """Start receiving ``topic``; one channel per topic (calling twice returns the same channel)."""
        ...

    async def push(self, peer: bytes, topic: str, data: bytes, *, timeout: float) -> None:
        """Hand one gossip payload of ours straight to ``peer``'s subscription of ``topic`` (``PROTO_PUSH``): it
        arrives there as a gossiped one would, and a gossiped copy of it is then dropped as already seen.

        Raises:
            PeerUnavailable, RemoteRejected (``not-subscribed``, ``malformed``), trio.TooSlowError: as
                :meth:`request`.
        """
        ...

    def set_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve direct requests on ``protocol`` (e.g. ``"/bazaar/sync/1"``)."""
        ...

    async def request(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """Send one request to ``peer`` and return its response."""
        ...

    def peers(self) -> list[bytes]:
        """Keys of the peers we are connected to now."""
        ...

    def set_blocked(self, keys: Sequence[bytes]) -> None:
        """Exchange no traffic with ``keys`` (replaces the previous set; empty heals): a testnet's partition."""
        ...
