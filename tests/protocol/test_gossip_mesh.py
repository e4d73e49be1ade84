"""Mesh upkeep as go-libp2p does it (docs/adr/0203): each test drives one heartbeat of a router whose pubsub is a
stand-in holding the topic's subscribers, and contrasts it with py-libp2p 0.8.1's own router where they differ."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub

from bazaar.protocol.gossip_mesh import GRAFT_SLACK_HEARTBEATS
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.mesh_events import count_mesh_events
from bazaar.protocol.p2p import peer_id_for
from bazaar.protocol.p2p_settings import GossipSettings, make_gossipsub

T = "bazaar/test/mesh"
PEERS = [peer_id_for(KeyPair.from_label(f"mesh-{i}").public) for i in range(12)]


def _router(mended: bool, mesh: int, subscribers: int = len(PEERS)) -> GossipSub:
    """A router (ours, or py-libp2p's with the same degrees) whose mesh on ``T`` holds the first ``mesh`` of
    ``subscribers`` connected gossipsub peers."""
    s = GossipSettings()
    router = make_gossipsub(s) if mended else GossipSub(
        protocols=[PROTOCOL_ID_V11], degree=s.degree, degree_low=s.degree_low, degree_high=s.degree_high,
        heartbeat_interval=s.heartbeat_s, adaptive_gossip_enabled=False, spam_protection_enabled=False)
    peers = PEERS[:subscribers]
    router.pubsub = SimpleNamespace(peer_topics={T: set(peers)}, peer_queues={})  # type: ignore[assignment]
    router.peer_protocol = dict.fromkeys(peers, PROTOCOL_ID_V11)
    router.mesh[T] = set(peers[:mesh])
    return router


def _grafted(grafts: Any) -> set[Any]:
    return {p for p, topics in grafts.items() if T in topics}


def test_a_mesh_at_its_degree_grafts_nobody_more() -> None:
    """py-libp2p grafts 2 more subscribers every heartbeat (all scores are 0 with scoring unconfigured, so every
    one passes the median test); a hub cycled through all 49 of its subscribers, pruning as it went."""
    s = GossipSettings()
    assert len(_grafted(_router(False, s.degree).mesh_heartbeat()[0])) == 2  # the library's churn
    ours = _router(True, s.degree)
    grafts, prunes = ours.mesh_heartbeat()
    assert not grafts and not prunes and len(ours.mesh[T]) == s.degree


def test_the_heartbeat_backs_off_from_the_peers_it_prunes() -> None:
    s = GossipSettings()
    theirs = _router(False, s.degree_high + 2)
    _, pruned = theirs.mesh_heartbeat()
    assert len(pruned) == s.degree_high + 2 - s.degree and not theirs.back_off.get(T)  # the library forgets
    ours = _router(True, s.degree_high + 2)
    _, pruned = ours.mesh_heartbeat()
    assert len(ours.mesh[T]) == s.degree
    assert set(pruned) == set(ours.back_off[T])
    assert all(ours._check_back_off(p, T) for p in pruned)
    grafts, _ = ours.mesh_heartbeat()  # short again: the pruned are no candidates
    assert not grafts


def test_a_backoff_that_just_ended_keeps_our_grafts_away_for_the_slack_but_not_the_peers() -> None:
    """Both ends' entries end in the same whole second; we graft only after the slack, while a peer's GRAFT is
    judged by the expiry alone, so the end of a backoff cannot start a GRAFT-PRUNE loop."""
    s = GossipSettings()
    ours = _router(True, 1, subscribers=4)
    ended, clear = PEERS[1], PEERS[2]
    now = int(time.time())
    ours.back_off[T] = {ended: now, PEERS[3]: now + 30}
    assert GRAFT_SLACK_HEARTBEATS * s.heartbeat_s >= 1
    assert not ours._check_back_off(ended, T)  # how a peer's GRAFT is judged: its backoff is over
    ours.back_off[T][ended] = now
    grafts, _ = ours.mesh_heartbeat()
    assert _grafted(grafts) == {clear}
    theirs = _router(False, 1, subscribers=4)
    theirs.back_off[T] = {ended: now, PEERS[3]: now + 30}
    assert _grafted(theirs.mesh_heartbeat()[0]) == {ended, clear}  # the library grafts at once


async def test_a_subscription_announced_within_the_slack_is_not_grafted() -> None:
    ours = _router(True, 0, subscribers=2)
    ours.back_off[T] = {PEERS[1]: int(time.time())}
    with trio.fail_after(5):
        await ours.on_peer_subscribed(PEERS[1], T)
    assert PEERS[1] not in ours.mesh[T]


@pytest.mark.parametrize("mended", [True, False])
def test_the_counters_see_the_heartbeat_of_either_router(mended: bool) -> None:
    s = GossipSettings()
    router = _router(mended, s.degree_high + 1)
    counts = count_mesh_events(router)
    router.mesh_heartbeat()
    assert counts["mesh_prune_over_high"] == s.degree_high + 1 - s.degree
