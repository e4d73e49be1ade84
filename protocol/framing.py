"""Length-prefixed frames on byte streams, and the one-request/one-response exchange built on them.

Frame: a 4-byte big-endian unsigned length ``n``, then ``n`` bytes. The reader checks ``n`` against its cap
*before* reading or allocating the body (STYLE §4) and uses its own exact-read loop: py-libp2p's
``read_exactly`` gives up after 100 partial reads (libp2p.md §6.4).

Direct exchange (docs/protocol.md "Direct streams"): the requester writes one request frame; the responder
answers with one response frame whose first byte is a status: ``0x00`` then the response bytes, or ``0x01``
then a UTF-8 reject reason (at most :data:`MAX_REASON` bytes). Any other failure resets the stream. A stream may
carry several exchanges, one after the other (the libp2p transport keeps streams open for the next request,
docs/adr/0180); a responder that closes a stream between exchanges has read nothing of the next request, which
the requester sees as :class:`StreamEnded` before any byte of the response.

The functions work on libp2p streams (``read(n)`` / ``write(b)``) and on trio streams (``receive_some`` /
``send_all``), so the in-memory transport runs the very same exchange code over ``trio.testing`` stream pairs.
"""

from __future__ import annotations

import struct
from typing import Any

import trio

from .errors import OversizeError, ProtocolError
from .transport import PeerUnavailable, RejectRequest, RemoteRejected, RequestHandler

HEADER = struct.Struct(">I")
MAX_REASON = 256
"""Longest reject reason sent back to a requester, in UTF-8 bytes (longer ones are truncated)."""

STATUS_OK = 0x00
STATUS_REJECT = 0x01

_COALESCE = 64 << 10  # below this, header and body go out in one write


async def _read_some(stream: Any, n: int) -> bytes:
    if hasattr(stream, "read"):
        return bytes(await stream.read(n))
    return bytes(await stream.receive_some(n))


async def _write(stream: Any, data: bytes) -> None:
    if hasattr(stream, "write"):
        await stream.write(data)
    else:
        await stream.send_all(data)


class StreamEnded(PeerUnavailable):
    """The stream ended cleanly (EOF) before the first byte of a frame: between exchanges, nothing was lost."""


async def read_exactly(stream: Any, n: int) -> bytes:
    """Read exactly ``n`` bytes.

    Raises:
        PeerUnavailable: the stream ended (EOF) or broke before ``n`` bytes arrived.
    """
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = await _read_some(stream, n - len(buf))
            if not chunk:
                if not buf:
                    raise StreamEnded(f"stream ended before any of {n} bytes")
                raise PeerUnavailable(f"stream ended after {len(buf)} of {n} bytes")
            buf += chunk
    except EOFError as err:  # libp2p's clean end of stream
        if not buf:
            raise StreamEnded(f"stream ended before any of {n} bytes") from err
        raise PeerUnavailable(f"stream ended after {len(buf)} of {n} bytes") from err
    except trio.BrokenResourceError as err:
        raise PeerUnavailable(f"stream broke after {len(buf)} of {n} bytes") from err
    return bytes(buf)


async def read_frame(stream: Any, max_size: int) -> bytes:
    """Read one length-prefixed frame of at most ``max_size`` bytes.

    Raises:
        OversizeError: the announced length exceeds ``max_size`` (nothing of the body was read).
        PeerUnavailable: EOF or a broken stream.
    """
    return await read_frame_body(stream, await read_frame_length(stream, max_size))


async def read_frame_length(stream: Any, max_size: int) -> int:
    """Read a frame's 4-byte length prefix (a responder waits for the next request with its own deadline).

    Raises:
        OversizeError: the announced length exceeds ``max_size``.
        StreamEnded: a clean EOF before the prefix; PeerUnavailable: EOF inside it or a broken stream.
    """
    (length,) = HEADER.unpack(await read_exactly(stream, HEADER.size))
    if length > max_size:
        raise OversizeError(f"frame of {length} bytes > cap {max_size}")
    return int(length)


