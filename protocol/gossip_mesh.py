"""Keep gossip meshes as go-libp2p's gossipsub keeps them: no churn on a quiet network (docs/adr/0203).

py-libp2p 0.8.1 departs from go-libp2p in three places of mesh upkeep. Together they kept every mesh of a
50-process network churning: 40 s after start-up of cloudchain-30d the three hubs had pruned 119 mesh links
each, were backed off from 42–49 of their 49 subscribers with meshes of 0–5, and 1006 GRAFTs had been refused
network-wide (``mesh_*`` counters of ``GET /status``, :mod:`.mesh_events`).

1. **Opportunistic grafting every heartbeat.** go-libp2p grafts beyond the mesh only every 60 heartbeats, and
   only when the median score of the mesh is below a threshold; with peer scoring off, never. py-libp2p does
   it every heartbeat while the mesh holds ``degree_low`` peers, taking up to 2 candidates whose score is at
   least the mesh's median times 0.5. With scoring unconfigured every score is 0, so every subscriber
   qualifies: each heartbeat adds 2 links, every third the mesh passes ``degree_high`` and is pruned back to
   ``degree``, and a hub connected to 49 peers cycles through all of them, a minute of backoff each.
2. **No backoff at the pruning end.** The heartbeat prunes a mesh over ``degree_high`` without backing off
   from the peers it cuts; only the pruned peer backs off. A few heartbeats later the pruner GRAFTs those same
   peers, which refuse (``mesh_graft_refused_flood`` within 10 s of the PRUNE, ``..._backoff`` after), answer
   with a PRUNE and renew their own backoff. go-libp2p's ``prunePeer`` backs off too.
3. **No slack at a backoff's end.** Backoffs are whole seconds and end on both sides in the same second; both
   sides read them alike. Whichever heartbeat comes first after the end GRAFTs while the other side's entry, a
   second younger, still runs: refused, renewed, and the loop starts again with the roles swapped. go-libp2p
   waits two heartbeats past the end before it grafts a peer ("slack time ... to avoid graft/prune
   flapping"), while it judges a peer's GRAFT by the expiry alone.

:func:`mend_mesh_upkeep` does what go-libp2p does, on one router instance: no opportunistic grafting, the
heartbeat backs off from the peers it prunes, and our own GRAFTs (heartbeat and on subscription) wait
:data:`GRAFT_SLACK_HEARTBEATS` heartbeats past a backoff's end. A peer's GRAFT is judged as before.
"""

from __future__ import annotations

import math
import time
from typing import Any

from libp2p.pubsub.gossipsub import GossipSub

GRAFT_SLACK_HEARTBEATS = 2
"""Heartbeats we wait past the end of a prune backoff before we GRAFT that peer (go-libp2p's slack)."""


def mend_mesh_upkeep(router: GossipSub) -> None:
    """Make ``router`` graft no peer beyond its mesh's needs, back off from the peers its heartbeat prunes, and
    GRAFT only past a backoff's slack."""
    slack = math.ceil(GRAFT_SLACK_HEARTBEATS * router.heartbeat_interval)
    heartbeat = router.mesh_heartbeat
    check_back_off = router._check_back_off
    on_subscribed = router.on_peer_subscribed
    grafting = False

    def backed_off(peer: Any, topic: str) -> bool:
        if not grafting:
            return check_back_off(peer, topic)
        until = router.back_off.get(topic, {}).get(peer)
        return until is not None and until + slack > int(time.time())

    def mesh_heartbeat() -> Any:
        nonlocal grafting
        grafting = True  # the heartbeat picks its GRAFT candidates through _check_back_off (no await inside)
        try:
            grafts, prunes = heartbeat()
        finally:
            grafting = False
        for peer, topics in prunes.items():
            for topic in topics:
                router._add_back_off(peer, topic, False)
        return grafts, prunes

    async def subscribed(peer_id: Any, topic: str) -> None:
        nonlocal grafting
        grafting = True
        try:
            waiting = backed_off(peer_id, topic)
        finally:
            grafting = False
        if not waiting:
            await on_subscribed(peer_id, topic)

    router._perform_opportunistic_grafting = _no_opportunistic_grafting  # type: ignore[method-assign]
    router._check_back_off = backed_off  # type: ignore[method-assign]
    router.mesh_heartbeat = mesh_heartbeat  # type: ignore[method-assign]
    router.on_peer_subscribed = subscribed  # type: ignore[method-assign]


def _no_opportunistic_grafting(topic: str, peers_to_graft: Any) -> int:
    """Graft nobody beyond the mesh's needs (go-libp2p with peer scoring off); returns how many were grafted."""
    return 0
