"""Length-prefixed frames and the framed request/response exchange."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from bazaar.protocol.errors import OversizeError
from bazaar.protocol.framing import (
    MAX_REASON,
    STATUS_OK,
    client_exchange,
    read_frame,
    serve_exchange,
    write_frame,
)
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected


class ScriptedStream:
    """A libp2p-style stream (``read(n)``/``write``) replaying bytes in small chunks and logging reads."""

    def __init__(self, data: bytes, chunk: int = 3) -> None:
        self.data = data
        self.pos = 0
        self.chunk = chunk
        self.requested: list[int] = []
        self.written = bytearray()

    async def read(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        self.requested.append(n)
        out = self.data[self.pos : self.pos + min(n, self.chunk)]
        self.pos += len(out)
        return out

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.written += data


async def test_round_trip_over_trio_streams() -> None:
    left, right = trio.testing.memory_stream_pair()
    for payload in (b"", b"x", bytes(range(256)) * 1000):
        await write_frame(left, payload)
        assert await read_frame(right, 1 << 20) == payload


async def test_exact_read_loop_survives_tiny_chunks() -> None:
    payload = b"abcdefghij" * 50
    stream = ScriptedStream(struct.pack(">I", len(payload)) + payload, chunk=1)
    assert await read_frame(stream, 1000) == payload


async def test_oversize_frame_rejected_before_reading_the_body() -> None:
    stream = ScriptedStream(struct.pack(">I", 10_000) + b"\0" * 10_000, chunk=4)
    with pytest.raises(OversizeError):
        await read_frame(stream, 9_999)
    assert stream.pos == 4  # only the header was consumed
    assert stream.requested == [4]


@pytest.mark.parametrize("data", [b"", b"\0\0", struct.pack(">I", 10) + b"short"])
async def test_eof_is_peer_unavailable(data: bytes) -> None:
    with pytest.raises(PeerUnavailable):
        await read_frame(ScriptedStream(data), 100)


async def test_write_refuses_oversize() -> None:
    stream = ScriptedStream(b"")
    with pytest.raises(ValueError):
        await write_frame(stream, b"12345", max_size=4)
    await write_frame(stream, b"1234", max_size=4)
    assert bytes(stream.written) == b"\0\0\0\x041234"


async def test_broken_trio_stream_is_peer_unavailable() -> None:
    left, right = trio.testing.memory_stream_pair()
    await right.aclose()
    with pytest.raises(PeerUnavailable):
        await write_frame(left, b"x" * 10)
        await write_frame(left, b"x" * 10)


async def exchange(handler, request: bytes = b"req"):  # type: ignore[no-untyped-def]
    client, server = trio.testing.memory_stream_pair()
    outcome: dict[str, object] = {}

    async def serve() -> None:
        try:
            outcome["answered"] = await serve_exchange(server, b"peer", handler, max_frame=1000)
        finally:
            await server.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.fail_after(5):
            try:
                outcome["response"] = await client_exchange(client, request, max_frame=1000)
            except Exception as err:
                outcome["error"] = err
    return outcome


async def test_exchange_ok() -> None:
    async def handler(peer: bytes, request: bytes) -> bytes:
        return peer + request

    assert await exchange(handler) == {"answered": True, "response": b"peerreq"}


async def test_exchange_reject_reason_truncated_on_a_character_boundary() -> None:
    async def handler(peer: bytes, request: bytes) -> bytes:
        raise RejectRequest("é" * MAX_REASON)

    out = await exchange(handler)
    assert out["answered"] is False
    err = out["error"]
    assert isinstance(err, RemoteRejected)
    assert err.reason == "é" * (MAX_REASON // 2)


async def test_exchange_handler_crash_is_peer_unavailable() -> None:
    async def handler(peer: bytes, request: bytes) -> bytes:
        raise RuntimeError("bug")

    client, server = trio.testing.memory_stream_pair()

    async def serve() -> None:
        try:
            await serve_exchange(server, b"peer", handler, max_frame=1000)
        except RuntimeError:
            pass  # the transport logs it and resets the stream
        finally:
            await server.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        with trio.fail_after(5), pytest.raises(PeerUnavailable):
            await client_exchange(client, b"x", max_frame=1000)


async def test_exchange_rejects_oversize_handler_response() -> None:
    async def handler(peer: bytes, request: bytes) -> bytes:
        return b"\0" * 1001

    server = ScriptedStream(struct.pack(">I", 1) + b"q")
    with pytest.raises(ValueError):
        await serve_exchange(server, b"p", handler, max_frame=1000)
    assert server.written == b""


@pytest.mark.parametrize("frame", [b"", b"\x07abc", bytes([0x01]) + b"x" * (MAX_REASON + 1)])
async def test_malformed_responses_are_peer_unavailable(frame: bytes) -> None:
    stream = ScriptedStream(struct.pack(">I", len(frame)) + frame, chunk=1000)
    with pytest.raises(PeerUnavailable):
        await client_exchange(stream, b"x", max_frame=1000)


async def test_response_status_byte() -> None:
    stream = ScriptedStream(struct.pack(">I", 3) + bytes([STATUS_OK]) + b"ok", chunk=1000)
    assert await client_exchange(stream, b"x", max_frame=1000) == b"ok"
    assert bytes(stream.written) == b"\0\0\0\x01x"
