"""Where the nodes of a local network run: one strategy object the launcher asks (docs/adr/0111-netns-runner.md).

``Loopback`` (the default) puts every node on 127.0.0.1 with a free port; ``bazaar.node.hosts.netns.Netns`` gives
each node its own Linux network namespace joined by veth pairs to a bridge.
"""

from __future__ import annotations

from .base import Hosts, HostsError, Loopback

__all__ = ["Hosts", "HostsError", "Loopback"]