async def read_frame_body(stream: Any, length: int) -> bytes:
    """Read the ``length`` bytes of a frame whose prefix :func:`read_frame_length` read (checked against its cap).

    Raises:
        PeerUnavailable: EOF or a broken stream.
    """
    if not length:
        return b""
    try:
        return await read_exactly(stream, length)
    except StreamEnded as err:
        raise PeerUnavailable(str(err)) from err  # inside a frame: not a clean end


async def write_frame(stream: Any, data: bytes, *, max_size: int | None = None) -> None:
    """Write one length-prefixed frame.

    Raises:
        ValueError: ``data`` is longer than ``max_size`` or than the 4-byte prefix can say (our own bug).
        PeerUnavailable: the stream broke (``trio.BrokenResourceError``); libp2p errors pass through.
    """
    cap = 0xFFFFFFFF if max_size is None else max_size
    if len(data) > cap:
        raise ValueError(f"refusing to send a frame of {len(data)} bytes (cap {cap})")
    header = HEADER.pack(len(data))
    try:
        if len(data) < _COALESCE:
            await _write(stream, header + bytes(data))
        else:
            await _write(stream, header)
            await _write(stream, bytes(data))
    except trio.BrokenResourceError as err:
        raise PeerUnavailable("stream broke while writing") from err


def _encode_reason(reason: str) -> bytes:
    raw = reason.encode("utf-8", errors="replace")[:MAX_REASON]
    return raw.decode("utf-8", errors="ignore").encode("utf-8")  # never cut a character in half


async def serve_exchange(stream: Any, peer: bytes, handler: RequestHandler, *, max_frame: int,
                         length: int | None = None) -> bool:
    """Responder side: read one request, run ``handler``, write the response (or its rejection). ``length``: the
    request frame's prefix, already read (:func:`read_frame_length`).

    Exceptions other than :class:`RejectRequest` propagate; the caller resets the stream.

    Returns:
        True when a response was sent, False when the handler rejected the request.

    Raises:
        OversizeError: the request frame is larger than ``max_frame``.
        PeerUnavailable: the requester went away.
        ValueError: the handler returned more than ``max_frame`` bytes.
    """
    request = await read_frame(stream, max_frame) if length is None else await read_frame_body(stream, length)
    try:
        response = await handler(peer, request)
    except RejectRequest as rejection:
        await write_frame(stream, bytes([STATUS_REJECT]) + _encode_reason(rejection.reason))
        return False
    if not isinstance(response, (bytes, bytearray, memoryview)):
        raise TypeError(f"request handler returned {type(response).__name__}, expected bytes")
    if len(response) > max_frame:
        raise ValueError(f"handler response of {len(response)} bytes > cap {max_frame}")
    await write_frame(stream, bytes([STATUS_OK]) + bytes(response))
    return True


async def client_exchange(stream: Any, request: bytes, *, max_frame: int) -> bytes:
    """Requester side: write one request frame and read the response.

    Raises:
        ValueError: ``request`` is longer than ``max_frame``.
        RemoteRejected: the responder refused with a reason.
        StreamEnded: the responder closed the stream before any byte of the response (it read nothing of a
            request on a stream it had already served: the request was not handled).
        PeerUnavailable: EOF, a broken stream, or a malformed/oversize response (chained).
    """
    await write_frame(stream, request, max_size=max_frame)
    try:
        frame = await read_frame(stream, max_frame + 1)
    except ProtocolError as err:
        raise PeerUnavailable(f"bad response: {err}") from err
    if not frame:
        raise PeerUnavailable("empty response frame")
    if frame[0] == STATUS_OK:
        return frame[1:]
    if frame[0] == STATUS_REJECT:
        if len(frame) - 1 > MAX_REASON:
            raise PeerUnavailable("reject reason too long")
        raise RemoteRejected(frame[1:].decode("utf-8", errors="replace"))
    raise PeerUnavailable(f"unknown response status {frame[0]:#x}")
