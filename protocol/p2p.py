"""The py-libp2p implementation of :class:`~.transport.Transport` (docs/protocol.md, libp2p.md §8).

Gossip goes over gossipsub (``/meshsub/1.1.0``, strict signing); direct requests over one new libp2p stream
per request, speaking the framed exchange of :mod:`.framing` under the caller's protocol name. The node's
Ed25519 key is also its libp2p identity, so a peer ID and an account are the same key::

    async with open_libp2p_transport(key, peers=[(boot_key, boot_addr)], topics=["bazaar/blocks"]) as t:
        print(t.listen_addrs)
        await t.publish("bazaar/blocks", announcement)

What the transport runs for you (all in one nursery owned by the context manager):

* a keep-connected supervisor that re-dials every address-book peer with backoff, calling
  ``unblock_peer`` to bypass the swarm's 60 s negative dial cache (§2.3);
* a mesh watchdog that disconnects peers stuck without a pubsub stream, whose pubsub stream sits on a closed
  connection (a peer restarted before we noticed: pubsub skips a peer it already knows), or a topic whose mesh
  stays empty while peers subscribe to it, so that re-dialling re-runs pubsub registration (§6.9);
* one drain task per subscription that moves messages into a bounded channel and counts drops (§3.1).

Start order is pubsub services outermost, then ``host.run`` (§2.2: prevents the startup race); on exit
``host.close()`` runs first (prevents the shutdown ExceptionGroup).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import Ed25519PublicKey, create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from .dial_set import dial_set, hubs
from .errors import ProtocolReason
from .framing import StreamEnded, client_exchange, read_frame_length, serve_exchange
from .keys import PUBKEY_LEN, KeyPair
from .mesh_events import count_mesh_events
from .p2p_disconnect import disconnect
from .p2p_settings import GossipSettings, apply_process_patches, make_gossipsub, quiet_libp2p_logging
from .push import decode_push, encode_push
from .stream_pool import SERVE_IDLE_S, StreamPool
from .transport import (
    MAX_FRAME,
    MAX_GOSSIP,
    PROTO_PUSH,
    Delivery,
    PeerUnavailable,
    RejectRequest,
    RemoteRejected,
    RequestHandler,
)

log = logging.getLogger(__name__)

HANDLER_CONCURRENCY = 8
"""Concurrent handler runs per protocol; further inbound streams wait for a slot."""
HANDLER_TIMEOUT = 30.0
"""Responder deadline for one whole exchange (read the request after its length prefix, handle, write the
response); a kept stream waits up to ``stream_pool.SERVE_IDLE_S`` for the next request's prefix."""
NEW_STREAM_TIMEOUT = 5.0
"""Dial + protocol negotiation deadline (negotiation can hang 10-30 s on a sick peer, §2.5)."""
CONNECT_TIMEOUT = 5.0
SUPERVISOR_PERIOD = 0.5
BACKOFF_MIN, BACKOFF_MAX = 0.5, 8.0
WATCHDOG_PERIOD = 2.0
WATCHDOG_GRACE = 10.0
"""How long a peer may stay without a pubsub stream (or a subscribed topic without a mesh) before a kick."""
WATCHDOG_GRACE_PER_PEER = 0.5
"""Extra grace per connected peer: pubsub registers new peers one stream negotiation at a time, so a node that
49 peers dial at once (a hub of :func:`dial_set`, a leader every consumer asks) legitimately needs longer, and
kicking it for that starts the registration over (a churn loop seen at 50 processes, docs/adr/0123)."""
WATCHDOG_MAX_KICKS = 2
"""Connections kicked for a missing pubsub stream per watchdog period, oldest first."""
WATCHDOG_MAX_DOUBLINGS = 3
"""A peer kicked for a missing pubsub stream gets twice the grace the next time, up to 2**3 times: a peer too
busy to finish the registration in time (a hub at 50 processes) was kicked every grace period, each redial a new
noise handshake for it, and never caught up (docs/adr/0200)."""
MAX_TRACKED_KICKS = 4096
"""Peers whose kicks the watchdog remembers at most (forgotten all at once past it)."""
STALE_GRACE = 1.0
"""How long a connected peer's pubsub stream may sit on a closed connection (a quick restart) before a kick."""
SEEN_PAYLOADS = 16_384
"""Digests of recent gossip payloads kept: a payload published again (a replayed envelope under a new pubsub
message) fails validation, so it is neither delivered nor relayed (a replay flood stays one hop deep)."""
PUBLISH_HIGH_WATER = 64
"""Publish waits while any peer's outbound pubsub queue holds this many RPCs (§3.2)."""
PUBLISH_MAX_WAIT = 2.0
"""Longest a publish waits for queues to drain; after that it publishes anyway (gossip is best effort)."""
INBOX_SIZE = 1000
ON_DEMAND_LINGER = 10.0
"""A connection we opened for a request to a peer outside :func:`dial_set` is closed after this long without a
request: otherwise every peer a node ever asked (a round's proposer, to which every validator sends its vote)
stays connected, and a 50-node network drifts back to a full mesh (docs/adr/0147)."""
ADDRESS_TTL = 10**9
"""Peerstore TTL for address-book entries: effectively permanent (``connect`` alone keeps them 120 s)."""

