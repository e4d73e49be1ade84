"""py-libp2p's ``read_exactly`` replaced by one that reads a frame in any number of pieces and stops at end of
stream (docs/adr/0201): the library's version read a closed connection 100 000 more times."""

from __future__ import annotations

import libp2p.host.ping as _ping
import libp2p.io.msgio as _msgio
import libp2p.io.utils as _io_utils
import libp2p.stream_muxer.yamux.yamux as _yamux
import pytest
import trio
from libp2p.io.exceptions import IncompleteReadError
from libp2p.io.trio import TrioTCPStream

from bazaar.protocol import p2p_reads
from bazaar.protocol.p2p_reads import read_until_eof
from bazaar.protocol.p2p_settings import apply_process_patches


class Pieces:
    """A reader that hands out ``data`` ``size`` bytes at a time, then ``b""`` (end of stream) forever."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.reads = data, size, 0

    async def read(self, n: int | None = None) -> bytes:
        self.reads += 1
        take = min(self.size, len(self.data) if n is None else n)
        chunk, self.data = self.data[:take], self.data[take:]
        await trio.lowlevel.checkpoint()
        return chunk


async def test_a_frame_in_thousands_of_pieces_is_read_whole() -> None:
    frame = bytes(range(256)) * 20  # 5120 bytes, one byte per read: far past the library's 101 reads
    reader = Pieces(frame, 1)
    assert await read_until_eof(reader, len(frame)) == frame
    assert reader.reads == len(frame)


async def test_end_of_stream_stops_at_the_first_empty_read() -> None:
    reader = Pieces(b"abc", 2)
    with pytest.raises(IncompleteReadError) as err:
        await read_until_eof(reader, 10)
    assert (err.value.expected_bytes, err.value.received_bytes) == (10, 3)
    assert reader.reads == 3  # two reads of data, one empty: no spinning on a closed stream

    closed = Pieces(b"", 1)
    with pytest.raises(IncompleteReadError):
        await read_until_eof(closed, 2, 100_000)  # the library's retry count is accepted and ignored
    assert closed.reads == 1


async def test_a_tcp_connection_the_peer_closed_is_read_once() -> None:
    async def close_at_once(stream: trio.SocketStream) -> None:
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, close_at_once, 0)
        port = listeners[0].socket.getsockname()[1]
        stream = TrioTCPStream(await trio.open_tcp_stream("127.0.0.1", port))
        calls = [0]
        read = stream.read

        async def counted(n: int | None = None) -> bytes:
            calls[0] += 1
            return await read(n)

        stream.read = counted  # type: ignore[method-assign]
        with pytest.raises(IncompleteReadError):
            await read_until_eof(stream, 2)
        assert calls[0] == 1
        await stream.close()
        nursery.cancel_scope.cancel()


def test_the_transport_patches_put_it_wherever_the_library_reads_frames() -> None:
    apply_process_patches()
    apply_process_patches()  # idempotent
    for module in (_io_utils, _msgio, _yamux, _ping):
        assert module.read_exactly is read_until_eof, module.__name__
    p2p_reads.install()
    assert _msgio.read_exactly is read_until_eof
