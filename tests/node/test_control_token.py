"""Local control needs the network's token (issue 12, defect 5 of the probe; docs/adr/0083): ``POST /round``
and ``POST /stop`` without it are refused, with it accepted; a cross-origin request is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import trio

from bazaar.node.httpapi import HttpError, http_json
from bazaar.node.launcher import NetDir

from .harness import memory_net, small_scenario


async def _raw(port: int, head: str) -> bytes:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(head.encode())
            buf = bytearray()
            while chunk := await stream.receive_some(65536):
                buf += chunk
    return bytes(buf)


async def test_control_routes_need_the_token(tmp_path: Path) -> None:
    root = tmp_path / "net"
    async with memory_net(small_scenario(tmp_path), root) as nodes:
        token_file = NetDir(root).token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = NetDir(root).control_token()
        assert token
        cpp, consumer = nodes["cpp"], nodes["consumer-0"]
        for node, path in ((cpp, "/round"), (consumer, "/stop")):
            with pytest.raises(HttpError) as err:
                await http_json(node.http_port, "POST", path, {})
            assert err.value.status == 401
            with pytest.raises(HttpError) as err:
                await http_json(node.http_port, "POST", path, {}, token="0" * 64)
            assert err.value.status == 403
        assert not consumer.stop.is_set()
        answer = await _raw(consumer.http_port, f"POST /stop HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bazaar-Token: {token}\r\n"
                                                "Origin: http://evil.example\r\nContent-Length: 0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403") and not consumer.stop.is_set()
        status = await http_json(consumer.http_port, "GET", "/status")  # reading needs no token
        assert status["name"] == "consumer-0"
        with trio.fail_after(60):
            summary = await http_json(cpp.http_port, "POST", "/round", {}, token=token, timeout=60)
        assert summary["final"]
        assert await http_json(consumer.http_port, "POST", "/stop", {}, token=token) == {"stopping": True}
        assert consumer.stop.is_set()