_PEER_ERRORS = (BaseLibp2pError, OSError, EOFError, trio.BrokenResourceError)
"""Failures caused by the peer or the link: reported as PeerUnavailable."""

_Channels = tuple[trio.MemorySendChannel[Delivery], trio.MemoryReceiveChannel[Delivery]]

_STAT_KEYS = (
    "gossip_out",
    "gossip_out_bytes",
    "request_bytes",
    "gossip_in",
    "gossip_dropped",
    "publish_waited",
    "gossip_replayed",
    "requests_sent",
    "requests_served",
    "requests_rejected",
    "requests_failed",
    "dials_failed",
    "watchdog_kicks",
    "disconnects_aborted",
    "streams_reused",
    "gossip_pushed",
)


def peer_id_for(key: bytes) -> ID:
    """The libp2p peer ID of a 32-byte Ed25519 public key (identity multihash, key inline)."""
    if len(key) != PUBKEY_LEN:
        raise ValueError(f"expected a {PUBKEY_LEN}-byte Ed25519 public key, got {len(key)} bytes")
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(key))


def key_for_peer_id(peer_id: ID) -> bytes | None:
    """The Ed25519 public key inlined in ``peer_id``, or ``None`` for another key type (RSA, secp256k1)."""
    try:
        public = peer_id.extract_public_key()
    except (BaseLibp2pError, ValueError):
        return None
    if not isinstance(public, Ed25519PublicKey):
        return None
    return public.to_bytes()


def stuck_grace(grace: float, kicks: int) -> float:
    """The grace a peer gets to register with pubsub after ``kicks`` kicks for not registering in time: doubled
    per kick, up to :data:`WATCHDOG_MAX_DOUBLINGS` times."""
    return grace * 2 ** min(kicks, WATCHDOG_MAX_DOUBLINGS)


def meshless_kicks(subscribers: set[ID], dialled: set[ID], limit: int = WATCHDOG_MAX_KICKS) -> list[ID]:
    """Which subscribers of a topic whose mesh stayed empty the watchdog disconnects: at most ``limit``, peers
    we keep connected first (the supervisor redials them at once), chosen at random among equals so a later
    period tries others. Kicking them all made a hub of 49 peers drop every connection one by one, each
    kick cancelling the requests in flight on it (docs/adr/0147)."""
    ordered = sorted(subscribers, key=lambda p: (p not in dialled, random.random()))
    return ordered[:limit]


def _split_maddr(maddr: str) -> tuple[multiaddr.Multiaddr, str | None]:
    """Parse ``maddr``; return it without a trailing ``/p2p/<id>`` and that id (or None)."""
    parsed = multiaddr.Multiaddr(maddr)
    try:
        pid = parsed.value_for_protocol("p2p")
    except Exception:  # multiaddr raises ProtocolLookupError (not exported uniformly across versions)
        pid = None
    if pid:
        parsed = parsed.decapsulate(multiaddr.Multiaddr(f"/p2p/{pid}"))
    return parsed, pid


def idle_on_demand(on_demand: dict[ID, float], in_flight: dict[ID, int], now: float,
                   linger: float = ON_DEMAND_LINGER) -> list[ID]:
    """The peers we dialled for requests whose connection is closed now: no request under way and none ended
    in the last ``linger`` seconds."""
    return [pid for pid, last in on_demand.items() if pid not in in_flight and now - last > linger]


def disable_auto_connect(host: IHost) -> None:
    """Switch off py-libp2p 0.8.1's auto-connector before the host runs.

    The swarm dials peerstore entries until it holds ``(low + high watermark) / 2`` = 200 connections, and polls
    every 10 s while it holds fewer than ``min_connections`` = 50: with the whole address book in the peerstore,
    every network up to 50 nodes became a full mesh within a minute whatever :func:`dial_set` chose — 1225
    connections whose idle traffic (pubsub registration, heartbeats) kept both cores busy at 50 processes
    (docs/adr/0147). The supervisor keeps the connections we want; direct requests dial on demand.
    """
    connector: Any = getattr(host.get_network(), "auto_connector", None)
    if connector is None:
        return

    async def stay_stopped() -> None:
        connector._started = False

    connector.start = stay_stopped


