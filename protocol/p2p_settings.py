"""py-libp2p 0.8.1 settings measured in libp2p.md §1 (see docs/adr/0003-transport.md).

The library's defaults are wrong for a small market network: a 250 ms stall on every dial, frames over a few
MB that fail, 32-slot queues that drop silently, a 120 s gossip heartbeat. Four of the fixes are process-wide
module attributes; :func:`apply_process_patches` sets them idempotently (it compares the current values, no
flag of its own) and is called when a transport opens, never at import. One of them is a ``read_exactly`` that
reads a frame in any number of pieces and stops at end of stream (:mod:`.p2p_reads`, docs/adr/0201). It also
installs two CPU savings measured on our networks (docs/adr/0145): signed peer records checked once
(:mod:`.p2p_records`) and yamux window updates at half a window (:mod:`.p2p_yamux`). And pubsub retries a peer's
registration after a failed stream negotiation (:func:`retry_pubsub_registration`, docs/adr/0198) and keeps the
topics of a peer that stays connected when a stream with it dies (:func:`keep_subscriptions_of_connected_peers`),
and writes only to a peer's registered stream (:func:`write_only_to_registered_streams`, both docs/adr/0202).
"""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass
from typing import Any

import libp2p.network.swarm as _swarm
import libp2p.pubsub.pubsub as _pubsub_mod
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.network.exceptions import SwarmException
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.rpc_queue import RpcQueue

from . import p2p_reads
from .gossip_mesh import mend_mesh_upkeep
from .p2p_records import cache_peer_records
from .p2p_yamux import half_window_updates

GOSSIP_PROTOCOL = TProtocol("/meshsub/1.1.0")
"""Not 1.2.0: py-libp2p 0.8.1 sends an IDONTWANT for every message to every mesh peer; measured by
benchmarks/bench_gossip.py, docs/adr/0124."""

DEGREE, DEGREE_LOW, DEGREE_HIGH = 4, 3, 6
HEARTBEAT_S = 1
GOSSIP_TTL_S = 30


@dataclass(frozen=True)
class GossipSettings:
    """The gossipsub knobs benchmarks/bench_gossip.py compares; the defaults are the measured choice (ADR 0124)."""

    protocol: str = GOSSIP_PROTOCOL
    degree: int = DEGREE
    degree_low: int = DEGREE_LOW
    degree_high: int = DEGREE_HIGH
    heartbeat_s: int = HEARTBEAT_S

    def label(self) -> str:
        """``meshsub/1.1.0 D=4/3/6 hb=1s``."""
        return (f"{self.protocol.strip('/')} D={self.degree}/{self.degree_low}/{self.degree_high} "
                f"hb={self.heartbeat_s:g}s")


SUBSCRIPTION_CHANNEL = 1024
"""Pubsub's per-subscription channel (default 32, overflow is a silent drop)."""
RPC_QUEUE = 512
"""Per-peer outbound pubsub queue (default 32, overflow is a silent drop)."""


def apply_process_patches() -> None:
    """Set the four process-wide py-libp2p fixes of libp2p.md §1 (the ``read_exactly`` one as ADR 0201 amends it),
    the two savings of ADR 0145, the pubsub registration retry of ADR 0198, and the kept subscriptions and
    registered-stream writes of ADR 0202 (idempotent).

    Must run before hosts and pubsub objects are created: ``SUBSCRIPTION_CHANNEL_SIZE`` is read at
    ``subscribe()`` and ``RpcQueue`` when a peer joins.
    """
    _swarm._HAPPY_EYEBALLS_DELAY = 0.0
    p2p_reads.install()
    _pubsub_mod.SUBSCRIPTION_CHANNEL_SIZE = SUBSCRIPTION_CHANNEL
    cache_peer_records()
    half_window_updates()
    retry_pubsub_registration()
    keep_subscriptions_of_connected_peers()
    write_only_to_registered_streams()
    current = _pubsub_mod.RpcQueue
    if not (isinstance(current, functools.partial) and current.keywords.get("max_size") == RPC_QUEUE):
        _pubsub_mod.RpcQueue = functools.partial(RpcQueue, max_size=RPC_QUEUE)  # type: ignore[misc,assignment]


