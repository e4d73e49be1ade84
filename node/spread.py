"""How a node sends a message of a gossip topic (docs/adr/0194): pushed straight to every node of the scenario
that subscribes to the topic when we are connected to all of them — one copy each, none relayed — and gossiped
otherwise, or as well when a push fails. A node that missed both still has what the protocol gives it for a lost
gossip message (a collector's deadline, a resend, chain sync).

On networks of up to 16 nodes every node is connected to every other (docs/adr/0123), so every market message
is pushed; on larger ones the scenario's first nodes (its leaders and hubs) push theirs, the others gossip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bazaar.protocol.chainmsg import chain_topic
from bazaar.protocol.transport import Transport

from .markets.spec import MarketSpec
from .push import push_each

if TYPE_CHECKING:
    from .runtime import Node

PUSH_TIMEOUT = 5.0
"""Deadline of one push; when any fails, the message is gossiped too."""


def node_topics(network_id: str, spec: MarketSpec, role: str) -> list[str]:
    """The gossip topics a node of ``role`` subscribes to: the chain's, its market's, and its role's audiences'
    (``MarketSpec.gossip_among``, docs/adr/0188)."""
    return [chain_topic(network_id), *spec.topics(network_id, role)]


class Spread:
    """One node's choice between pushing and gossiping, per topic."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.counts = {"pushed": 0, "gossiped": 0, "made_up": 0}
        """Messages pushed to every subscriber, gossiped because we were not connected to all, and gossiped as
        well because a push failed (``GET /status`` ``msg_pushes``)."""
        self._subscribers: dict[str, frozenset[bytes] | None] = {}

    def subscribers(self, topic: str) -> frozenset[bytes] | None:
        """Keys of the other nodes of the scenario that subscribe to ``topic``; None when one of them has no key in
        our address book."""
        if topic not in self._subscribers:
            node = self.node
            keys: set[bytes] | None = set()
            entries = {p.name: p for p in node.peers()}
            for name, role in node.scenario.nodes:
                if name == node.name or topic not in node_topics(node.network_id, node.spec, role):
                    continue
                entry = entries.get(name)
                if entry is None or not entry.key or keys is None:
                    keys = None
                    continue
                keys.add(entry.key)
            self._subscribers[topic] = frozenset(keys) if keys is not None else None
        return self._subscribers[topic]

    async def send(self, topic: str, data: bytes) -> None:
        """Push ``data`` to every subscriber of ``topic`` in the background when we can reach all of them and the
        scenario says so (``[chain] messages``); gossip it otherwise."""
        node = self.node
        audience = self.subscribers(topic)
        if node.scenario.chain["messages"] == "push" and audience and audience <= node.connected():
            self.counts["pushed"] += 1
            node.spawn("msg.push", self._push, topic, data, audience)
            return
        self.counts["gossiped"] += 1
        await node.transport.publish(topic, data)

    async def _push(self, topic: str, data: bytes, audience: frozenset[bytes]) -> None:
        transport: Transport = self.node.transport

        async def send(peer: bytes) -> None:
            await transport.push(peer, topic, data, timeout=PUSH_TIMEOUT)

        pushed = await push_each(sorted(audience), send)
        if pushed.failed:
            self.counts["made_up"] += 1
            await transport.publish(topic, data)
