"""The two py-libp2p CPU savings of ADR 0145: a signed peer record is verified once per (peer, bytes), and yamux
credits a receive window back only once it is short by half (go-yamux's rule), never per small read."""

from __future__ import annotations

import types
from typing import Any

import pytest
import trio
from libp2p.stream_muxer.yamux.yamux import DEFAULT_WINDOW_SIZE, YamuxStream

from bazaar.protocol import p2p_records
from bazaar.protocol.p2p_yamux import _half_window_update


class _Rpc:
    def __init__(self, record: bytes) -> None:
        self.senderRecord = record

    def HasField(self, name: str) -> bool:  # protobuf spells it so
        return name == "senderRecord" and bool(self.senderRecord)


def _consume(verdicts: dict[bytes, bool]) -> tuple[Any, list[bytes]]:
    calls: list[bytes] = []

    def original(msg: Any, host: Any, peer_id: Any) -> bool:
        calls.append(msg.senderRecord)
        return verdicts[msg.senderRecord]

    return p2p_records._cached_consume(original), calls


def test_the_same_record_from_the_same_peer_is_verified_once() -> None:
    consume, calls = _consume({b"rec-a": True})
    assert all(consume(_Rpc(b"rec-a"), None, "peer-1") for _ in range(5))
    assert calls == [b"rec-a"]
    assert consume(_Rpc(b"rec-a"), None, "peer-2") and calls == [b"rec-a", b"rec-a"]  # another sender: checked


def test_other_bytes_and_refused_records_always_take_the_library_path() -> None:
    consume, calls = _consume({b"good": True, b"forged": False, b"newer": True})
    assert consume(_Rpc(b"good"), None, "p")
    assert not consume(_Rpc(b"forged"), None, "p") and not consume(_Rpc(b"forged"), None, "p")
    assert consume(_Rpc(b"good"), None, "p")  # the refusal forgot the cached record: checked again
    assert consume(_Rpc(b"newer"), None, "p")
    assert calls == [b"good", b"forged", b"forged", b"good", b"newer"]
    assert consume(_Rpc(b""), None, "p") and len(calls) == 5  # no record: nothing to check, as in the library


def test_a_trusted_record_is_checked_again_after_the_reverify_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(p2p_records.time, "monotonic", lambda: clock[0])
    consume, calls = _consume({b"rec": True})
    consume(_Rpc(b"rec"), None, "p")
    clock[0] += p2p_records.REVERIFY_S + 1
    consume(_Rpc(b"rec"), None, "p")
    assert len(calls) == 2


def test_own_record_bytes_are_reused_until_the_refresh_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(p2p_records.time, "monotonic", lambda: clock[0])
    built: list[int] = []

    def original(host: Any) -> tuple[bytes, bool]:
        built.append(1)
        return b"env-%d" % len(built), True

    record = p2p_records._cached_record(original)
    host = object()
    assert record(host) == (b"env-1", True) and record(host) == (b"env-1", False)
    clock[0] += p2p_records.RECORD_REFRESH_S
    assert record(host) == (b"env-2", True) and len(built) == 2


def _stream(buffered: int = 0) -> Any:
    s = types.SimpleNamespace(window_lock=trio.Lock(), stream_id=1, target_recv_window=DEFAULT_WINDOW_SIZE,
                              recv_window=DEFAULT_WINDOW_SIZE, epoch_start=0.0, rtt=0.0, _pending_recv_release=0,
                              conn=types.SimpleNamespace(stream_buffers={1: bytearray(buffered)}), sent=[])
    for name in ("_grow_threshold", "_grow_to_delta"):
        setattr(s, name, types.MethodType(getattr(YamuxStream, name), s))
    s._apply_autotune_epoch = lambda buffered: 0

    async def send_window_update(increment: int, skip_lock: bool = False) -> None:
        s.sent.append(increment)

    s.send_window_update = send_window_update
    return s


async def test_small_reads_send_no_window_update_until_half_the_window_is_used() -> None:
    s = _stream()
    for _ in range(10):  # ten 1 KiB gossip messages arrive and are read
        s.recv_window -= 1024
        await _half_window_update(s, bytes_read=1024)
    assert s.sent == [] and s.recv_window == DEFAULT_WINDOW_SIZE - 10 * 1024
    s.recv_window -= DEFAULT_WINDOW_SIZE // 2  # a large message: the window is now short by more than half
    await _half_window_update(s, bytes_read=DEFAULT_WINDOW_SIZE // 2)
    assert s.sent == [10 * 1024 + DEFAULT_WINDOW_SIZE // 2] and s.recv_window == DEFAULT_WINDOW_SIZE


async def test_unread_bytes_hold_the_credit_back() -> None:
    s = _stream(buffered=DEFAULT_WINDOW_SIZE // 2)  # half a window arrived but is not read yet
    s.recv_window -= DEFAULT_WINDOW_SIZE // 2
    await _half_window_update(s)
    assert s.sent == []  # what is still buffered is not credited: the sender cannot overrun the reader
