"""Which address-book peers a node keeps connected (docs/adr/0123), without py-libp2p: the launcher reads the
topology too (which nodes are hubs, docs/adr/0198) and must not import the transport to do so."""

from __future__ import annotations

from collections.abc import Sequence

DIAL_ALL_UP_TO = 16
"""Address books up to this size are kept fully connected; larger ones use :func:`dial_set` (docs/adr/0123)."""
DIAL_HUBS = 3
"""Sparse topology: the first address-book entries every node keeps connected (the scenario's leaders)."""
DIAL_RING = 2
"""Sparse topology: ring neighbours kept connected on each side, in the order of the peers' keys."""


def sparse(nodes: int) -> bool:
    """Whether a network of ``nodes`` nodes uses the sparse topology of :func:`dial_set` (hubs and a ring):
    each node's address book holds more than :data:`DIAL_ALL_UP_TO` peers."""
    return nodes - 1 > DIAL_ALL_UP_TO


def dial_set(own: bytes, book: Sequence[bytes]) -> list[bytes]:
    """The peers a node keeps connected when its address book is large (docs/adr/0123, libp2p.md §3).

    A full mesh of 50 processes is 1225 noise handshakes and as many yamux sessions, heartbeats and pubsub
    registrations: on 2 cores dials time out and the mesh watchdog kicks half-registered connections. Up to
    :data:`DIAL_ALL_UP_TO` peers every one is kept connected; beyond, only the first :data:`DIAL_HUBS` entries
    of ``book`` (the launcher lists peers in scenario order, leaders first) and :data:`DIAL_RING` neighbours on
    each side on the ring of all keys sorted (own included). Every node dials the hubs, so the graph is
    connected with diameter ≤ 2; each non-hub holds ≈ 7 connections. Other peers stay in the peerstore and
    are dialled on demand by a direct request.
    """
    peers = [k for k in dict.fromkeys(book) if k != own]
    if not sparse(len(peers) + 1):
        return peers
    chosen = dict.fromkeys(hubs(peers))
    ring = sorted({*peers, own})
    i = ring.index(own)
    for step in range(1, DIAL_RING + 1):
        chosen.setdefault(ring[(i + step) % len(ring)])
        chosen.setdefault(ring[(i - step) % len(ring)])
    return [k for k in chosen if k != own]


def hubs(book: Sequence[bytes]) -> list[bytes]:
    """The hubs of a sparse topology as a leaf sees them: the first :data:`DIAL_HUBS` entries of its address book
    ``book`` (the leaders, which every node keeps connected, :func:`dial_set`); none when the book is small enough
    for a full mesh. A hub holds a connection to every node, so it registers new peers slowest (docs/adr/0206)."""
    keys = list(dict.fromkeys(book))
    return keys[:DIAL_HUBS] if sparse(len(keys) + 1) else []
