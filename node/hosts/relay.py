"""The HTTP relay of a namespaced network: the host's 127.0.0.1 -> each node's 127.0.0.1 inside its namespace.

``python -m bazaar.node.hosts.relay DIR`` (started and stopped by ``net up/down --hosts netns``). For every
node recorded in ``DIR/hosts.json`` it listens on ``127.0.0.1:relay_port`` of the host; each connection is
copied both ways to ``127.0.0.1:<the port in the node's ready.json>``, dialled from a socket created inside the
node's namespace (``setns`` on the calling thread for the one ``socket()`` call, then back). The node's HTTP
API keeps its rules (loopback only, control token for POST); the relay adds no route and no listener outside
the host's loopback (docs/adr/0111-netns-runner.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

CLONE_NEWNET = 0x40000000
CONNECTION_LIMIT_S = 900.0  # a POST /round waits for its round (the node's own limit is 600 s)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def socket_in(netns: str) -> socket.socket:
    """A TCP socket created inside the named network namespace (it stays there for its life); the calling
    thread returns to its own namespace before this returns."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


async def _copy(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    while chunk := await src.receive_some(65536):
        await dst.send_all(chunk)


async def _pipe(client: trio.SocketStream, upstream: trio.SocketStream) -> None:
    """Copy both ways until the upstream side (the node) has answered and closed."""
    async with client, upstream, trio.open_nursery() as nursery:

        async def upload() -> None:
            await _copy(client, upstream)
            await upstream.send_eof()

        async def download() -> None:
            await _copy(upstream, client)
            nursery.cancel_scope.cancel()  # the node answered and closed: done

        nursery.start_soon(upload)
        nursery.start_soon(download)


async def _serve(client: trio.SocketStream, node_dir: Path, netns: str) -> None:
    with trio.move_on_after(CONNECTION_LIMIT_S):
        try:
            port = int(json.loads((node_dir / "ready.json").read_text())["http_port"])
            sock = trio.socket.from_stdlib_socket(socket_in(netns))
            await sock.connect(("127.0.0.1", port))
        except (OSError, ValueError, KeyError, TypeError):
            await client.aclose()  # the node is not up: the caller sees a closed connection
            return
        await _pipe(client, trio.SocketStream(sock))


def forward_local(port: int) -> Callable[[trio.SocketStream], Awaitable[None]]:
    """A ``serve_listeners`` handler relaying each connection to ``127.0.0.1:port`` (a container's node API)."""

    async def handler(client: trio.SocketStream) -> None:
        with trio.move_on_after(CONNECTION_LIMIT_S), \
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await client.aclose()  # the node is not up yet
                return
            await _pipe(client, upstream)

    return handler


async def run(root: Path) -> None:
    """Serve every node of ``root/hosts.json`` until cancelled; writes ``root/relay.ready`` once listening."""
    record: dict[str, Any] = json.loads((root / "hosts.json").read_text())
    async with trio.open_nursery() as nursery:
        for name, node in record["nodes"].items():
            listeners = await trio.open_tcp_listeners(int(node["relay_port"]), host="127.0.0.1")

            async def handler(stream: trio.SocketStream, name: str = name, netns: str = node["netns"]) -> None:
                # one side going away mid-copy ends that connection; the relay goes on
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    await _serve(stream, root / "nodes" / name, netns)

            nursery.start_soon(trio.serve_listeners, handler, listeners)
        (root / "relay.ready").write_text(str(os.getpid()))


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m bazaar.node.hosts.relay DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bazaar.node.hosts.relay NET_DIR", file=sys.stderr)
        return 2
    try:
        trio.run(run, Path(args[0]))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
