"""``replay-flood``: re-broadcast what the network already saw, at a high rate.

The node keeps the last valid gossip frames its peers sent (a router tap) and re-publishes them unchanged, and
re-gossips the transactions they carried in fresh ``chain/txs`` envelopes of its own. Honest routers refuse the
frames by the replay guard (reason ``replay``: the sender's sequence number was seen), and honest mempools
refuse the transactions (``duplicate`` while pending, ``stale-nonce`` once included); the admission caps keep
the pool bounded, so rounds keep settling.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

from bazaar.protocol import Envelope
from bazaar.protocol.chainmsg import MSG_TXS
from bazaar.protocol.transport import Delivery

from ..logs import Events

if TYPE_CHECKING:
    from ..runtime import Node

FRAMES_PER_S = 100.0
"""How many stored frames the flooder re-publishes per second (in bursts of ``BURST``)."""
BURST = 10
KEEP_FRAMES = 256
"""The newest frames kept for replay."""
KEEP_TXS = 512
"""The newest transactions kept for re-gossip."""
TXS_PER_BATCH = 64
LOG_EVERY = 1000
"""One ``byzantine.replayed`` event per this many frames sent."""
_events = Events("byzantine")


class ReplayFlood:
    """The frames and transactions one node saw, and the loop that floods them back."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.frames: deque[tuple[str, bytes]] = deque(maxlen=KEEP_FRAMES)
        self.txs: deque[bytes] = deque(maxlen=KEEP_TXS)
        self.sent = 0

    def tap(self, delivery: Delivery, env: Envelope) -> None:
        """Router tap: keep a verified frame from a peer (and the transactions it carries)."""
        self.frames.append((delivery.topic, delivery.data))
        if env.type == MSG_TXS:
            self.txs.extend(raw for raw in env.body["txs"] if isinstance(raw, bytes))

    async def run(self) -> None:
        """Flood for the node's lifetime: ``BURST`` stored frames, then one batch of old transactions, paced at
        ``FRAMES_PER_S``."""
        transport = self.node.transport
        cursor = logged = 0
        while True:
            await trio.sleep(BURST / FRAMES_PER_S)
            frames = list(self.frames)
            for i in range(min(BURST, len(frames))):
                topic, data = frames[(cursor + i) % len(frames)]
                await transport.publish(topic, data)
                self.sent += 1
            cursor += BURST
            txs = list(self.txs)[-TXS_PER_BATCH:]
            if txs:
                await self.node.publish_chain(MSG_TXS, {"txs": txs})
                self.sent += 1
            if self.sent >= logged + LOG_EVERY:
                logged = self.sent
                _events.info("byzantine.replayed", frames=self.sent)
