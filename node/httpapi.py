"""A small HTTP/1.1 status and control endpoint on 127.0.0.1 (``net status``, ``round``, the explorer).

Only what the CLI needs: ``GET path`` and ``POST path`` with a JSON body, ``Connection: close``. Requests are
bounded (8 KiB head, 64 KiB body) and time-limited; handlers return JSON-able values.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

from .logs import Events

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
"""``handler(request) -> JSON-able``; request has ``query`` (dict of str) and ``body`` (decoded JSON or None)."""

MAX_HEAD = 8 << 10
MAX_BODY = 64 << 10
_events = Events("http")


class HttpError(Exception):
    """Raised by a handler to answer with a status code and a message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


async def _read_request(stream: trio.SocketStream) -> tuple[str, str, bytes]:
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise HttpError(400, "connection closed before the request head")
        buf += chunk
        if len(buf) > MAX_HEAD + MAX_BODY:
            raise HttpError(413, "request too large")
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise HttpError(413, "request head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpError(400, "bad request line")
    method, target, _ = parts
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError as err:
                raise HttpError(400, "bad content-length") from err
    if length < 0 or length > MAX_BODY:
        raise HttpError(413, "body too large")
    body = bytearray(rest)
    while len(body) < length:
        chunk = await stream.receive_some(length - len(body))
        if not chunk:
            raise HttpError(400, "truncated body")
        body += chunk
    return method, target, bytes(body[:length])


class HttpApi:
    """Routes ``(method, path)`` to handlers."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Register ``handler`` for ``method path``."""
        self.routes[(method.upper(), path)] = handler

    async def _serve_one(self, stream: trio.SocketStream, request_timeout: float) -> None:
        status, payload = 200, None
        try:
            with trio.fail_after(10):
                method, target, raw = await _read_request(stream)
            url = urlsplit(target)
            handler = self.routes.get((method, url.path))
            if handler is None:
                known = {p for _, p in self.routes}
                raise HttpError(405 if url.path in known else 404, f"no route {method} {url.path}")
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError as err:
                raise HttpError(400, f"body is not JSON: {err}") from err
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with trio.fail_after(request_timeout):
                payload = await handler({"query": query, "body": body})
        except HttpError as err:
            status, payload = err.status, {"error": str(err)}
        except trio.TooSlowError:
            status, payload = 503, {"error": "timed out"}
        except Exception as err:  # a handler bug must not take the node down
            _events.error("http.handler_failed", error=repr(err))
            status, payload = 500, {"error": repr(err)}
        data = json.dumps(payload, default=str).encode()
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
        try:
            with trio.move_on_after(10):
                await stream.send_all(head + data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async def serve(self, port: int, *, request_timeout: float = 600.0,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1:``port`` (0 = any) and report the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        bound = listeners[0].socket.getsockname()[1]

        async def handler(stream: trio.SocketStream) -> None:
            await self._serve_one(stream, request_timeout)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(bound)


async def http_json(port: int, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    """Call a local HttpApi; returns the decoded JSON, raises HttpError for non-200 answers.

    Raises:
        OSError: nothing listens on the port.
        trio.TooSlowError: no full answer within ``timeout``.
    """
    data = b"" if body is None else json.dumps(body).encode()
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            buf = bytearray()
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                buf += chunk
    head, _, payload = bytes(buf).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise HttpError(500, "malformed HTTP answer")
    status = int(status_line[1])
    decoded = json.loads(payload) if payload else None
    if status != 200:
        message = decoded.get("error") if isinstance(decoded, dict) else str(decoded)
        raise HttpError(status, str(message))
    return decoded