def publish_past_thin_mesh(router: GossipSub) -> None:
    """Send our own messages to extra subscribed peers when the topic's mesh is thinner than ``degree_low``.

    py-libp2p 0.8.1 sends a message of a topic we joined to its mesh only, so with an empty mesh our publish
    reaches nobody (gossip may repair it a heartbeat later, or not). At 50 processes a hub's mesh on the market
    topic was empty for seconds at a time (every other node prunes the hub its neighbours also graft): the CPP's
    lease reached no consumer and the round was lost (docs/adr/0147). Topping our own publishes up to ``degree``
    peers is gossipsub v1.1's flood publishing, limited to when the mesh cannot carry them; relayed messages
    are unchanged."""
    original = router._get_peers_to_send

    def peers_to_send(topic_ids: Any, msg_forwarder: ID, origin: ID, msg_id: bytes | None = None) -> Any:
        chosen = set(original(topic_ids, msg_forwarder, origin, msg_id))
        pubsub = router.pubsub
        if pubsub is None or msg_forwarder != pubsub.my_id or origin != pubsub.my_id:
            return iter(chosen)
        for topic in topic_ids:
            mesh = router.mesh.get(topic)
            if mesh is None or len(mesh) >= router.degree_low:
                continue
            extra = [p for p in pubsub.peer_topics.get(topic, ()) if p not in chosen and p != origin]
            random.shuffle(extra)
            chosen.update(extra[:max(0, router.degree - len(mesh))])
        return iter(chosen)

    router._get_peers_to_send = peers_to_send  # type: ignore[method-assign]


def _guard_rpc_decoding(pubsub: Pubsub) -> None:
    """Make an undecodable pubsub RPC end only its stream. py-libp2p 0.8.1's read loop lets protobuf's
    ``DecodeError`` escape the pubsub service, which then takes the whole node down: any peer could stop a node
    with one malformed frame (found by the live fuzzer, tests/fuzz/test_live.py)."""
    read = pubsub.continuously_read_stream

    async def guarded(stream: Any) -> None:
        try:
            await read(stream)
        except DecodeError:
            log.debug("malformed pubsub RPC from %s: stream reset", stream.muxed_conn.peer_id)
            with contextlib.suppress(Exception):  # the peer may be gone already: nothing left to reset
                await stream.reset()

    pubsub.continuously_read_stream = guarded  # type: ignore[method-assign]


