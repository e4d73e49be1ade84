"""Count why gossip mesh links form and go (``GET /status`` ``transport``, keys ``mesh_*``).

py-libp2p's gossipsub logs its GRAFT and PRUNE decisions only at DEBUG, and its logger cannot reach a forked
node (libp2p.md §6.10). A 50-process network whose meshes thin out over a minute (docs/adr/0203) needs the
reasons counted in the node itself, cheaply, for every node at once. :func:`count_mesh_events` wraps five of a
router's methods on the instance and counts, without changing what they do:

- ``mesh_graft_heartbeat`` / ``mesh_prune_over_high``: links the heartbeat adds (mesh under ``degree_low``) or
  cuts (mesh over ``degree_high``);
- ``mesh_graft_on_subscribe``: links added the moment a peer announced a topic;
- ``mesh_graft_accepted`` / ``mesh_graft_refused_backoff`` / ``mesh_graft_refused_flood`` /
  ``mesh_graft_refused_unjoined``: a peer's GRAFT, taken or answered with a PRUNE, and why;
- ``mesh_pruned_by_peer``: a peer's PRUNE that cut a link we held;
- ``mesh_lost_disconnect``: links dropped because the peer's connection or pubsub stream went.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from libp2p.pubsub.gossipsub import GossipSub

MESH_EVENTS = ("mesh_graft_heartbeat", "mesh_prune_over_high", "mesh_graft_on_subscribe", "mesh_graft_accepted",
               "mesh_graft_refused_backoff", "mesh_graft_refused_flood", "mesh_graft_refused_unjoined",
               "mesh_pruned_by_peer", "mesh_lost_disconnect")
"""The counters :func:`count_mesh_events` keeps, every one present from the start."""


def count_mesh_events(router: GossipSub) -> Counter[str]:
    """Wrap ``router``'s mesh decisions to count them; returns the live counter (keys: :data:`MESH_EVENTS`)."""
    counts: Counter[str] = Counter(dict.fromkeys(MESH_EVENTS, 0))
    heartbeat = router.mesh_heartbeat
    handle_graft = router.handle_graft
    handle_prune = router.handle_prune
    remove_peer = router.remove_peer
    on_subscribed = router.on_peer_subscribed

    def mesh_heartbeat() -> Any:
        grafts, prunes = heartbeat()
        counts["mesh_graft_heartbeat"] += sum(len(t) for t in grafts.values())
        counts["mesh_prune_over_high"] += sum(len(t) for t in prunes.values())
        return grafts, prunes

    async def graft(msg: Any, sender: Any) -> None:
        counts[_graft_outcome(router, msg.topicID, sender)] += 1
        await handle_graft(msg, sender)

    async def prune(msg: Any, sender: Any) -> None:
        counts["mesh_pruned_by_peer"] += sender in router.mesh.get(msg.topicID, ())
        await handle_prune(msg, sender)

    def removed(peer_id: Any) -> None:
        counts["mesh_lost_disconnect"] += sum(peer_id in peers for peers in router.mesh.values())
        remove_peer(peer_id)

    async def subscribed(peer_id: Any, topic: str) -> None:
        before = peer_id in router.mesh.get(topic, ())
        await on_subscribed(peer_id, topic)
        counts["mesh_graft_on_subscribe"] += not before and peer_id in router.mesh.get(topic, ())

    router.mesh_heartbeat = mesh_heartbeat  # type: ignore[method-assign]
    router.handle_graft = graft  # type: ignore[method-assign,assignment]
    router.handle_prune = prune  # type: ignore[method-assign,assignment]
    router.remove_peer = removed  # type: ignore[method-assign]
    router.on_peer_subscribed = subscribed  # type: ignore[method-assign]
    return counts


def _graft_outcome(router: GossipSub, topic: str, sender: Any) -> str:
    """What ``handle_graft`` will do with ``sender``'s GRAFT, in the order py-libp2p 0.8.1 checks (it only reads
    state here; the backoff check's clean-up of an expired entry is what ``handle_graft`` does next anyway)."""
    if not router._check_graft_flood_protection(sender, topic):
        return "mesh_graft_refused_flood"
    if topic not in router.mesh:
        return "mesh_graft_refused_unjoined"
    if router._check_back_off(sender, topic):
        return "mesh_graft_refused_backoff"
    return "mesh_graft_accepted"
