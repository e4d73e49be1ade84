"""Which address-book peers a libp2p node keeps connected (protocol/p2p.py dial_set, docs/adr/0123)."""

from __future__ import annotations

import hashlib

from bazaar.protocol.p2p import DIAL_ALL_UP_TO, DIAL_HUBS, dial_set


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