def retry_pubsub_registration() -> None:
    """Make pubsub retry a peer's registration after a failed stream negotiation too (idempotent).

    py-libp2p 0.8.1 retries opening the pubsub stream to a new peer, with backoff while it stays connected, on
    ``SwarmException`` only. A ``StreamFailure`` — the negotiation timing out or reset on a CPU-saturated
    start-up — ends the attempt for good: the connection stays up, pubsub never sends to that peer, and our
    watchdog kicked it after its grace (34 s on a hub of 49 peers) to redial, a new noise handshake each
    (libp2p.md §6.9; 238 kicks in the first two minutes of a 50-process start-up, docs/adr/0198).
    """
    original = _pubsub_mod.Pubsub._handle_new_peer
    if getattr(original, "retries_stream_failure", False):
        return

    @functools.wraps(original)
    async def handle_new_peer(self: Any, peer_id: Any) -> None:
        try:
            await original(self, peer_id)
        except StreamFailure as err:
            raise SwarmException(f"pubsub stream negotiation with {peer_id} failed: {err}") from err

    handle_new_peer.retries_stream_failure = True  # type: ignore[attr-defined]
    _pubsub_mod.Pubsub._handle_new_peer = handle_new_peer  # type: ignore[method-assign]


def keep_subscriptions_of_connected_peers() -> None:
    """Make pubsub keep what a peer subscribed to when one of the two streams with it dies while the peer stays
    connected (idempotent).

    py-libp2p 0.8.1's ``Pubsub._handle_dead_peer`` runs when our outbound pubsub stream to a peer fails a write,
    or when its stream to us fails a read, and first forgets every topic the peer announced. If the peer is still
    connected it then re-opens *our* stream only. The peer's subscriptions came on *its* stream, which may be
    alive, and the peer has no reason to announce them again. So the peer stays connected and registered, but
    it is no longer a subscriber of anything here, so never again a mesh candidate. After a 50-process start-up,
    91 of 464 registered links had lost their subscriptions this way within a minute, and a third of the nodes
    had fewer than ``degree_low`` mesh peers on the chain topic (docs/adr/0202).

    Kept subscriptions are harmless when the peer's own stream is the one that died: its next write fails, it
    re-opens its stream and announces the same topics again (an idempotent add). They are forgotten as before
    once the peer is no longer connected.
    """
    original = _pubsub_mod.Pubsub._handle_dead_peer
    if getattr(original, "keeps_connected_subscriptions", False):
        return

    @functools.wraps(original)
    def handle_dead_peer(self: Any, peer_id: Any) -> None:
        if not self._peer_is_connected(peer_id):
            original(self, peer_id)
            return
        topics = [topic for topic, peers in self.peer_topics.items() if peer_id in peers]
        count = self._peer_subscription_count.get(peer_id)
        original(self, peer_id)
        for topic in topics:
            self.peer_topics.setdefault(topic, set()).add(peer_id)
        if count is not None:
            self._peer_subscription_count[peer_id] = count

    handle_dead_peer.keeps_connected_subscriptions = True  # type: ignore[attr-defined]
    _pubsub_mod.Pubsub._handle_dead_peer = handle_dead_peer  # type: ignore[method-assign]


