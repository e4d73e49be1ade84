"""An in-process mesh implementing :class:`~.transport.Transport` (STYLE §1, §12).

Role code runs unchanged on N in-memory nodes inside one trio run: deterministic unit tests of market rounds
and simulations of populations far larger than libp2p can carry on one machine. The hub is
:class:`MemoryNetwork`; each participant joins it with its key and gets a :class:`MemoryTransport`::

    net = MemoryNetwork(seed=1, drop_rate=0.05)
    async with net.join(alice) as a, net.join(bob) as b:
        inbox = b.subscribe("bazaar/prices")
        await a.publish("bazaar/prices", payload)
        delivery = await inbox.receive()

Semantics match the libp2p transport (the conformance suite checks both): gossip reaches every other
connected subscriber, never the sender, through bounded channels that drop and count on overflow; direct
requests run the real framed exchange of :mod:`.framing` over an in-memory stream pair, so rejections,
handler failures, size caps and timeouts behave as on the wire. The topology is a full mesh (no multi-hop
forwarding); ``disconnect``/``partition`` cut links in both directions.

Determinism: with ``latency == 0`` a publish hands each delivery to the receivers' channels before it returns
(no tasks, no timers), and drops use one seeded ``random.Random`` visited in join order. With ``latency > 0``
deliveries wait in a per-receiver timer task, which trio's ``MockClock(autojump_threshold=0)`` makes instant
and reproducible.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

import trio
import trio.testing

from .errors import ProtocolReason
from .framing import client_exchange, serve_exchange
from .keys import KeyPair
from .transport import MAX_FRAME, MAX_GOSSIP, Delivery, PeerUnavailable, RemoteRejected, RequestHandler

log = logging.getLogger(__name__)

HANDLER_CONCURRENCY = 8
"""Concurrent handler runs per protocol and node (excess requests queue)."""

HANDLER_TIMEOUT = 30.0
"""Longest a request handler may take before its stream is dropped."""

_Channels = tuple[trio.MemorySendChannel[Delivery], trio.MemoryReceiveChannel[Delivery]]

_STAT_KEYS = (
    "gossip_out",
    "gossip_out_bytes",
    "request_bytes",
    "gossip_in",
    "gossip_dropped",
    "requests_sent",
    "requests_served",
    "requests_rejected",
    "requests_failed",
    "gossip_pushed",
)


class MemoryNetwork:
    """The hub: membership, links, loss and latency of an in-memory network.

    Args:
        seed: seed of the RNG that decides which gossip deliveries are lost.
        drop_rate: probability that one gossip delivery (one message to one receiver) is lost; direct
            requests are reliable, as streams are. May be changed while running.
        latency: one-way delay in seconds for gossip and for each direction of a request; 0 means immediate.
        queue_size: capacity of each subscription channel.
    """

    def __init__(
        self, *, seed: int = 0, drop_rate: float = 0.0, latency: float = 0.0, queue_size: int = 1000
    ) -> None:
        if not 0.0 <= drop_rate <= 1.0 or latency < 0 or queue_size < 1:
            raise ValueError("need 0 <= drop_rate <= 1, latency >= 0, queue_size >= 1")
        self.drop_rate = drop_rate
        self.latency = latency
        self.queue_size = queue_size
        self.lost = 0
        """Gossip deliveries lost to ``drop_rate`` so far."""
        self._rng = random.Random(seed)
        self._members: dict[bytes, MemoryTransport] = {}
        self._cut: set[frozenset[bytes]] = set()

    @asynccontextmanager
    async def join(self, key: KeyPair) -> AsyncIterator[MemoryTransport]:
        """Join the network as ``key``; leaving the block closes the transport.

        Raises:
            ValueError: a member with this key is already joined.
        """
        if key.public in self._members:
            raise ValueError("a transport with this key already joined the network")
        async with trio.open_nursery() as nursery:
            transport = MemoryTransport(self, key.public, nursery)
            self._members[key.public] = transport
            if self.latency > 0:
                nursery.start_soon(transport._pump)
            try:
                yield transport
            finally:
                del self._members[key.public]
                transport._close()
                nursery.cancel_scope.cancel()

    def members(self) -> list[bytes]:
        """Keys of every joined transport, in join order."""
        return list(self._members)

    def connected(self, a: bytes, b: bytes) -> bool:
        """Whether ``a`` and ``b`` are both joined and their link is not cut."""
        return a != b and a in self._members and b in self._members and frozenset((a, b)) not in self._cut

    def disconnect(self, a: bytes, b: bytes) -> None:
        """Cut the link between ``a`` and ``b`` (both directions)."""
        self._cut.add(frozenset((a, b)))

    def reconnect(self, a: bytes, b: bytes) -> None:
        """Restore the link between ``a`` and ``b``."""
        self._cut.discard(frozenset((a, b)))

    def partition(self, *groups: Iterable[bytes]) -> None:
        """Cut every link between members of different ``groups`` (links inside a group are untouched)."""
        sets = [list(g) for g in groups]
        for i, left in enumerate(sets):
            for right in sets[i + 1 :]:
                for a in left:
                    for b in right:
                        self.disconnect(a, b)

    def heal(self) -> None:
        """Restore every cut link."""
        self._cut.clear()

    def _route(self, src: bytes, dst: bytes) -> MemoryTransport:
        if not self.connected(src, dst):
            raise PeerUnavailable(f"no route to {dst.hex()[:16]}")
        return self._members[dst]

    def _lose(self) -> bool:
        if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
            self.lost += 1
            return True
        return False


class MemoryTransport:
    """One participant's view of a :class:`MemoryNetwork` (implements ``Transport``)."""

    def __init__(self, network: MemoryNetwork, key: bytes, nursery: trio.Nursery) -> None:
        self._network = network
        self._key = key
        self._nursery = nursery
        self._closed = False
        self._stats = dict.fromkeys(_STAT_KEYS, 0)
        self._subs: dict[str, _Channels] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._limiters: dict[str, trio.CapacityLimiter] = {}
        self._blocked: set[bytes] = set()
        self._delayed_send, self._delayed_recv = trio.open_memory_channel[tuple[float, Delivery]](
            network.queue_size
        )

    @property
    def local_key(self) -> bytes:
        """Our 32-byte public key."""
        return self._key

    @property
    def stats(self) -> dict[str, int]:
        """Counters: gossip_out/in/dropped, requests_sent/served/rejected/failed."""
        return self._stats

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("transport is closed")

    async def publish(self, topic: str, data: bytes) -> None:
        """Deliver ``data`` to every other connected subscriber of ``topic`` (best effort).

        Raises:
            ValueError: ``data`` is longer than ``MAX_GOSSIP``.
            trio.ClosedResourceError: this transport was closed.
        """
        self._check_open()
        if len(data) > MAX_GOSSIP:
            raise ValueError(f"gossip payload of {len(data)} bytes > MAX_GOSSIP {MAX_GOSSIP}")
        delivery = Delivery(topic, bytes(data), self._key)
        net = self._network
        for key, member in list(net._members.items()):
            if topic in member._subs and net.connected(self._key, key) and not net._lose():
                member._receive(delivery)
        self._stats["gossip_out"] += 1
        self._stats["gossip_out_bytes"] += len(data)
        await trio.lowlevel.checkpoint()

    async def push(self, peer: bytes, topic: str, data: bytes, *, timeout: float) -> None:
        """Hand one gossip payload of ours straight to ``peer``'s subscription (``PROTO_PUSH``; here a
        delivery on the one link).

        Raises:
            ValueError: ``data`` is longer than ``MAX_GOSSIP``.
            PeerUnavailable: no link to ``peer``.
            RemoteRejected: ``not-subscribed``.
        """
        self._check_open()
        if len(data) > MAX_GOSSIP:
            raise ValueError(f"gossip payload of {len(data)} bytes > MAX_GOSSIP {MAX_GOSSIP}")
        member = self._network._route(self._key, peer)  # a cut or blocked link: PeerUnavailable
        if topic not in member._subs:
            raise RemoteRejected(ProtocolReason.NOT_SUBSCRIBED)
        self._stats["requests_sent"] += 1
        self._stats["gossip_pushed"] += 1
        member._receive(Delivery(topic, bytes(data), self._key))
        await trio.lowlevel.checkpoint()

    def _receive(self, delivery: Delivery) -> None:
        if self._network.latency > 0:
            due = trio.current_time() + self._network.latency
            try:
                self._delayed_send.send_nowait((due, delivery))
            except trio.WouldBlock:
                self._stats["gossip_dropped"] += 1
            return
        self._enqueue(delivery)

    def _enqueue(self, delivery: Delivery) -> None:
        channels = self._subs.get(delivery.topic)
        if channels is None or self._closed:
            return
        try:
            channels[0].send_nowait(delivery)
            self._stats["gossip_in"] += 1
        except (trio.WouldBlock, trio.BrokenResourceError):
            self._stats["gossip_dropped"] += 1

    async def _pump(self) -> None:
        async for due, delivery in self._delayed_recv:
            await trio.sleep_until(due)
            self._enqueue(delivery)

    def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[Delivery]:
        """Start receiving ``topic``; calling again returns the same channel."""
        self._check_open()
        if topic not in self._subs:
            self._subs[topic] = trio.open_memory_channel[Delivery](self._network.queue_size)
        return self._subs[topic][1]

    def set_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve direct requests on ``protocol``."""
        self._handlers[protocol] = handler
        self._limiters.setdefault(protocol, trio.CapacityLimiter(HANDLER_CONCURRENCY))

    async def request(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """Send one request to ``peer`` and return its response.

        Raises:
            ValueError: ``data`` exceeds ``MAX_FRAME`` or ``peer`` is ourselves.
            PeerUnavailable: no route, no handler for ``protocol``, or the handler failed.
            RemoteRejected: the handler refused with :class:`RejectRequest`.
            trio.TooSlowError: no response within ``timeout`` seconds.
            trio.ClosedResourceError: this transport was closed.
        """
        self._check_open()
        if peer == self._key:
            raise ValueError("cannot send a request to ourselves")
        if len(data) > MAX_FRAME:
            raise ValueError(f"request of {len(data)} bytes > MAX_FRAME {MAX_FRAME}")
        self._stats["requests_sent"] += 1
        self._stats["request_bytes"] += len(data)
        latency = self._network.latency
        try:
            with trio.fail_after(timeout):
                target = self._network._route(self._key, peer)
                if latency > 0:
                    await trio.sleep(latency)
                    target = self._network._route(self._key, peer)
                client, server = trio.testing.memory_stream_pair()
                target._accept(server, self._key, protocol)
                try:
                    response = await client_exchange(client, bytes(data), max_frame=MAX_FRAME)
                finally:
                    with trio.CancelScope(shield=True):
                        await client.aclose()
                if latency > 0:
                    await trio.sleep(latency)
                return response
        except RemoteRejected:
            raise
        except BaseException:
            self._stats["requests_failed"] += 1
            raise

    def _accept(self, stream: trio.abc.Stream, peer: bytes, protocol: str) -> None:
        handler = self._handlers.get(protocol)
        if handler is None or self._closed:
            raise PeerUnavailable(f"peer does not serve {protocol!r}")
        self._nursery.start_soon(self._serve, stream, peer, protocol, handler)

    async def _serve(
        self,
        stream: trio.abc.Stream,
        peer: bytes,
        protocol: str,
        handler: RequestHandler,
    ) -> None:
        try:
            async with self._limiters[protocol]:
                with trio.fail_after(HANDLER_TIMEOUT):
                    answered = await serve_exchange(stream, peer, handler, max_frame=MAX_FRAME)
            self._stats["requests_served" if answered else "requests_rejected"] += 1
        except Exception as err:  # a failing handler must never take the node down
            self._stats["requests_failed"] += 1
            log.warning("request on %s from %s failed: %r", protocol, peer.hex()[:16], err)
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    @property
    def blocked(self) -> list[bytes]:
        """Keys of the peers we cut ourselves off from (:meth:`set_blocked`)."""
        return sorted(self._blocked)

    def set_blocked(self, keys: Sequence[bytes]) -> None:
        """Exchange no traffic with ``keys`` (replacing the previous set; empty heals): cuts our links to them."""
        for key in self._blocked:
            self._network.reconnect(self._key, key)
        self._blocked = {k for k in keys if k != self._key}
        for key in self._blocked:
            self._network.disconnect(self._key, key)

    def peers(self) -> list[bytes]:
        """Keys of the members we have a link to."""
        return [k for k in self._network._members if self._network.connected(self._key, k)]

    def _close(self) -> None:
        self._closed = True
        for send, _ in self._subs.values():
            send.close()
        self._delayed_send.close()

