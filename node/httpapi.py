"""The node's local HTTP/1.1 endpoint on 127.0.0.1: status, control, the explorer page, metrics.

HTTP framing is h11's (a sans-I/O HTTP/1.1 parser and serialiser, already loaded by every node through libp2p's
own dependencies) driven by trio streams: one request per connection (``Connection: close``), requests bounded
(8 KiB head, 64 KiB body) and time-limited. Handlers return a JSON-able value, a :class:`Reply` (bytes with a
content type: the page, ``/metrics``) or a :class:`Stream` (server-sent events); docs/adr/0105.

Only ``GET`` and ``POST`` are served. Control routes (``POST /round``, ``/stop``, ``/partition``, ``/clock``) need
the network's control token (``control.token`` in the network folder, mode 0600, written by the launcher) in the
``X-Bazaar-Token`` header (401 without it, 403 with another). On every route a request whose ``Origin`` is not
loopback is refused (403), so a web page in a local browser cannot drive a node (docs/adr/0083-local-control-token.md),
and so is one whose ``Host`` names neither a loopback name nor the address we listen on (403), so a page of another
site re-pointed at 127.0.0.1 by DNS (DNS rebinding) cannot read it either.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import trio

from .logs import Events

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
"""``handler(request) -> JSON-able | Reply | Stream``; request has ``query`` (dict of str) and ``body`` (decoded
JSON or None)."""

MAX_HEAD = 8 << 10
MAX_BODY = 64 << 10
MAX_ANSWER = 64 << 20
"""Largest answer :func:`http_json` reads."""
MAX_STREAMS = 32
"""Server-sent event streams one node serves at once (each open explorer page holds one)."""
TOKEN_FILE = "control.token"
"""The control token's file name in the network folder (beside ``genesis.json``)."""
TOKEN_HEADER = "x-bazaar-token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_SECURITY_HEADERS = [
    ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'none'"),
]
_events = Events("http")