class SeenPayloads:
    """A bounded set of recent gossip payload digests; :meth:`fresh` is a synchronous pubsub validator.

    Our own publishes are remembered but never refused (the envelope layer makes each of them unique; what we
    send is the sender's business, what we accept and relay is ours).
    """

    def __init__(self, own: ID, size: int = SEEN_PAYLOADS) -> None:
        self.own = own
        self.size = size
        self.refused = 0
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def fresh(self, forwarder: ID, msg: Any) -> bool:
        """True the first time a payload is seen (it is remembered), False for a copy of a recent one."""
        return self.remember(bytes(msg.data), own=forwarder == self.own)

    def remember(self, data: bytes, *, own: bool = False) -> bool:
        """Remember ``data``; False when a recent payload was the same (never for ``own``: our publishes)."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest in self._seen and not own:
            self.refused += 1
            return False
        self._seen[digest] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


class Libp2pTransport:
    """A running libp2p node seen through the ``Transport`` interface; see :func:`open_libp2p_transport`."""

    def __init__(
        self, key: KeyPair, host: IHost, pubsub: Pubsub, gossipsub: GossipSub, nursery: trio.Nursery
    ) -> None:
        self._key = key.public
        self._host = host
        self._ps = pubsub
        self._gs = gossipsub
        self._nursery = nursery
        self._closed = False
        self._stats = dict.fromkeys(_STAT_KEYS, 0)
        self._subs: dict[str, _Channels] = {}
        self._limiters: dict[str, trio.CapacityLimiter] = {}
        self._book: dict[ID, list[multiaddr.Multiaddr]] = {}
        self._book_keys: list[bytes] = []
        self._dial_ids: set[ID] | None = None  # the peers the supervisor keeps connected (None: recompute)
        self._hubs: set[ID] | None = None  # the address book's hubs (None: recompute)
        self._book_changed = trio.Event()
        self._keys: dict[bytes, bytes | None] = {}  # raw peer-id bytes -> Ed25519 key (cache)
        self._seen = SeenPayloads(host.get_id())
        self._blocked: set[ID] = set()
        self._on_demand: dict[ID, float] = {}  # peers we dialled for a request -> when a request last ended
        self._in_flight: dict[ID, int] = {}  # requests under way per peer
        self._pool = StreamPool()  # request streams kept for the next request (docs/adr/0180)
        self._mesh_events = count_mesh_events(gossipsub)  # why mesh links form and go (docs/adr/0203)

    # --- identity and addresses -------------------------------------------------------------------
    @property
    def local_key(self) -> bytes:
        """Our 32-byte public key."""
        return self._key

    @property
    def stats(self) -> dict[str, int]:
        """Counters: gossip_out/in/dropped/replayed, publish_waited, requests_*, dials_failed, watchdog_kicks,
        disconnects_aborted (a close that hung, its sockets closed under it: :mod:`.p2p_disconnect`), streams_reused,
        and gossipsub's mesh decisions (``mesh_*``, :mod:`.mesh_events`)."""
        self._stats["gossip_replayed"] = self._seen.refused
        self._stats["streams_reused"] = self._pool.reused
        self._stats.update(self._mesh_events)
        return self._stats

    @property
    def peer_id(self) -> str:
        """Our libp2p peer ID (base58)."""
        return self._host.get_id().to_base58()

    @property
    def listen_addrs(self) -> list[str]:
        """Full multiaddrs we listen on, with the actual bound port and ``/p2p/<our id>``."""
        pid = self._host.get_id().to_base58()
        return [f"{addr}/p2p/{pid}" for addr in self._host.get_transport_addrs()]

    def peer_id_of(self, key: bytes) -> str:
        """The base58 libp2p peer ID of account ``key``."""
        return peer_id_for(key).to_base58()

    def add_peer(self, key: bytes, maddr: str) -> None:
        """Add ``key`` reachable at ``maddr`` to the address book; the supervisor keeps it connected.

        Raises:
            ValueError: ``maddr`` is malformed or names a different peer ID than ``key``'s.
        """
        pid = peer_id_for(key)
        addr, named = _split_maddr(maddr)
        if named is not None and named != pid.to_base58():
            raise ValueError(f"multiaddr {maddr} names peer {named}, not the peer of this key ({pid})")
        if key == self._key:
            return
        self._host.get_peerstore().add_addrs(pid, [addr], ADDRESS_TTL)
        known = self._book.setdefault(pid, [])
        if addr not in known:
            known.append(addr)
        if key not in self._book_keys:
            self._book_keys.append(key)
            self._dial_ids = None
            self._hubs = None
        self._book_changed.set()

    def dialled(self) -> list[bytes]:
        """Keys of the address-book peers the supervisor keeps connected (:func:`dial_set`)."""
        return dial_set(self._key, self._book_keys)

    # --- peer filter (a testnet's partition) ------------------------------------------------------
    @property
    def blocked(self) -> list[bytes]:
        """Keys of the peers we exchange no traffic with (:meth:`set_blocked`)."""
        keys = (self._key_of(pid) for pid in self._blocked)
        return sorted(k for k in keys if k is not None)

    def set_blocked(self, keys: Sequence[bytes]) -> None:
        """Exchange no traffic with ``keys`` (replacing the previous set; empty heals): their connections are
        closed, the supervisor stops dialling them, pubsub drops what they send or forward (its blacklist),
        their requests are reset and requests to them fail with ``PeerUnavailable``. A partition on loopback,
        where no link state can be cut (docs/testnets.md)."""
        blocked = {peer_id_for(k) for k in keys if k != self._key}
        # The blacklist set itself, not ``add_to_blacklist``: that also spawns a teardown which deletes the peer's
        # pubsub entry after an await, and raises KeyError (crashing the pubsub service, and the node) when the
        # peer's own disconnect removed it meanwhile (py-libp2p 0.8.1). The supervisor closes the connections.
        self._ps.blacklisted_peers.difference_update(self._blocked - blocked)
        self._ps.blacklisted_peers.update(blocked)
        self._blocked = blocked
        self._book_changed.set()  # the supervisor redials healed peers and drops blocked connections now

    def _key_of(self, peer_id: ID) -> bytes | None:
        raw = peer_id.to_bytes()
        if raw not in self._keys:
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[raw] = key_for_peer_id(peer_id)
        return self._keys[raw]

    def peers(self) -> list[bytes]:
        """Keys of the peers we hold a connection to (Ed25519 identities only)."""
        keys = (self._key_of(pid) for pid in self._host.get_connected_peers())
        return [k for k in keys if k is not None]

    def mesh_peers(self, topic: str) -> list[bytes]:
        """Keys of our gossipsub mesh peers on ``topic`` (health checks and tests)."""
        keys = (self._key_of(pid) for pid in self._gs.mesh.get(topic, ()))
        return [k for k in keys if k is not None]

    def mesh_min(self, topics: Sequence[str] | None = None) -> int:
        """The smallest gossipsub mesh over ``topics`` (default: every topic we subscribe to): 0 while some topic
        would reach nobody (peers connected but not yet registered in pubsub, or no GRAFT yet). The launcher
        waits for ≥ 1 (ADR 0120)."""
        return min((len(self._gs.mesh.get(t, ())) for t in (self._subs if topics is None else topics)), default=0)

    def mesh_report(self, topics: Sequence[str]) -> dict[str, dict[str, int]]:
        """Per topic: our mesh size, the connected peers subscribed to it, how many of those gossipsub will not
        graft now because one side pruned the other less than its prune backoff ago, and how many connected peers
        pubsub has registered (an outbound stream open) (``GET /status`` ``gossip``: why a mesh is empty)."""
        now = int(time.time())  # gossipsub stamps its backoffs in wall-clock seconds
        connected = set(self._host.get_connected_peers())
        registered = len(connected & set(self._ps.peers))
        out = {}
        for topic in topics:
            subscribers = self._ps.peer_topics.get(topic, set()) & connected
            until = self._gs.back_off.get(topic, {})
            out[topic] = {"mesh": len(self._gs.mesh.get(topic, ())), "subscribers": len(subscribers),
                          "backed_off": sum(1 for p in subscribers if until.get(p, 0) > now),
                          "connected": len(connected), "registered": registered}
        return out

    def _hub_ids(self) -> set[ID]:
        """Peer ids of the address book's hubs (:func:`~.dial_set.hubs`): a registration with one of them takes as
        long as the hub's own grace allows, since it is the hub, connected to every node, that answers slowly
        (docs/adr/0206)."""
        if self._hubs is None:
            self._hubs = {peer_id_for(k) for k in hubs(self._book_keys)}  # the book never holds our own key
        return self._hubs

    def _kept_ids(self) -> set[ID]:
        """Peer ids of :meth:`dialled`, computed once per address book."""
        if self._dial_ids is None:
            self._dial_ids = {peer_id_for(k) for k in self.dialled()}
        return self._dial_ids

    def formed(self, topics: Sequence[str]) -> bool:
        """Whether our part of the overlay has formed: every peer we keep connected (:meth:`dialled`, but the
        blocked) is connected and registered by pubsub, and each of ``topics`` has a mesh (docs/adr/0198)."""
        keep = self._kept_ids() - self._blocked
        connected = set(self._host.get_connected_peers())
        return keep <= connected and keep <= set(self._ps.peers) and (not topics or self.mesh_min(topics) >= 1)

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("transport is closed")

    # --- gossip ----------------------------------------------------------------------------------
    async def publish(self, topic: str, data: bytes) -> None:
        """Publish ``data`` on ``topic`` with backpressure on the per-peer outbound queues (§3.2).

        Raises:
            ValueError: ``data`` is longer than ``MAX_GOSSIP`` (libp2p would drop > 1 MiB silently).
            trio.ClosedResourceError: this transport was closed.
        """
        self._check_open()
        if len(data) > MAX_GOSSIP:
            raise ValueError(f"gossip payload of {len(data)} bytes > MAX_GOSSIP {MAX_GOSSIP}")
        if self._queues_full():
            self._stats["publish_waited"] += 1
            with trio.move_on_after(PUBLISH_MAX_WAIT):
                while self._queues_full():
                    await trio.sleep(0.005)
        await self._ps.publish(topic, bytes(data))
        self._stats["gossip_out"] += 1
        self._stats["gossip_out_bytes"] += len(data)

    def _queues_full(self) -> bool:
        return any(len(q) >= PUBLISH_HIGH_WATER for q in self._ps.peer_queues.values())

    def subscribe(self, topic: str) -> trio.MemoryReceiveChannel[Delivery]:
        """Start receiving ``topic``; calling again returns the same channel.

        The pubsub subscription itself is announced by a background task; topics passed to
        :func:`open_libp2p_transport` are subscribed before the transport is handed out.
        """
        self._check_open()
        if topic not in self._subs:
            self._ps.set_topic_validator(topic, self._seen.fresh, False)
            self._subs[topic] = trio.open_memory_channel[Delivery](INBOX_SIZE)
            self._nursery.start_soon(self._drain, topic)
        return self._subs[topic][1]

    async def _subscribe_now(self, topic: str) -> None:
        self._ps.set_topic_validator(topic, self._seen.fresh, False)
        if topic not in self._subs:
            self._subs[topic] = trio.open_memory_channel[Delivery](INBOX_SIZE)
            subscription = await self._ps.subscribe(topic)
            self._nursery.start_soon(self._drain, topic, subscription)

    async def _drain(self, topic: str, subscription: Any = None) -> None:
        if subscription is None:
            subscription = await self._ps.subscribe(topic)
        send = self._subs[topic][0]
        own = self._host.get_id().to_bytes()
        async for msg in subscription:  # never await application work here
            if msg.from_id == own:
                continue  # pubsub hands our own publishes to our own subscription
            origin = self._key_of(ID(msg.from_id))
            if origin is None:
                continue
            try:
                send.send_nowait(Delivery(topic, bytes(msg.data), origin))
                self._stats["gossip_in"] += 1
            except (trio.WouldBlock, trio.BrokenResourceError):
                self._stats["gossip_dropped"] += 1

    async def push(self, peer: bytes, topic: str, data: bytes, *, timeout: float) -> None:
        """Hand one gossip payload of ours straight to ``peer``'s subscription (``PROTO_PUSH``, docs/adr/0194).

        Raises:
            ValueError: ``data`` is longer than ``MAX_GOSSIP``.
            PeerUnavailable, RemoteRejected, trio.TooSlowError: as :meth:`request`.
        """
        if len(data) > MAX_GOSSIP:
            raise ValueError(f"gossip payload of {len(data)} bytes > MAX_GOSSIP {MAX_GOSSIP}")
        await self.request(peer, PROTO_PUSH, encode_push(topic, data), timeout=timeout)
        self._stats["gossip_pushed"] += 1

    async def _serve_push(self, peer: bytes, request: bytes) -> bytes:
        """A payload pushed to us: delivered as a gossiped one, unless its gossiped copy came first."""
        topic, data = decode_push(request)
        channels = self._subs.get(topic)
        if channels is None:
            raise RejectRequest(ProtocolReason.NOT_SUBSCRIBED)
        if self._seen.remember(data):
            try:
                channels[0].send_nowait(Delivery(topic, data, peer))
                self._stats["gossip_in"] += 1
            except (trio.WouldBlock, trio.BrokenResourceError):
                self._stats["gossip_dropped"] += 1
        return b""

    # --- direct requests ----------------------------------------------------------------------------
    def set_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve direct requests on ``protocol`` (a libp2p protocol ID such as ``/bazaar/sync/1``)."""
        limiter = self._limiters.setdefault(protocol, trio.CapacityLimiter(HANDLER_CONCURRENCY))

        async def on_stream(stream: Any) -> None:
            await self._serve(protocol, handler, limiter, stream)

        self._host.set_stream_handler(TProtocol(protocol), on_stream)

    async def _serve(
        self, protocol: str, handler: RequestHandler, limiter: trio.CapacityLimiter, stream: Any
    ) -> None:
        """Serve exchanges on one inbound stream, one after the other, until the requester closes it or sends
        nothing for ``SERVE_IDLE_S`` (docs/adr/0180)."""
        pid = stream.muxed_conn.peer_id
        peer = self._key_of(pid)  # authenticated by the noise handshake
        try:
            if peer is None:
                raise PeerUnavailable("peer identity is not an Ed25519 key")
            while True:
                if pid in self._blocked:
                    raise PeerUnavailable("peer is blocked (partition)")
                length = None
                with trio.move_on_after(SERVE_IDLE_S), contextlib.suppress(PeerUnavailable, *_PEER_ERRORS):
                    length = await read_frame_length(stream, MAX_FRAME)  # ended or broke between exchanges: no
                if length is None:                                       # request was made, none failed
                    await _close_quietly(stream)
                    return
                async with limiter:
                    with trio.fail_after(HANDLER_TIMEOUT):
                        answered = await serve_exchange(stream, peer, handler, max_frame=MAX_FRAME, length=length)
                self._stats["requests_served" if answered else "requests_rejected"] += 1
        except Exception as err:  # a failing handler or peer must never take the node down
            self._stats["requests_failed"] += 1
            log.warning("request on %s from %s failed: %r", protocol, (peer or b"").hex()[:16], err)
            await _reset_quietly(stream)

    async def request(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """Send one request to ``peer`` on ``protocol`` and return its response.

        Raises:
            ValueError: ``data`` exceeds ``MAX_FRAME`` or ``peer`` is ourselves.
            PeerUnavailable: dial, negotiation or the stream failed, or the remote handler crashed.
            RemoteRejected: the remote handler refused with ``RejectRequest``.
            trio.TooSlowError: no response within ``timeout`` seconds.
            trio.ClosedResourceError: this transport was closed.
        """
        self._check_open()
        if peer == self._key:
            raise ValueError("cannot send a request to ourselves")
        if len(data) > MAX_FRAME:
            raise ValueError(f"request of {len(data)} bytes > MAX_FRAME {MAX_FRAME}")
        pid = peer_id_for(peer)
        if pid in self._blocked:
            raise PeerUnavailable(f"peer {pid} is blocked (partition)")
        self._stats["requests_sent"] += 1
        self._stats["request_bytes"] += len(data)
        if (pid not in self._on_demand and not self._host.get_network().get_connections(pid)
                and (self._dial_ids is None or pid not in self._dial_ids)):
            self._on_demand[pid] = trio.current_time()  # ours to close once idle
        self._in_flight[pid] = self._in_flight.get(pid, 0) + 1
        try:
            return await self._request(pid, protocol, data, timeout)
        finally:
            left = self._in_flight.pop(pid) - 1
            if left:
                self._in_flight[pid] = left
            if pid in self._on_demand:
                self._on_demand[pid] = trio.current_time()

    async def _request(self, pid: ID, protocol: str, data: bytes, timeout: float) -> bytes:
        try:
            with trio.fail_after(timeout):
                while True:
                    stream, stale = self._pool.take(pid, protocol)
                    for old in stale:
                        await _close_quietly(old)
                    kept = stream is not None
                    if stream is None:
                        stream = await self._open_stream(pid, protocol)
                    try:
                        response = await client_exchange(stream, bytes(data), max_frame=MAX_FRAME)
                    except RemoteRejected:
                        await self._keep(pid, protocol, stream)
                        raise
                    except StreamEnded:
                        await _reset_quietly(stream)
                        if kept:
                            continue  # the responder closed a kept stream unread: send it on a new one
                        raise
                    except BaseException:
                        await _reset_quietly(stream)
                        raise
                    await self._keep(pid, protocol, stream)
                    return response
        except RemoteRejected:
            raise
        except _PEER_ERRORS as err:
            self._stats["requests_failed"] += 1
            raise PeerUnavailable(f"{type(err).__name__}: {err}") from err
        except BaseException:
            self._stats["requests_failed"] += 1
            raise

    async def _keep(self, pid: ID, protocol: str, stream: Any) -> None:
        """Keep a stream whose exchange ended cleanly for the next request (closing the oldest kept beyond the
        pool's bound, or this one when the transport is closing or the peer is blocked)."""
        if self._closed or pid in self._blocked:
            await _close_quietly(stream)
            return
        extra = self._pool.give_back(pid, protocol, stream)
        if extra is not None:
            await _close_quietly(extra)

    async def _open_stream(self, pid: ID, protocol: str) -> Any:
        network: Any = self._host.get_network()  # the Swarm; unblock_peer is not on the interface
        if not network.get_connections(pid):
            network.unblock_peer(pid)  # an on-demand dial must not hit the 60 s negative cache
        with trio.move_on_after(NEW_STREAM_TIMEOUT):
            return await self._host.new_stream(pid, [TProtocol(protocol)])
        raise PeerUnavailable(f"no stream to {pid} within {NEW_STREAM_TIMEOUT} s")

    # --- background services ----------------------------------------------------------------------
    async def _supervise(self) -> None:
        """Keep every address-book peer connected (§2.3)."""
        backoff: dict[ID, float] = {}
        due: dict[ID, float] = {}
        network = self._host.get_network()
        while True:
            now = trio.current_time()
            unwanted = [p for p in self._host.get_connected_peers() if p in self._blocked]
            for stale in [*self._pool.expire(), *(st for pid in self._blocked for st in self._pool.drop_peer(pid))]:
                self._nursery.start_soon(_close_quietly, stale)
            kept = self._kept_ids()
            todo = [
                pid for pid in self._book
                if pid in kept and pid not in self._blocked and not network.get_connections(pid)
                and due.get(pid, 0.0) <= now
            ]
            if todo:
                async with trio.open_nursery() as nursery:
                    for pid in todo:
                        nursery.start_soon(self._dial, pid, backoff, due)
            for pid in [p for p in self._on_demand if p in kept]:
                del self._on_demand[pid]  # now kept by the supervisor
            for pid in idle_on_demand(self._on_demand, self._in_flight, now):
                del self._on_demand[pid]
                if network.get_connections(pid):
                    unwanted.append(pid)
            if unwanted:  # side by side, each bounded: a close that hangs must not stop the supervisor (ADR 0207)
                async with trio.open_nursery() as nursery:
                    for pid in unwanted:
                        nursery.start_soon(self._disconnect, pid)
            self._book_changed = trio.Event()
            with trio.move_on_after(SUPERVISOR_PERIOD):
                await self._book_changed.wait()

    async def _dial(self, pid: ID, backoff: dict[ID, float], due: dict[ID, float]) -> None:
        swarm: Any = self._host.get_network()
        swarm.unblock_peer(pid)  # bypass the 60 s negative dial cache (§2.3)
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                await self._host.connect(PeerInfo(pid, self._book[pid]))
            backoff[pid] = BACKOFF_MIN
        except (trio.TooSlowError, *_PEER_ERRORS) as err:
            self._stats["dials_failed"] += 1
            backoff[pid] = min(backoff.get(pid, BACKOFF_MIN / 2) * 2, BACKOFF_MAX)
            due[pid] = trio.current_time() + backoff[pid]
            log.debug("dial %s failed: %r", pid, err)

    async def _watchdog(self) -> None:
        """Kick connections that pubsub silently failed to register (§6.9)."""
        stuck_since: dict[ID, float] = {}
        stuck_kicks: dict[ID, int] = {}  # kicks for no pubsub stream since the peer last registered
        stale_since: dict[ID, float] = {}
        meshless_since: dict[str, float] = {}
        while True:
            await trio.sleep(WATCHDOG_PERIOD)
            now = trio.current_time()
            connected = set(self._host.get_connected_peers())
            grace = WATCHDOG_GRACE + WATCHDOG_GRACE_PER_PEER * len(connected)
            hub_grace = max(grace, WATCHDOG_GRACE + WATCHDOG_GRACE_PER_PEER * len(self._book_keys))
            hub_ids = self._hub_ids()
            kick: set[ID] = set()
            reasons: dict[ID, str] = {}
            stuck = []
            for pid in connected:
                if pid in self._ps.peers:
                    stuck_since.pop(pid, None)
                    stuck_kicks.pop(pid, None)
                elif now - stuck_since.setdefault(pid, now) > stuck_grace(hub_grace if pid in hub_ids else grace,
                                                                          stuck_kicks.get(pid, 0)):
                    stuck.append(pid)
            kick.update(sorted(stuck, key=lambda p: stuck_since[p])[:WATCHDOG_MAX_KICKS])
            reasons.update(dict.fromkeys(kick, "no pubsub stream"))
            for pid in kick:
                stuck_kicks[pid] = stuck_kicks.get(pid, 0) + 1
            for pid in set(stuck_since) - connected:
                del stuck_since[pid]
            if len(stuck_kicks) > MAX_TRACKED_KICKS:
                stuck_kicks.clear()
            for pid in connected & set(self._ps.peers):
                # A peer that restarted before we noticed its death reconnects while pubsub still holds its old
                # stream (``_handle_new_peer`` skips a known peer): we never send it our subscriptions, it
                # never learns where to publish, and neither side hears the other. Kick the connection so the
                # supervisor's redial registers the peer afresh.
                conn = getattr(self._ps.peers[pid], "muxed_conn", None)
                if conn is not None and getattr(conn, "is_closed", False):
                    if now - stale_since.setdefault(pid, now) > STALE_GRACE:
                        kick.add(pid)
                        reasons[pid] = "stale pubsub stream"
                else:
                    stale_since.pop(pid, None)
            for topic in self._subs:
                subscribers = self._ps.peer_topics.get(topic, set()) & connected
                if subscribers and not self._gs.mesh.get(topic):
                    if now - meshless_since.setdefault(topic, now) > grace:
                        chosen = meshless_kicks(subscribers, self._dial_ids or set())
                        kick.update(chosen)
                        reasons.update(dict.fromkeys(chosen, f"empty mesh on {topic}"))
                        del meshless_since[topic]
                else:
                    meshless_since.pop(topic, None)
            for pid in kick:
                self._stats["watchdog_kicks"] += 1
                stuck_since.pop(pid, None)
                stale_since.pop(pid, None)
                log.info("watchdog: disconnecting %s to re-run pubsub registration (%s)", pid, reasons.get(pid, "?"))
                await self._disconnect(pid)

    async def _disconnect(self, pid: ID) -> None:
        """Close our connections to ``pid``, bounded whatever the peer does (:func:`.p2p_disconnect.disconnect`)."""
        try:
            if not await disconnect(self._host, pid):
                self._stats["disconnects_aborted"] += 1
        except _PEER_ERRORS as err:
            log.debug("disconnect of %s failed: %r", pid, err)


async def _quietly(action: Callable[[], Awaitable[None]]) -> None:
    # the stream is being abandoned; its failure to close cleanly changes nothing
    with trio.CancelScope(shield=True), trio.move_on_after(1.0), contextlib.suppress(*_PEER_ERRORS):
        await action()


async def _reset_quietly(stream: Any) -> None:
    await _quietly(stream.reset)


async def _close_quietly(stream: Any) -> None:
    await _quietly(stream.close)


@asynccontextmanager
async def open_libp2p_transport(
    key: KeyPair,
    *,
    listen: str = "/ip4/127.0.0.1/tcp/0",
    peers: Sequence[tuple[bytes, str]] = (),
    topics: Sequence[str] = (),
    quiet: bool = True,
    gossip: GossipSettings | None = None,
) -> AsyncIterator[Libp2pTransport]:
    """Start a libp2p host with gossipsub for ``key`` and yield it as a :class:`Libp2pTransport`.

    Args:
        key: the node's Ed25519 key; it is also the libp2p identity.
        listen: listen multiaddr; port 0 picks a free port (read it back from ``listen_addrs``).
        peers: bootstrap address book, ``(public key, multiaddr)`` pairs; kept connected by the supervisor.
        topics: topics subscribed before the transport is yielded (so the mesh can form at once).
        quiet: raise the ``libp2p`` logger to CRITICAL (§6.10).
        gossip: gossipsub protocol version and mesh degrees (default: the measured choice, docs/adr/0124).

    Raises:
        ValueError: a malformed multiaddr, or a peer entry whose multiaddr names another peer.
    """
    apply_process_patches()
    if quiet:
        quiet_libp2p_logging()
    listen_addr = multiaddr.Multiaddr(listen)
    host = new_host(key_pair=create_new_key_pair(key.seed))
    disable_auto_connect(host)
    gossipsub = make_gossipsub(gossip)
    publish_past_thin_mesh(gossipsub)
    pubsub = Pubsub(host, gossipsub, strict_signing=True)
    _guard_rpc_decoding(pubsub)
    # py-libp2p numbers a node's messages from int(time.time()) at start-up, one per message, and peers drop a
    # (peer, seqno) they saw in the last 120 s. A node that published more than one message a second runs its
    # counter ahead of the clock, so after a quick restart its new messages reuse seen numbers and vanish for up
    # to minutes. Start from the time in nanoseconds instead: always past any number used before a restart.
    pubsub.counter = time.time_ns()
    # Pubsub services outermost: no inbound pubsub stream can arrive before pubsub runs (§2.2).
    async with (
        background_trio_service(pubsub),
        background_trio_service(gossipsub),
        host.run(listen_addrs=[listen_addr]),
        trio.open_nursery() as nursery,
    ):
        transport = Libp2pTransport(key, host, pubsub, gossipsub, nursery)
        transport.set_handler(PROTO_PUSH, transport._serve_push)
        try:
            for peer_key, maddr in peers:
                transport.add_peer(peer_key, maddr)
            for topic in topics:
                await transport._subscribe_now(topic)
            nursery.start_soon(transport._supervise)
            nursery.start_soon(transport._watchdog)
            yield transport
        finally:
            transport._closed = True
            with trio.CancelScope(shield=True), trio.move_on_after(5.0):
                await host.close()  # connections first: avoids the shutdown ExceptionGroup (§2.2)
            for send, _ in transport._subs.values():
                send.close()
            nursery.cancel_scope.cancel()
