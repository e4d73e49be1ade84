"""A small HTTP/1.1 status and control endpoint on 127.0.0.1 (``net status``, ``round``, the explorer).

Only what the CLI needs: ``GET path`` and ``POST path`` with a JSON body, ``Connection: close``. Requests are
bounded (8 KiB head, 64 KiB body) and time-limited; handlers return JSON-able values.

Control routes (``POST /round``, ``POST /stop``) need the network's control token (``control.token`` in the
network folder, mode 0600, written by the launcher) in the ``X-Bazaar-Token`` header (401 without it, 403 with
another); a request whose ``Origin`` is not loopback is refused (403) on every route, so a web page in a local
browser cannot drive a node (docs/adr/0083-local-control-token.md).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

from .logs import Events

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
"""``handler(request) -> JSON-able``; request has ``query`` (dict of str) and ``body`` (decoded JSON or None)."""

MAX_HEAD = 8 << 10
MAX_BODY = 64 << 10
TOKEN_FILE = "control.token"
"""The control token's file name in the network folder (beside ``genesis.json``)."""
TOKEN_HEADER = "x-bazaar-token"
_events = Events("http")


class HttpError(Exception):
    """Raised by a handler to answer with a status code and a message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def load_or_create_token(path: Path) -> str:
    """The control token stored at ``path``; a new random one (written with mode 0600) when there is none."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def read_token(path: Path) -> str | None:
    """The control token stored at ``path``, or None when there is none (or it cannot be read)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _loopback_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


async def _read_request(stream: trio.SocketStream) -> tuple[str, str, dict[str, str], bytes]:
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
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
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
    return method, target, headers, bytes(body[:length])


class HttpApi:
    """Routes ``(method, path)`` to handlers."""

    def __init__(self, token: str | None = None) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.control: set[tuple[str, str]] = set()
        self.token = token

    def route(self, method: str, path: str, handler: Handler, *, control: bool = False) -> None:
        """Register ``handler`` for ``method path``; ``control`` routes need the control token."""
        self.routes[(method.upper(), path)] = handler
        if control:
            self.control.add((method.upper(), path))

    def _authorise(self, method: str, path: str, headers: dict[str, str]) -> None:
        origin = headers.get("origin")
        if origin is not None and not _loopback_origin(origin):
            raise HttpError(403, "cross-origin requests are refused")
        if (method, path) not in self.control:
            return
        given = headers.get(TOKEN_HEADER)
        if not given:
            raise HttpError(401, f"{method} {path} needs the network's control token ({TOKEN_FILE})")
        if self.token is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise HttpError(403, "wrong control token")

    async def _serve_one(self, stream: trio.SocketStream, request_timeout: float) -> None:
        status, payload = 200, None
        try:
            with trio.fail_after(10):
                method, target, headers, raw = await _read_request(stream)
            url = urlsplit(target)
            handler = self.routes.get((method, url.path))
            if handler is None:
                known = {p for _, p in self.routes}
                raise HttpError(405 if url.path in known else 404, f"no route {method} {url.path}")
            self._authorise(method, url.path, headers)
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


async def http_json(port: int, method: str, path: str, body: Any = None, *, timeout: float = 10.0,
                    token: str | None = None) -> Any:
    """Call a local HttpApi (with the control ``token`` when given); returns the decoded JSON, raises HttpError
    for non-200 answers.

    Raises:
        OSError: nothing listens on the port.
        trio.TooSlowError: no full answer within ``timeout``.
    """
    data = b"" if body is None else json.dumps(body).encode()
    auth = f"X-Bazaar-Token: {token}\r\n" if token else ""
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}"
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
