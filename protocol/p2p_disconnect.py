"""A disconnect that cannot hang (docs/adr/0207).

py-libp2p 0.8.1's ``host.disconnect`` closes each connection of the peer in turn, and a yamux connection closes by
writing a GO_AWAY frame — under the connection's ``streams_lock`` and its write lock, with no deadline. A write
completes only when the peer reads. A peer that reads nothing makes the write, and so the disconnect, wait for good:
a peer too starved to read, or one whose own yamux read loop waits for a write of its own to us (py-libp2p's read
loop writes stream ACKs and ping answers itself, so two peers whose socket buffers towards each other are full
stop reading each other at once). Meanwhile the connection's ``streams_lock`` stays held, so its read loop stops
too, and the task that asked for the disconnect — our connection supervisor, or our watchdog — never comes back:
no peer is redialled or kicked again, and a node that loses its remaining links that way drops out of the network.

:func:`disconnect` gives the library's close :data:`DISCONNECT_TIMEOUT`. When that runs out it closes the sockets
under the connections (a task blocked writing to or reading from a closed trio socket fails at once, which
releases the connection's locks) and finishes the library's own clean-up of each connection — out of the swarm's
records, streams reset, pubsub and the other listeners told — under :data:`ABORT_TIMEOUT`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID

DISCONNECT_TIMEOUT = 2.0
"""How long the library's close of a peer's connections may take before their sockets are closed under them."""
ABORT_TIMEOUT = 2.0
"""Deadline of the clean-up of one connection whose socket we closed."""

log = logging.getLogger("bazaar.transport")


async def disconnect(host: IHost, peer: ID, *, timeout: float = DISCONNECT_TIMEOUT) -> bool:
    """Close every connection to ``peer`` within about ``timeout + ABORT_TIMEOUT`` seconds, whatever the peer does;
    whether the library's close finished on its own (False: the sockets were closed under it)."""
    network = host.get_network()
    conns = network.get_connections(peer)
    with trio.move_on_after(timeout):
        await host.disconnect(peer)
        return True
    log.info("disconnect of %s took over %.1f s: closing its sockets", peer, timeout)
    for conn in conns:
        await abort_connection(conn)
    return False


def socket_of(conn: Any) -> trio.abc.Stream | None:
    """The trio stream under a swarm connection (``SwarmConn`` → yamux → noise → raw connection → TCP stream), or
    None when the connection is not built that way."""
    node = conn
    for attr in ("muxed_conn", "secured_conn", "conn", "conn", "stream", "stream"):
        node = getattr(node, attr, None)
        if node is None:
            return None
    return node if isinstance(node, trio.abc.Stream) else None


async def abort_connection(conn: Any) -> None:
    """Close the socket under ``conn`` and run the library's clean-up of it (bounded, errors swallowed: the
    connection is being dropped either way)."""
    with trio.CancelScope(shield=True), trio.move_on_after(ABORT_TIMEOUT):
        sock = socket_of(conn)
        if sock is not None:
            with contextlib.suppress(Exception):
                await sock.aclose()
        cleanup = getattr(conn, "_cleanup", None)
        if cleanup is not None:
            with contextlib.suppress(Exception):
                await cleanup()
