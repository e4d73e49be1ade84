"""Request streams kept for the next request (docs/adr/0180): the pool's rules with a fake clock, and over libp2p a
stream carries exchange after exchange, a rejection keeps it, and a kept stream the responder closed costs the
requester nothing (the request goes out again on a new stream)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import trio

from bazaar.protocol import p2p, stream_pool
from bazaar.protocol.stream_pool import StreamPool, usable
from bazaar.protocol.transport import RejectRequest, RemoteRejected

from .conftest import Cluster

PROTO = "/bazaar/test/1"
DEADLINE = 15.0


def _stream(**flags: bool) -> SimpleNamespace:
    state = {"closed": False, "send_closed": False, "recv_closed": False, **flags}
    return SimpleNamespace(muxed_stream=SimpleNamespace(**state), muxed_conn=SimpleNamespace(is_closed=False))


def test_the_pool_hands_out_the_latest_usable_stream_and_bounds_what_it_keeps() -> None:
    now = [0.0]
    pool = StreamPool(per_key=2, idle_s=10.0, clock=lambda: now[0])
    a, b, c = _stream(), _stream(), _stream()
    assert pool.take("p", "x") == (None, [])
    assert pool.give_back("p", "x", a) is None
    assert pool.give_back("p", "x", b) is None
    assert pool.give_back("p", "x", c) is a  # beyond per_key: the oldest is the caller's to close
    assert pool.take("p", "x") == (c, []) and pool.reused == 1
    assert pool.take("p", "y") == (None, [])  # another protocol
    now[0] = 11.0
    assert pool.take("p", "x") == (None, [b])  # idle too long: closed, not reused
    pool.give_back("p", "x", a)
    pool.give_back("q", "x", b)
    assert pool.drop_peer("p") == [a] and len(pool) == 1
    now[0] = 30.0
    assert pool.expire() == [b] and len(pool) == 0


def test_a_closed_stream_or_connection_is_not_usable() -> None:
    assert usable(_stream())
    assert not usable(_stream(recv_closed=True))
    assert not usable(_stream(closed=True))
    dead = _stream()
    dead.muxed_conn.is_closed = True
    assert not usable(dead)
    pool = StreamPool(clock=lambda: 0.0)
    pool.give_back("p", "x", _stream(send_closed=True))
    stream, stale = pool.take("p", "x")
    assert stream is None and len(stale) == 1


async def _echo(peer: bytes, request: bytes) -> bytes:
    if request == b"no":
        raise RejectRequest("refused")
    return request


@pytest.mark.parametrize("cluster", ["libp2p"], indirect=True)
async def test_one_stream_carries_exchange_after_exchange(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    b.set_handler(PROTO, _echo)
    with trio.fail_after(DEADLINE):
        for i in range(4):
            assert await a.request(b.local_key, PROTO, b"%d" % i, timeout=DEADLINE) == b"%d" % i
        with pytest.raises(RemoteRejected, match="refused"):
            await a.request(b.local_key, PROTO, b"no", timeout=DEADLINE)
        assert await a.request(b.local_key, PROTO, b"after", timeout=DEADLINE) == b"after"
    assert a.stats["streams_reused"] == 5  # one stream opened for six requests
    assert b.stats["requests_served"] == 5 and b.stats["requests_rejected"] == 1
    assert a.stats["requests_failed"] == 0 and b.stats["requests_failed"] == 0


@pytest.mark.parametrize("cluster", ["libp2p"], indirect=True)
async def test_a_kept_stream_the_responder_closed_is_replaced_without_a_failure(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, _ = cluster.nodes
    b.set_handler(PROTO, _echo)
    monkeypatch.setattr(p2p, "SERVE_IDLE_S", 0.05)  # the responder closes a stream idle this long
    monkeypatch.setattr(stream_pool, "usable", lambda stream: True)  # the requester cannot tell: it finds out
    with trio.fail_after(DEADLINE):
        assert await a.request(b.local_key, PROTO, b"first", timeout=DEADLINE) == b"first"
        (kept,) = [s for entries in a._pool._idle.values() for _, s in entries]
        while not kept.muxed_stream.recv_closed:  # the responder's close reached us (bounded by fail_after)
            await trio.sleep(0.01)
        assert await a.request(b.local_key, PROTO, b"second", timeout=DEADLINE) == b"second"
    assert a.stats["streams_reused"] == 1  # it tried the kept stream, saw it ended unread, sent it anew
    assert b.stats["requests_served"] == 2 and a.stats["requests_failed"] == 0
