"""Regression (issue #12, found by the live fuzzer): one malformed pubsub RPC frame must end only the stream it
came on. py-libp2p 0.8.1 lets protobuf's ``DecodeError`` escape the pubsub read loop, which stopped the pubsub
service and with it the whole node; ``protocol/p2p.py:_guard_rpc_decoding`` resets the stream instead. Here a
peer opens a gossipsub stream to ``a`` and writes one length-prefixed frame that is not a protobuf RPC; ``a``
must go on receiving gossip and answering requests."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from bazaar.protocol.p2p import peer_id_for

from .conftest import TOPIC, Cluster

DEADLINE = 20.0
GARBAGE = b"\xff" * 12  # field 31, wire type 7 (invalid): protobuf's parser raises DecodeError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def _echo(peer: bytes, data: bytes) -> bytes:
    return data


async def test_one_malformed_rpc_frame_does_not_stop_pubsub(cluster: Cluster) -> None:
    if cluster.kind != "libp2p":
        pytest.skip("a py-libp2p pubsub detail")
    a, b, c = cluster.nodes
    a.set_handler("/test/echo/1", _echo)
    host: Any = c._host
    protocols = list(a._ps.protocols)  # whatever gossipsub version the transports speak
    with trio.fail_after(DEADLINE):
        stream = await host.new_stream(peer_id_for(a.local_key), protocols)
        await stream.write(_varint(len(GARBAGE)) + GARBAGE)
        # the frame is processed when a's read loop gets to it; a's answer is a reset of this stream only
        with trio.move_on_after(5):
            try:
                while await stream.read(1024):
                    pass
            except Exception:  # StreamEOF / StreamReset: the stream, and only it, is gone
                pass
    for i in range(3):  # gossip still flows to a, from a peer that did nothing wrong
        await b.publish(TOPIC, b"after-%d" % i)
        with trio.fail_after(DEADLINE):
            got = await a.subscribe(TOPIC).receive()
        assert got.data == b"after-%d" % i
    with trio.fail_after(DEADLINE):
        assert await b.request(a.local_key, "/test/echo/1", b"alive", timeout=10) == b"alive"
