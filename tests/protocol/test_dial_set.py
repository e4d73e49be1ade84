"""Which address-book peers a libp2p node keeps connected (protocol/dial_set.py, docs/adr/0123)."""

from __future__ import annotations

import hashlib

from bazaar.protocol.dial_set import DIAL_ALL_UP_TO, DIAL_HUBS, dial_set, hubs


def _keys(n: int) -> list[bytes]:
    return [hashlib.sha256(b"k%d" % i).digest() for i in range(n)]


def test_a_small_book_is_dialled_in_full() -> None:
    keys = _keys(DIAL_ALL_UP_TO + 1)
    for own in keys:
        assert sorted(dial_set(own, keys)) == sorted(k for k in keys if k != own)


def test_a_large_book_gives_a_connected_graph_through_the_hubs_with_few_links_per_node() -> None:
    keys = _keys(50)
    links: dict[bytes, set[bytes]] = {k: set() for k in keys}
    for own in keys:
        book = [k for k in keys if k != own]  # scenario order, leaders first, as the launcher writes it
        chosen = dial_set(own, book)
        assert own not in chosen and len(chosen) == len(set(chosen))
        assert set(book[:DIAL_HUBS]) <= set(chosen)
        assert len(chosen) <= DIAL_HUBS + 4
        for k in chosen:
            links[own].add(k)
            links[k].add(own)
    assert links[keys[0]] == set(keys[1:])  # the first node (the leader) is a hub of everyone
    seen, todo = {keys[-1]}, [keys[-1]]
    while todo:
        for k in links[todo.pop()] - seen:
            seen.add(k)
            todo.append(k)
    assert seen == set(keys)
    assert max(len(v) for k, v in links.items() if k not in keys[:DIAL_HUBS + 1]) <= 2 * (DIAL_HUBS + 4)


def test_the_watchdog_kicks_at_most_a_few_subscribers_of_an_empty_mesh_dialled_peers_first() -> None:
    from libp2p.peer.id import ID

    from bazaar.protocol.p2p import WATCHDOG_MAX_KICKS, meshless_kicks

    peers = [ID(hashlib.sha256(b"p%d" % i).digest()) for i in range(49)]
    dialled = set(peers[:3])
    for _ in range(5):
        chosen = meshless_kicks(set(peers), dialled)
        assert len(chosen) == WATCHDOG_MAX_KICKS and set(chosen) <= dialled  # never the 49 of a hub at once
    assert len(meshless_kicks(set(peers[10:]), dialled)) == WATCHDOG_MAX_KICKS


async def test_the_swarm_auto_connector_stays_off_so_the_dial_set_is_what_we_connect() -> None:
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair

    from bazaar.protocol.p2p import disable_auto_connect

    host = new_host(key_pair=create_new_key_pair(b"\x01" * 32))
    disable_auto_connect(host)
    connector = host.get_network().auto_connector  # type: ignore[attr-defined]
    await connector.start()  # what the swarm calls when the host runs
    assert not connector._started
    await connector.maybe_connect()  # a no-op: no dial of the peerstore's entries
    assert not connector._in_flight_dials


def test_a_connection_opened_for_requests_is_closed_only_once_idle_for_the_linger() -> None:
    from libp2p.peer.id import ID

    from bazaar.protocol.p2p import ON_DEMAND_LINGER, idle_on_demand

    a, b, c = (ID(hashlib.sha256(b"q%d" % i).digest()) for i in range(3))
    last = {a: 100.0, b: 100.0, c: 100.0 + ON_DEMAND_LINGER}
    now = 100.0 + ON_DEMAND_LINGER + 1
    assert idle_on_demand(last, {b: 1}, now) == [a]  # b has a request under way, c was used a moment ago
    assert idle_on_demand(last, {}, now + ON_DEMAND_LINGER) == [a, b, c]


def test_our_own_publish_reaches_subscribers_when_the_mesh_is_empty_and_relays_do_not() -> None:
    from types import SimpleNamespace

    from libp2p.peer.id import ID

    from bazaar.protocol.p2p import publish_past_thin_mesh
    from bazaar.protocol.p2p_settings import make_gossipsub

    me, other = ID(hashlib.sha256(b"me").digest()), ID(hashlib.sha256(b"other").digest())
    subscribers = {ID(hashlib.sha256(b"s%d" % i).digest()) for i in range(20)}
    router = make_gossipsub()
    router.pubsub = SimpleNamespace(my_id=me, peer_topics={"t": set(subscribers)})  # type: ignore[assignment]
    router.mesh["t"] = set()
    assert set(router._get_peers_to_send(["t"], me, me)) == set()  # py-libp2p: an empty mesh sends to nobody
    publish_past_thin_mesh(router)
    ours = set(router._get_peers_to_send(["t"], me, me))
    assert len(ours) == router.degree and ours <= subscribers
    assert set(router._get_peers_to_send(["t"], other, other)) == set()  # a relayed message: unchanged
    router.mesh["t"] = set(list(subscribers)[:router.degree_low])
    assert set(router._get_peers_to_send(["t"], me, me)) == router.mesh["t"]  # a healthy mesh: unchanged


def test_a_leaf_names_the_hubs_it_gives_a_hubs_grace() -> None:
    """docs/adr/0206: the watchdog waits as long for a hub's pubsub registration as the hub waits for its own."""
    keys = [hashlib.sha256(b"k%d" % i).digest() for i in range(50)]
    own, book = keys[20], [k for k in keys if k != keys[20]]
    assert hubs(book) == keys[:DIAL_HUBS]
    assert set(hubs(book)) <= set(dial_set(own, book))  # every node keeps its hubs connected
    assert hubs(keys[:DIAL_ALL_UP_TO]) == []  # a full mesh has no hubs
    assert hubs(book + book[:5]) == keys[:DIAL_HUBS]  # a repeated entry changes nothing
