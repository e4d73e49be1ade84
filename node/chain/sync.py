"""Chain sync: serve our blocks (with their certificates) over ``/bazaar/sync/1``, fetch a peer's blocks past
our head, and a loop that catches up whenever a peer shows a height above ours."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from bazaar.ledger import errors as lerr
from bazaar.ledger.block import Block
from bazaar.ledger.finality import Certificate
from bazaar.protocol import ProtocolError, codec
from bazaar.protocol.chainmsg import PROTO_SYNC
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected

from ..logs import Events

if TYPE_CHECKING:
    from .service import ChainService

SYNC_BATCH = 64
_events = Events("chain")


class ChainSync:
    """Pulls blocks from peers; one sync at a time."""

    def __init__(self, svc: ChainService) -> None:
        self.svc = svc
        self._syncing = trio.Lock()

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        req = codec.decode(request, max_size=1024)
        if not isinstance(req, dict) or not isinstance(req.get("from"), int) or req["from"] < 0:
            raise RejectRequest("sync request must be {from: int >= 0, limit: int}")
        limit = req.get("limit", SYNC_BATCH)
        if not isinstance(limit, int) or not 0 < limit <= SYNC_BATCH:
            limit = SYNC_BATCH
        blocks, certs = [], []
        for block in self.svc.chain.blocks_after(req["from"], limit):
            cert = self.svc.chain.certificate(block.height)
            blocks.append(block.encode())
            certs.append(cert.encode() if cert is not None else b"")
        return codec.encode({"blocks": blocks, "certs": certs, "height": self.svc.chain.height})

    async def sync_from(self, peer: bytes, *, timeout: float = 20.0) -> int:
        """Fetch and import blocks past our head from ``peer``; returns how many were imported."""
        if self._syncing.locked():
            return 0
        imported = 0
        async with self._syncing:
            while True:
                try:
                    start = min(self.svc.chain.height, self.svc.chain.finalized_height)
                    raw = await self.svc.transport.request(
                        peer, PROTO_SYNC, codec.encode({"from": start, "limit": SYNC_BATCH}), timeout=timeout)
                    answer = codec.decode(raw)
                    blocks = [Block.decode(b, self.svc.network_id) for b in answer["blocks"]]
                    certs = [Certificate.decode(c) if c else None for c in answer["certs"]]
                except (PeerUnavailable, RemoteRejected, trio.TooSlowError, ProtocolError, lerr.LedgerError,
                        KeyError, TypeError) as err:
                    _events.warning("sync.failed", peer=peer, error=repr(err)[:200])
                    return imported
                if not blocks:
                    break
                progressed = False
                for block, cert in zip(blocks, certs, strict=False):
                    if block.height <= self.svc.chain.height:
                        if cert is not None and cert.height > self.svc.chain.finalized_height:
                            self.svc.finality.finalize(cert)
                            progressed = True
                        continue
                    certified = cert is not None and self.svc.finality.cert_ok(cert, block)
                    if block.height != self.svc.chain.height + 1 or not await self.svc.import_block(
                            block, announce=False, certified=certified):
                        return imported
                    imported += 1
                    progressed = True
                    if cert is not None:
                        self.svc.finality.finalize(cert)
                if len(blocks) < SYNC_BATCH or not progressed:
                    break
        if imported:
            _events.info("sync.done", peer=peer, imported=imported, height=self.svc.chain.height)
        return imported

    async def loop(self, *, interval: float = 2.0, probe_every: int = 5) -> None:
        """Catch up whenever a peer shows a height above ours (blocks, attestations, certificates), and
        probe one peer every ``probe_every`` intervals in case the network is idle after our restart."""
        tick = 0
        probed = False  # a restarted node probes as soon as it has a peer, not ``probe_every`` ticks later
        while True:
            peers = self.svc.transport.peers()
            chain, seen = self.svc.chain, self.svc.highest_seen
            behind = seen > chain.height or chain.finalized_height < seen
            if peers and (behind or not probed or tick % probe_every == 0):
                probed = True
                for i in range(len(peers) if behind else 1):
                    await self.sync_from(peers[(tick + i) % len(peers)])
                    if self.svc.chain.finalized_height >= self.svc.highest_seen:
                        break
            tick += 1
            await trio.sleep(interval)

