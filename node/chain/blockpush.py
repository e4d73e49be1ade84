"""A proposer's new block sent straight to every node (docs/adr/0192): one copy each, where gossip costs every node
a receive per mesh peer and a relay of a block of tens of kilobytes.

A proposer pushes its block (``/bazaar/block/1``) to every peer it is connected to, validators first. On a sparse
topology (docs/adr/0123) it is connected to some nodes only; its request to the network's aggregator, a hub every
node keeps connected, then lists the peers it pushed to, and the aggregator pushes the block on to its other peers
once it holds it. Whoever finds that a node may lack the block — a push failed, or nobody it could reach was left
to relay to the rest — gossips it as well, so no node depends on the pushes alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bazaar.ledger import errors as lerr
from bazaar.ledger.block import Block
from bazaar.protocol import ProtocolError, codec
from bazaar.protocol.chainmsg import MAX_BLOCK, MSG_BLOCK, PROTO_BLOCK
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.keys import PUBKEY_LEN
from bazaar.protocol.transport import RejectRequest

from ..logs import Events
from ..push import push_to_peers

if TYPE_CHECKING:
    from .service import ChainService

_events = Events("chain")
BLOCK_PUSH_TIMEOUT = 5.0
"""Deadline of one peer's answer to a block pushed to it (it answers once it has offered the block to its chain);
when any fails, the block is gossiped too."""
MAX_RELAY_LIST = 4096
"""Longest list of already-served peers a relay request may carry."""
MAX_REQUEST = MAX_BLOCK + MAX_RELAY_LIST * (PUBKEY_LEN + 2) + 64


class BlockPush:
    """Pushes our blocks, serves pushed ones, relays a proposer's block as the aggregator."""

    def __init__(self, svc: ChainService) -> None:
        self.svc = svc
        self.counts = {"pushed": 0, "relayed": 0, "gossiped": 0}
        """Copies of blocks we pushed as their proposer, copies we relayed as the aggregator, and how often we
        gossiped a block as well (``GET /status`` ``block_pushes``)."""

    async def announce(self, block: Block) -> None:
        """Spread a block we proposed: pushed in the background when the scenario says so (``[chain] blocks``)
        and the node can send in the background, else gossiped."""
        svc = self.svc
        raw = block.encode()
        if svc.blocks != "push" or svc.spawn is None:
            await svc.publish(MSG_BLOCK, {"block": raw})
            return
        svc.spawn("block.push", self._push, raw, block.header.height)

    async def _push(self, raw: bytes, height: int) -> None:
        svc = self.svc
        own = svc.key.public
        peers = [k for k in svc.transport.peers() if k != own]
        hub = svc.aggregator
        relayed = hub is not None and hub != own and hub in peers and len(peers) < svc.network_size - 1
        special = {hub: codec.encode({"block": raw, "relay": peers})} if relayed and hub is not None else None
        pushed = await push_to_peers(svc.transport, own, PROTO_BLOCK, codec.encode({"block": raw}),
                                     timeout=BLOCK_PUSH_TIMEOUT, peers=peers, first=svc.validator_set(height),
                                     special=special)
        self.counts["pushed"] += pushed.landed
        if pushed.failed or (not relayed and pushed.short(svc.network_size)):
            await self._gossip(raw, height, failed=pushed.failed, pushed=pushed.landed)

    async def _relay(self, raw: bytes, height: int, served: set[bytes]) -> None:
        """As the aggregator: push the proposer's block to our peers it did not serve itself."""
        svc = self.svc
        own = svc.key.public
        peers = [k for k in svc.transport.peers() if k != own and k not in served]
        pushed = await push_to_peers(svc.transport, own, PROTO_BLOCK, codec.encode({"block": raw}),
                                     timeout=BLOCK_PUSH_TIMEOUT, peers=peers, first=svc.validator_set(height))
        self.counts["relayed"] += pushed.landed
        if pushed.failed or len(served | {own}) + pushed.landed < svc.network_size:
            await self._gossip(raw, height, failed=pushed.failed, pushed=pushed.landed)

    async def _gossip(self, raw: bytes, height: int, **why: Any) -> None:
        self.counts["gossiped"] += 1
        _events.info("block.gossiped", height=height, **why)
        await self.svc.publish(MSG_BLOCK, {"block": raw})

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        """``/bazaar/block/1`` handler: ``{block, relay?}``, a block pushed to us, offered to our chain as a
        gossiped one would be (it is checked in full on import); answered once offered. ``relay`` (the peers its
        proposer pushed it to) asks us, the aggregator, to push it on to our other peers: honoured only from the
        block's own proposer and once the block is ours at its height, so nobody can make us spread what we
        refused or what is not theirs."""
        if len(request) > MAX_REQUEST:
            raise RejectRequest(ProtocolReason.OVERSIZE)
        try:
            body = codec.decode(request, max_size=MAX_REQUEST)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if not _well_formed(body):
            raise RejectRequest(ProtocolReason.MALFORMED)
        relay = body.get("relay")
        try:
            block = Block.decode(body["block"], self.svc.network_id)
        except (ProtocolError, lerr.LedgerError) as err:
            raise RejectRequest(getattr(err, "reason", None) or ProtocolReason.MALFORMED) from err
        svc = self.svc
        await svc.offer_block(block, source=peer)
        if relay is not None and peer == block.header.proposer and svc.spawn is not None:
            held = svc.chain.block(block.header.height)
            if held is not None and held.hash == block.hash:
                svc.spawn("block.relay", self._relay, body["block"], block.header.height, {peer, *relay})
        return b""


def _well_formed(body: Any) -> bool:
    """``{block: bytes, relay?: [32-byte key, …]}`` with at most ``MAX_RELAY_LIST`` keys."""
    if not isinstance(body, dict) or not set(body) <= {"block", "relay"} or not isinstance(body.get("block"), bytes):
        return False
    relay = body.get("relay")
    return relay is None or (isinstance(relay, list) and len(relay) <= MAX_RELAY_LIST
                             and all(isinstance(k, bytes) and len(k) == PUBKEY_LEN for k in relay))