class HttpError(Exception):
    """Raised by a handler to answer with a status code and a message."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Reply:
    """A non-JSON answer: ``body`` served as ``content_type``."""

    body: bytes
    content_type: str
    status: int = 200


@dataclass(frozen=True)
class Stream:
    """A streamed answer (``text/event-stream``): ``chunks()`` yields the bytes to send; it ends the stream
    when it returns (it must bound its own lifetime). A chunk that cannot be sent within 10 s ends it too."""

    chunks: Callable[[], AsyncIterator[bytes]]
    content_type: str = "text/event-stream"


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


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
    return host in LOOPBACK_NAMES


def _host_name(host: str) -> str:
    """The host name of a ``Host`` header (``127.0.0.1:8080`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``)."""
    return urlsplit("//" + host).hostname or ""


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def _receive_request(conn: h11.Connection, stream: trio.abc.Stream) -> _Request:
    """Read one request through h11, bounding the head and the body."""
    request: h11.Request | None = None
    body = bytearray()
    head_bytes = 0
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as err:
            raise HttpError(err.error_status_hint, f"malformed request: {err}") from err
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(16384)
            if request is None:
                head_bytes += len(chunk)
                if head_bytes > MAX_HEAD + MAX_BODY:
                    raise HttpError(431, "request head too large")
            conn.receive_data(chunk)
            if not chunk and request is None:
                raise HttpError(400, "connection closed before the request head")
            continue
        if isinstance(event, h11.Request):
            request = event
            length = _content_length(event)
            if length is not None and length > MAX_BODY:
                raise HttpError(413, "body too large")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise HttpError(413, "body too large")
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            return _Request(request.method.decode("ascii", "replace").upper(),
                            request.target.decode("latin-1"), headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            raise HttpError(400, "truncated request")


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 has checked it is a non-negative integer
    return None


class HttpApi:
    """Routes ``(method, path)`` to handlers."""

    def __init__(self, token: str | None = None) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.control: set[tuple[str, str]] = set()
        self.token = token
        self.listen_host = "127.0.0.1"
        self.streams = 0
        """Server-sent event streams open now."""

    def route(self, method: str, path: str, handler: Handler, *, control: bool = False) -> None:
        """Register ``handler`` for ``method path``; ``control`` routes need the control token."""
        self.routes[(method.upper(), path)] = handler
        if control:
            self.control.add((method.upper(), path))

    def _authorise(self, method: str, path: str, headers: dict[str, str]) -> None:
        origin = headers.get("origin")
        if origin is not None and not _loopback_origin(origin):
            raise HttpError(403, "cross-origin requests are refused")
        host = headers.get("host")
        if host is not None and _host_name(host) not in (*LOOPBACK_NAMES, self.listen_host):
            raise HttpError(403, f"requests for host {host[:64]!r} are refused (loopback only)")
        if (method, path) not in self.control:
            return
        given = headers.get(TOKEN_HEADER)
        if not given:
            raise HttpError(401, f"{method} {path} needs the network's control token ({TOKEN_FILE})")
        if self.token is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise HttpError(403, "wrong control token")

    async def _answer(self, req: _Request, request_timeout: float) -> Any:
        url = urlsplit(req.target)
        handler = self.routes.get((req.method, url.path))
        if handler is None:
            known = {p for _, p in self.routes}
            raise HttpError(405 if url.path in known else 404, f"no route {req.method} {url.path}")
        self._authorise(req.method, url.path, req.headers)
        try:
            body = json.loads(req.body) if req.body else None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise HttpError(400, f"body is not JSON: {err}") from err
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with trio.fail_after(request_timeout):
            return await handler({"query": query, "body": body})

    async def _serve_one(self, stream: trio.abc.Stream, request_timeout: float) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        status, payload, unread = 200, None, True
        try:
            try:
                with trio.fail_after(10):
                    req = await _receive_request(conn, stream)
            except trio.TooSlowError as err:
                raise HttpError(408, "no complete request within 10 s") from err
            unread = False
            payload = await self._answer(req, request_timeout)
        except HttpError as err:
            status, payload = err.status, {"error": str(err)}
        except trio.TooSlowError:
            status, payload = 503, {"error": "timed out"}
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.aclose()
            return
        except Exception as err:  # a handler bug must not take the node down
            _events.error("http.handler_failed", error=repr(err))
            status, payload = 500, {"error": repr(err)}
        try:
            if isinstance(payload, Stream):
                await self._stream(conn, stream, payload)
            else:
                if isinstance(payload, Reply):
                    status, ctype, data = payload.status, payload.content_type, payload.body
                else:
                    ctype, data = "application/json", json.dumps(payload, default=str).encode()
                await _send(stream, conn, status, ctype, data)
            if unread:  # closing with unread bytes would reset the connection before the client reads the answer
                await _linger(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass
        finally:
            await stream.aclose()

    async def _stream(self, conn: h11.Connection, stream: trio.abc.Stream, answer: Stream) -> None:
        if self.streams >= MAX_STREAMS:
            await _send(stream, conn, 503, "application/json",
                        json.dumps({"error": f"already {MAX_STREAMS} event streams open"}).encode())
            return
        self.streams += 1
        try:
            head = conn.send(h11.Response(status_code=200, reason=b"OK", headers=[
                ("Content-Type", answer.content_type), ("Connection", "close"), *_SECURITY_HEADERS]))
            with trio.move_on_after(10) as scope:
                await stream.send_all(head or b"")
            if scope.cancelled_caught:
                return
            async for chunk in answer.chunks():
                with trio.move_on_after(10) as scope:
                    await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")
                if scope.cancelled_caught:
                    return
            with trio.move_on_after(10):
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        finally:
            self.streams -= 1

    async def serve(self, port: int, *, request_timeout: float = 600.0,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1:``port`` (0 = any) and report the bound port through ``task_status``."""
        listeners = await trio.open_tcp_listeners(port, host=self.listen_host)
        bound = listeners[0].socket.getsockname()[1]

        async def handler(stream: trio.SocketStream) -> None:
            await self._serve_one(stream, request_timeout)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(bound)


async def _linger(stream: trio.abc.Stream) -> None:
    """Half-close and drain what the client still sends (at most 1 s and 1 MiB) so that our answer is read."""
    if isinstance(stream, trio.SocketStream):
        await stream.send_eof()
    drained = 0
    with trio.move_on_after(1):
        while drained < (1 << 20) and (chunk := await stream.receive_some(65536)):
            drained += len(chunk)


async def _send(stream: trio.abc.Stream, conn: h11.Connection, status: int, ctype: str, data: bytes) -> None:
    headers = [("Content-Type", ctype), ("Content-Length", str(len(data))), ("Connection", "close"),
               *_SECURITY_HEADERS]
    out = conn.send(h11.Response(status_code=status, reason=_REASONS.get(status, "Error").encode(), headers=headers))
    out = (out or b"") + (conn.send(h11.Data(data=data)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
    with trio.move_on_after(10):
        await stream.send_all(out)


async def http_request(port: int, method: str, path: str, data: bytes = b"", *, timeout: float = 10.0,
                       headers: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to a local HttpApi; returns ``(status, headers, body)``.

    Raises:
        OSError: nothing listens on the port.
        trio.TooSlowError: no full answer within ``timeout``.
        HttpError: (500) the answer is not well-formed HTTP or larger than ``MAX_ANSWER``.
    """
    conn = h11.Connection(h11.CLIENT)
    head = [("Host", "127.0.0.1"), ("Connection", "close"), ("Content-Length", str(len(data))), *(headers or [])]
    out = conn.send(h11.Request(method=method, target=path, headers=head)) or b""
    out += (conn.send(h11.Data(data=data)) or b"") if data else b""
    out += conn.send(h11.EndOfMessage()) or b""
    status, got, body = 0, {}, bytearray()
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(out)
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as err:
                    raise HttpError(500, f"malformed HTTP answer: {err}") from err
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    got = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_ANSWER:
                        raise HttpError(500, f"answer larger than {MAX_ANSWER} bytes")
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
    return status, got, bytes(body)


async def http_json(port: int, method: str, path: str, body: Any = None, *, timeout: float = 10.0,
                    token: str | None = None) -> Any:
    """Call a local HttpApi (with the control ``token`` when given); returns the decoded JSON, raises HttpError
    for non-200 answers.

    Raises:
        OSError: nothing listens on the port.
        trio.TooSlowError: no full answer within ``timeout``.
        ValueError: the answer is not JSON.
    """
    data = b"" if body is None else json.dumps(body).encode()
    headers = [("Content-Type", "application/json")] + ([("X-Bazaar-Token", token)] if token else [])
    status, _, payload = await http_request(port, method, path, data, timeout=timeout, headers=headers)
    decoded = json.loads(payload) if payload else None
    if status != 200:
        message = decoded.get("error") if isinstance(decoded, dict) else str(decoded)
        raise HttpError(status, str(message))
    return decoded