def write_only_to_registered_streams() -> None:
    """Make pubsub's ``write_msg`` refuse a stream that is no longer the peer's registered one (idempotent).

    py-libp2p 0.8.1's gossipsub ``flush_pending_messages`` and ``send_recent_messages`` look the peer's stream
    up once and then write every queued message to it. When that stream has died (at start-up, often because
    it was opened on one of two duplicate connections, and the swarm closed that one), each failed write runs
    ``_handle_dead_peer``. The first call drops the registration, and pubsub opens a new stream on the
    surviving connection. Every later failed write on the *old* stream then tears down the *new* registration:
    mesh links go, the peer's queue closes, and a new stream opens again. One 50-process start-up logged 2230
    such calls from ``flush_pending_messages`` in 40 s (docs/adr/0202).

    A write to a stream that pubsub no longer holds for its peer now returns ``False`` (what a failed write
    returns) without touching the peer's current registration. Every write to a registered stream is
    unchanged, its failure handling included.
    """
    original = _pubsub_mod.Pubsub.write_msg
    if getattr(original, "registered_streams_only", False):
        return

    @functools.wraps(original)
    async def write_msg(self: Any, stream: Any, rpc_msg: Any) -> bool:
        peer_id = getattr(getattr(stream, "muxed_conn", None), "peer_id", None)
        if peer_id is not None and self.peers.get(peer_id) is not stream:
            return False
        return bool(await original(self, stream, rpc_msg))

    write_msg.registered_streams_only = True  # type: ignore[attr-defined]
    _pubsub_mod.Pubsub.write_msg = write_msg  # type: ignore[method-assign]


def quiet_libp2p_logging() -> None:
    """Raise the ``libp2p`` logger to CRITICAL (failed dials otherwise print 4 ERROR lines each, §6.10).

    ``import libp2p`` installs its own handler with ``propagate=False``, so this is the only effective knob;
    set ``LIBP2P_DEBUG`` in the environment to debug the library instead.
    """
    logging.getLogger("libp2p").setLevel(logging.CRITICAL)


def make_gossipsub(settings: GossipSettings | None = None) -> GossipSub:
    """A GossipSub router with the measured settings (meshsub 1.1.0, degree 4/3/6, heartbeat 1 s, no adaptive/spam
    gates) or the given ones.

    Adaptive gossip stretches the heartbeat to 60 s after ~30 s; spam protection drops more than 10 msg/s per
    forwarder, counting our own publishes (libp2p.md §1). Rate limiting belongs in our own validation.
    """
    s = settings or GossipSettings()
    router = GossipSub(
        protocols=[TProtocol(s.protocol)],
        degree=s.degree,
        degree_low=s.degree_low,
        degree_high=s.degree_high,
        heartbeat_interval=s.heartbeat_s,
        time_to_live=GOSSIP_TTL_S,
        adaptive_gossip_enabled=False,
        spam_protection_enabled=False,
    )
    _shuffle_ties(router)
    mend_mesh_upkeep(router)
    return router



def _shuffle_ties(router: GossipSub) -> None:
    """Shuffle the peers gossipsub ranks by score before it picks whom to prune or graft.

    py-libp2p 0.8.1 sorts them by score, stably: ties (every peer on a quiet loopback network) keep the order of
    a ``set`` of peer IDs, which follows the interpreter's hash seed. Processes forked from one parent share that
    seed, so every node prunes the *same* peer from its mesh, and that peer stays outside every mesh (seen with
    the fork server, docs/adr/0120). ``random`` is reseeded in every forked child, so the shuffle differs per node.
    """
    prune = router._score_based_pruning_selection
    graft = router._select_grafting_candidates

    def pruning(topic: str, mesh_peers: list[Any], num_to_prune: int) -> list[Any]:
        peers = list(mesh_peers)
        random.shuffle(peers)
        return prune(topic, peers, num_to_prune)

    def grafting(candidates: list[Any], topic: str, current_mesh_size: int) -> list[Any]:
        shuffled = list(candidates)
        random.shuffle(shuffled)
        return graft(shuffled, topic, current_mesh_size)

    router._score_based_pruning_selection = pruning  # type: ignore[method-assign]
    router._select_grafting_candidates = grafting  # type: ignore[method-assign]
