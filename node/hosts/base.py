"""The ``Hosts`` strategy of the launcher: each node's listen address, command prefix and control port."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


class HostsError(RuntimeError):
    """The hosts of a network could not be set up or reached; the message says what and why."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bound without SO_REUSEPORT, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hosts:
    """Where the nodes of one network run. The launcher calls, in order: :meth:`setup` (once, before any
    node starts), :meth:`listen_addr` (per node, for its ``node.toml`` and everyone's address book),
    :meth:`prefix` (per node start), :meth:`control_port` (per node once it is ready); ``net down`` calls
    :meth:`teardown` with the record :meth:`setup` returned (kept in ``net.json`` under ``hosts``).

    This base class is loopback: every node on 127.0.0.1, nothing to set up.
    """

    kind = "loopback"

    def setup(self, root: Path, names: list[str]) -> dict[str, Any]:
        """Create what the nodes need (namespaces, links); returns the record ``teardown`` needs."""
        return {"kind": self.kind}

    def listen_addr(self, name: str) -> str:
        """The libp2p multiaddr node ``name`` listens on (and that its peers dial)."""
        return f"/ip4/127.0.0.1/tcp/{free_port()}"

    def prefix(self, name: str) -> list[str]:
        """The command that runs node ``name``'s process where it belongs (empty: run it as it is)."""
        return []

    def control_port(self, name: str, ready_port: int) -> int:
        """The port on this host's 127.0.0.1 that reaches node ``name``'s HTTP API (it bound ``ready_port``)."""
        return ready_port


Loopback = Hosts

