"""A disconnect from a peer that reads nothing (docs/adr/0207): py-libp2p's close waits for good, ours is bounded.

Two real transports on loopback. The peer B stops reading our connection the way py-libp2p itself stops: its yamux
``streams_lock`` is held (as it is by a close of B's own that is blocked writing to us), so B's read loop waits at
the next data frame. A's gossip to B then fills the (shrunk) socket buffers and A's writer blocks inside the
connection's write lock, where the library's close must queue its GO_AWAY frame.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from bazaar.protocol.keys import KeyPair
from bazaar.protocol.p2p import open_libp2p_transport, peer_id_for
from bazaar.protocol.p2p_disconnect import ABORT_TIMEOUT, disconnect, socket_of

TOPIC = "disconnect/t"
DEADLINE = 30.0


async def _until(predicate: Any, what: str) -> None:
    """Poll ``predicate`` under the deadline (no fixed sleeps); fail naming ``what`` was awaited."""
    with trio.move_on_after(DEADLINE):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"{what}: not within {DEADLINE} s")


@asynccontextmanager
async def wedged_pair() -> AsyncIterator[tuple[Any, Any, Any]]:
    """(A, B, A's connection to B) with B reading nothing of it and A's writer blocked on it."""
    ka, kb = KeyPair.from_label("disconnect-a"), KeyPair.from_label("disconnect-b")
    async with (
        open_libp2p_transport(kb, topics=[TOPIC]) as tb,
        open_libp2p_transport(ka, peers=[(kb.public, tb.listen_addrs[0])], topics=[TOPIC]) as ta,
    ):
        await _until(lambda: kb.public in ta.mesh_peers(TOPIC) and ka.public in tb.peers(), "mesh")
        conn_a = ta._host.get_network().get_connections(peer_id_for(kb.public))[0]
        conn_b = tb._host.get_network().get_connections(peer_id_for(ka.public))[0]
        sock_a, sock_b = socket_of(conn_a), socket_of(conn_b)
        assert sock_a is not None and sock_b is not None
        sock_a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock_b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        release = trio.Event()
        async with trio.open_nursery() as nursery:
            async def hold_b() -> None:
                async with conn_b.muxed_conn.streams_lock:
                    await release.wait()

            nursery.start_soon(hold_b)
            await _until(conn_b.muxed_conn.streams_lock.locked, "B wedged")
            write_lock = conn_a.muxed_conn._write_lock
            with trio.fail_after(DEADLINE):
                while True:  # gossip until A's writer sits blocked in the connection's write lock
                    await ta.publish(TOPIC, bytes(60_000))
                    await trio.sleep(0.05)
                    if write_lock.locked():
                        await trio.sleep(0.5)
                        if write_lock.locked():
                            break
            try:
                yield ta, kb, conn_a
            finally:
                release.set()


async def test_the_librarys_close_waits_for_good_on_a_peer_that_reads_nothing() -> None:
    async with wedged_pair() as (ta, kb, conn_a):
        with trio.move_on_after(3.0) as waited:
            await ta._host.disconnect(peer_id_for(kb.public))
        assert waited.cancelled_caught, "py-libp2p's close came back: ADR 0207's cause is gone, drop the mend?"
        sock = socket_of(conn_a)
        assert sock is not None
        await sock.aclose()  # leave no blocked writer behind for the transports' shutdown


async def test_disconnect_closes_the_sockets_under_a_close_that_hangs() -> None:
    async with wedged_pair() as (ta, kb, _conn):
        pid = peer_id_for(kb.public)
        network = ta._host.get_network()
        with trio.fail_after(0.5 + ABORT_TIMEOUT + DEADLINE):
            closed = await disconnect(ta._host, pid, timeout=0.5)
        assert closed is False
        assert network.get_connections(pid) == []


async def test_the_transport_counts_an_aborted_disconnect_and_redials_a_kept_peer() -> None:
    async with wedged_pair() as (ta, kb, conn_a):
        pid = peer_id_for(kb.public)
        with trio.fail_after(DEADLINE):
            await ta._disconnect(pid)
        assert ta.stats["disconnects_aborted"] == 1
        network = ta._host.get_network()
        # B is in A's address book: the supervisor dials it again, on a new connection
        await _until(lambda: any(c is not conn_a for c in network.get_connections(pid)), "redial")
