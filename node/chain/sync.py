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
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected

from ..logs import Events

if TYPE_CHECKING:
    from .service import ChainService

SYNC_BATCH = 64
RESYNC_PAUSE_S = 1.0
"""A peer whose last sync brought nothing is not asked again for this long."""
MAX_TRACKED_PEERS = 1024
SWEEP_PEERS = 8
"""Peers one sweep asks at most when we are behind (the next sweep, an interval later, starts at the next ones):
a hub of 49 peers that saw a block before its certificate asked all 49 in a row, every round (docs/adr/0147)."""
UNSYNCED_INTERVAL_S = 0.1
"""Until it is synced, a (re)started node looks for a peer to sync from this often."""
_events = Events("chain")
_REFUSED_ANSWER = (RemoteRejected, trio.TooSlowError, ProtocolError, lerr.LedgerError, KeyError, TypeError)
"""What a sync answer we refuse raises (a refusal, a timeout, bytes that do not decode, a map of the wrong shape)."""


class ChainSync:
    """Pulls blocks from peers; one sync at a time."""

    def __init__(self, svc: ChainService) -> None:
        self.svc = svc
        self._syncing = trio.Lock()
        self._fruitless: dict[bytes, float] = {}  # peer -> when a sync from it last brought nothing
        self.requests = 0
        self.answered = False  # some peer answered a sync request since we started
        self.certified_seen = 0  # the highest certified height a peer backed (or a verified certificate showed)
        self._claim: int | None = None
        self._stuck_at: int | None = None  # our finalized height at the last tick, when it lagged what we saw
        self.pulled_head = -1
        """The height of the last block a pull imported (:meth:`caught_up`)."""

    @property
    def synced(self) -> bool:
        """Whether we may propose and attest: a peer answered since we started and we hold the highest
        certified head the peers showed us (a restarted node first catches up, so it never builds on an old
        head). A peer's reported certified height counts only once its blocks got us there."""
        return self.answered and self.svc.chain.finalized_height >= self.certified_seen

    def caught_up(self) -> bool:
        """Whether our head came by a pull — we had fallen behind the network — rather than live (its proposer's
        announcement, gossip): the draw then asks the next attempts' proposers before it proposes on it
        (docs/adr/0204)."""
        return self.pulled_head == self.svc.chain.height

    def saw_certified(self, height: int) -> None:
        """A verified certificate (or a peer that backed its claim) shows ``height`` is final."""
        was = self.synced
        self.certified_seen = max(self.certified_seen, height)
        if was != self.synced:
            self.svc.changes.notify()

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        try:
            req = codec.decode(request, max_size=1024)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        start = req.get("from") if isinstance(req, dict) else None
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            raise RejectRequest(ProtocolReason.MALFORMED)  # {from: int >= 0, limit: int}
        limit = req.get("limit", SYNC_BATCH)
        if not isinstance(limit, int) or not 0 < limit <= SYNC_BATCH:
            limit = SYNC_BATCH
        blocks, certs = [], []
        for block in self.svc.chain.blocks_after(req["from"], limit):
            cert = self.svc.chain.certificate(block.height)
            blocks.append(block.encode())
            certs.append(cert.encode() if cert is not None else b"")
        return codec.encode({"blocks": blocks, "certs": certs, "height": self.svc.chain.height,
                             "finalized": self.svc.chain.finalized_height})

    async def sync_from(self, peer: bytes, *, timeout: float = 20.0) -> int:
        """Fetch and import blocks past our head from ``peer``; returns how many were imported."""
        if self._syncing.locked():
            return 0
        last = self._fruitless.get(peer)
        if last is not None and trio.current_time() - last < RESYNC_PAUSE_S:
            return 0  # it had nothing for us a moment ago: a peer's claim cannot make us ask again and again
        imported, reached = 0, False
        before = self.svc.chain.finalized_height
        was_synced = self.synced
        try:
            async with self._syncing:
                imported, reached = await self._pull(peer, timeout)
                if reached and self._claim is not None:
                    self.answered = True
                    if self.svc.chain.finalized_height >= self._claim:  # it backed its claim with blocks
                        self.certified_seen = max(self.certified_seen, self._claim)
                    else:
                        _events.warning("sync.unbacked_claim", peer=peer, claimed=self._claim,
                                        finalized=self.svc.chain.finalized_height)
                if self.synced != was_synced:
                    self.svc.changes.notify()
        finally:
            if imported or self.svc.chain.finalized_height > before:
                self._fruitless.pop(peer, None)
            elif reached:  # an unreachable peer cost nothing; one that answered nothing (or too slowly) did
                if len(self._fruitless) >= MAX_TRACKED_PEERS:
                    self._fruitless.clear()
                self._fruitless[peer] = trio.current_time()
        if imported:
            _events.info("sync.done", peer=peer, imported=imported, height=self.svc.chain.height)
        return imported

    async def _pull(self, peer: bytes, timeout: float) -> tuple[int, bool]:
        """Fetch and import batches from ``peer`` until it has no more (the sync lock is held); returns how
        many blocks were imported and whether the peer was reached (its certified height in ``_claim``)."""
        imported = 0
        self._claim = None
        while True:
            try:
                start = min(self.svc.chain.height, self.svc.chain.finalized_height)
                blocks, certs, claim = await self._ask(peer, start, SYNC_BATCH, timeout)
                self._claim = max(self._claim or 0, claim if isinstance(claim, int) else 0)
            except PeerUnavailable as err:
                _events.warning("sync.failed", peer=peer, error=repr(err)[:200])
                return imported, imported > 0
            except _REFUSED_ANSWER as err:  # the peer's answer is refused: say why by its code
                reason = getattr(err, "reason", None)
                if isinstance(err, (KeyError, TypeError)):
                    reason = ProtocolReason.MALFORMED  # an answer of the wrong shape
                _events.warning("sync.failed", peer=peer, reason=reason, error=repr(err)[:200])
                return imported, True
            if not blocks:
                break
            self._take_certified_branch(blocks, certs, peer)
            vouched = self._vouched(blocks, certs)
            progressed = False
            for i, (block, cert) in enumerate(zip(blocks, certs, strict=True)):
                if block.height <= self.svc.chain.height:
                    if cert is not None and cert.height > self.svc.chain.finalized_height:
                        self.svc.finality.finalize(cert)
                        progressed = True
                    continue
                certified = i in vouched
                if block.height != self.svc.chain.height + 1 or not await self.svc.import_block(
                        block, announce=False, certified=certified):
                    return imported, True
                imported += 1
                progressed = True
                self.pulled_head = block.height
                if cert is not None:
                    self.svc.finality.finalize(cert)
            if len(blocks) < SYNC_BATCH or not progressed:
                break
        return imported, True

    def _vouched(self, blocks: list[Block], certs: list[Certificate | None]) -> set[int]:
        """Indices of the pulled blocks a certificate vouches for: a block whose own certificate verifies, and
        every block before it in the batch that it descends from by parent hash (a final block's ancestors are
        final). A height that never got its own certificate — the round after a partition, say, whose later
        height did — is then imported without the market's re-execution check, which it could fail only for
        lack of what the node missed (a PoL round's submissions while it was paused), and which stopped every
        later pull at that height (docs/adr/0199)."""
        vouched: set[int] = set()
        for i in range(len(blocks) - 1, -1, -1):
            cert = certs[i]
            if (i in vouched or cert is None or blocks[i].height <= self.svc.chain.height
                    or not self.svc.finality.cert_ok(cert, blocks[i])):
                continue
            vouched.add(i)
            j = i
            while j > 0 and blocks[j].header.parent == blocks[j - 1].hash:
                j -= 1
                vouched.add(j)
        return vouched

    def _take_certified_branch(self, blocks: list[Block], certs: list[Certificate | None], peer: bytes) -> None:
        """Fork choice on a pulled batch: where the peer's blocks differ from ours above our finalized height and
        a block of the batch that descends from the first differing one carries a certificate that verifies,
        drop our tail from that height, so the batch imports (docs/adr/0196). A node that took the losing block
        of a split height otherwise kept it: the certificate came for a later height, whose parent it lacked,
        and every pull after it stopped at ``unknown-parent``."""
        chain = self.svc.chain
        start = next((i for i, b in enumerate(blocks) if b.height <= chain.height
                      and (ours := chain.block(b.height)) is not None and ours.hash != b.hash), None)
        if start is None or blocks[start].height <= chain.finalized_height:
            return
        end = start + 1
        while end < len(blocks) and blocks[end].header.parent == blocks[end - 1].hash:
            end += 1
        for i in range(end - 1, start - 1, -1):
            cert = certs[i]
            if cert is not None and self.svc.finality.cert_ok(cert, blocks[i]):
                self.svc.finality.drop_from(blocks[start].height, blocks[i].hash, peer=peer)
                return

    async def _ask(self, peer: bytes, start: int, limit: int,
                   timeout: float) -> tuple[list[Block], list[Certificate | None], object]:
        """One ``/bazaar/sync/1`` request: ``peer``'s blocks after height ``start`` (at most ``limit``), their
        certificates, and the finalized height it claims (unchecked).

        Raises:
            PeerUnavailable: no stream to ``peer``; or one of ``_REFUSED_ANSWER``: an answer we refuse.
        """
        self.requests += 1
        raw = await self.svc.transport.request(
            peer, PROTO_SYNC, codec.encode({"from": start, "limit": limit}), timeout=timeout)
        answer = codec.decode(raw)
        blocks = [Block.decode(b, self.svc.network_id) for b in answer["blocks"]]
        certs = [Certificate.decode(c) if c else None for c in answer["certs"]]
        if len(certs) != len(blocks):  # one certificate (or b"") per block
            raise ProtocolError(f"{len(blocks)} blocks with {len(certs)} certificates",
                                reason=ProtocolReason.MALFORMED)
        return blocks, certs, answer.get("finalized", 0)

    async def fetch_next(self, peer: bytes, *, timeout: float) -> bool:
        """Ask ``peer`` for the block after our head and import it; whether it was imported. A fallback proposer
        asks the silent-looking earlier proposers first, whose block may only be late (docs/adr/0196). Anything
        that goes wrong is logged and answered False: the caller proposes as before."""
        chain = self.svc.chain
        height = chain.height
        try:
            blocks, _, _ = await self._ask(peer, height, 1, timeout)
        except (PeerUnavailable, *_REFUSED_ANSWER) as err:
            _events.info("sync.fetch_failed", peer=peer, height=height + 1, error=repr(err)[:200])
            return False
        if not blocks:
            return False
        block = blocks[0]
        if block.height != height + 1 or chain.height != height:
            return chain.height > height  # a block arrived meanwhile: as good
        imported = await self.svc.import_block(block, announce=False)
        if imported:
            self.pulled_head = block.height
        return imported

    async def loop(self, *, interval: float = 2.0, probe_every: int = 5) -> None:
        """Catch up whenever a peer shows a height above ours (blocks, attestations, certificates), and
        probe one peer every ``probe_every`` intervals in case the network is idle after our restart.

        A block we lack sends us to our peers at once. A certificate we lack does only once our finalized
        height has not moved for a whole interval (or while we are not synced): every block waits a moment
        for its certificate, and a sweep in that moment asked up to eight peers for what was on its way
        (docs/adr/0193)."""
        tick = 0
        probed = False  # a restarted node probes as soon as it has a peer, not ``probe_every`` ticks later
        while True:
            peers = self.svc.transport.peers()
            behind = self.behind()
            if peers and (behind or not probed or tick % probe_every == 0):
                probed = True
                await self.sweep(peers, tick, behind=behind)
            tick += 1
            await trio.sleep(interval if self.synced else min(interval, UNSYNCED_INTERVAL_S))

    def behind(self) -> bool:
        """Whether the loop's tick now should sync from several peers: a peer showed a block we lack, or our
        finalized height lags what we saw and has not moved since the last tick (at once while we are not
        synced). Called once per tick: it remembers the finalized height it saw lagging."""
        chain, seen = self.svc.chain, self.svc.highest_seen
        lagging = chain.finalized_height < seen
        stale = lagging and (self._stuck_at == chain.finalized_height or not self.synced)
        self._stuck_at = chain.finalized_height if lagging else None
        return seen > chain.height or stale

    async def sweep(self, peers: list[bytes], tick: int, *, behind: bool) -> None:
        """Sync from every peer when behind (else from one); when none of them had anything past our head or
        finalized height, no peer backs the height we were shown: forget it, so a claim that nobody can
        substantiate (a lie, or a block only its proposer holds) costs one sweep, not one every interval."""
        chain = self.svc.chain
        before = (chain.height, chain.finalized_height)
        count = min(len(peers), SWEEP_PEERS) if behind else 1
        for i in range(count):
            await self.sync_from(peers[(tick * count + i) % len(peers)])
            if chain.finalized_height >= self.svc.highest_seen:
                break
        if behind and (chain.height, chain.finalized_height) == before:
            self.svc.highest_seen = min(self.svc.highest_seen, chain.finalized_height)

