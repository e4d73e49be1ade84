"""The node's view of the ledger: mempool, block import, attestations, finality and chain sync.

Consensus drivers and market apps plug in a **list** of :class:`BlockHooks`, so a consensus check and a
market contract compose: ``prepare(block)`` (async; e.g. fetch and re-evaluate a PoL winner's model) returns a
synchronous ledger check, ``check(parent_state, block)`` is a market contract re-executed on import,
``may_attest(block)`` says whether this validator endorses a block it could import, ``imported(block)``
observes every new head.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from bazaar.ledger import errors as lerr
from bazaar.ledger.apply import build_block
from bazaar.ledger.block import Block
from bazaar.ledger.chain import Chain
from bazaar.ledger.finality import (
    Attestation,
    Certificate,
    FinalityTracker,
    make_attestation,
    verify_certificate,
)
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx, make_tx
from bazaar.protocol import Envelope, KeyPair, ProtocolError, codec
from bazaar.protocol.chainmsg import MSG_ATTEST, MSG_BLOCK, MSG_CERT, MSG_TXS, PROTO_SYNC
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected, Transport

from .logs import Events
from .mempool import Mempool
from .notify import Changes

BlockCheck = Callable[[State, Block], None]
"""``check(parent_state, block)``: raise ``InvalidBlock`` to refuse the block."""


@dataclass
class BlockHooks:
    """One participant's block hooks (a consensus driver's, or a market role's)."""

    prepare: Callable[[Block], Awaitable[BlockCheck | None]] | None = None
    check: BlockCheck | None = None
    may_attest: Callable[[Block], bool] | None = None
    imported: Callable[[Block], None] | None = None


SYNC_BATCH = 64
STALE_BLOCKS = 3
_events = Events("chain")


class ChainService:
    """Owns the chain of one node and keeps it in step with its peers."""

    def __init__(self, chain: Chain, *, key: KeyPair, bls_secret: Any, transport: Transport,
                 publish: Callable[[str, dict[str, Any]], Awaitable[None]], network_id: str) -> None:
        self.chain = chain
        self.key = key
        self.bls_secret = bls_secret
        self.transport = transport
        self.publish = publish
        self.network_id = network_id
        self.mempool = Mempool()
        self.changes = Changes()
        self.tracker = FinalityTracker(network_id)
        self.hooks: list[BlockHooks] = []
        self.market = ""
        self._pending_blocks: dict[int, Block] = {}
        self._pending_certs: dict[int, Certificate] = {}
        self._syncing = trio.Lock()
        self._inflight: dict[int, int] = {}
        self.highest_seen = 0
        self.rewinds = 0
        transport.set_handler(PROTO_SYNC, self._serve_sync)

    # ------------------------------------------------------------------ queries
    @property
    def height(self) -> int:
        """Height of our head."""
        return self.chain.height

    @property
    def finalized_height(self) -> int:
        """Height of our last finalized block."""
        return self.chain.finalized_height

    def validator_set(self, height: int) -> dict[bytes, tuple[bytes, int]]:
        """account -> (BLS public key, weight) of the validators attesting block ``height``."""
        if height <= self.chain.height + 1:
            return self.chain.validator_set(min(height, self.chain.height + 1)) if height >= 1 else {}
        return self.chain.state.validator_set()

    # ------------------------------------------------------------------ transactions
    def next_nonce(self) -> int:
        """Next transaction nonce for our own account: above the state's and above every transaction of ours
        still in flight. In-flight nonces that have not landed within ``STALE_BLOCKS`` blocks (the transaction
        was lost, e.g. its round never settled) are given up, so a lost transaction never blocks later ones."""
        base = self.chain.state.nonce(self.key.public)
        self._inflight = {n: h for n, h in self._inflight.items() if n > base}
        if self._inflight and self.chain.height - min(self._inflight.values()) > STALE_BLOCKS:
            _events.warning("tx.nonces_reset", lost=sorted(self._inflight))
            self._inflight.clear()
        nonce = max([base, *self._inflight]) + 1
        self._inflight[nonce] = self.chain.height
        return nonce

    def sign_tx(self, kind: str, body: dict[str, Any], *, market: str | None = None, round: int = 0) -> Envelope:
        """Build and sign one of our own transactions with the next nonce (our market unless told)."""
        return make_tx(self.key, self.network_id, kind, {**body, "nonce": self.next_nonce()},
                       market=self.market if market is None else market, round=round)

    def forget_nonce(self, nonce: int) -> None:
        """Our transaction with ``nonce`` will never be sent (e.g. a refused escrow): reuse the nonce if nothing
        later was signed since."""
        if self._inflight and nonce == max(self._inflight):
            del self._inflight[nonce]

    def add_tx(self, raw: bytes) -> Envelope | None:
        """Verify a raw transaction and keep it in the mempool; None when it is unusable."""
        try:
            env = decode_tx(raw, self.network_id)
        except ProtocolError as err:
            _events.warning("tx.rejected", reason=err.reason, detail=err.detail[:200])
            return None
        if not self.mempool.add(env, raw, self.chain.state):
            return None
        self.changes.notify()
        return env

    async def broadcast_txs(self, raws: list[bytes]) -> None:
        """Keep transactions locally and gossip them in one batch."""
        for raw in raws:
            self.add_tx(raw)
        if raws:
            await self.publish(MSG_TXS, {"txs": raws})

    async def submit(self, raws: Sequence[bytes]) -> None:
        """Keep transactions locally and gossip them in one batch (alias of :meth:`broadcast_txs`)."""
        await self.broadcast_txs(list(raws))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once ``predicate()`` holds after some chain change (``trio.TooSlowError`` at the deadline)."""
        await self.changes.wait_for(predicate, timeout)

    @property
    def state(self) -> State:
        """The state at our head."""
        return self.chain.state

    def block(self, height: int) -> Block | None:
        """Our block at ``height``."""
        return self.chain.block(height)

    async def on_txs(self, env: Envelope) -> None:
        """Gossip handler: a batch of transactions."""
        for raw in env.body["txs"]:
            self.add_tx(raw)

    # ------------------------------------------------------------------ blocks
    def _candidates(self) -> list[bytes]:
        """Mempool transactions in block order, twice: a transaction that depends on another sender's (an
        escrow settlement on a lock signed by the payer) fails on the first pass and lands on the second, in
        the same block; duplicates of included ones are skipped by their nonce."""
        ordered = self.mempool.ordered()
        return ordered + ordered

    def would_include(self, consensus: dict[str, Any], *, timestamp_ms: int) -> int:
        """How many mempool transactions a block proposed now would carry (a dry run, nothing stored)."""
        timestamp_ms = max(timestamp_ms, self.chain.head.header.timestamp_ms if self.chain.head else 0)
        block, _, _ = build_block(self.chain.state, self.chain.genesis, self.key, self._candidates(),
                                  timestamp_ms=timestamp_ms, consensus=consensus)
        return len(block.txs)

    async def propose(self, consensus: dict[str, Any], *, timestamp_ms: int) -> Block:
        """Build a block on our head from the mempool, store it, gossip it and attest it."""
        timestamp_ms = max(timestamp_ms, self.chain.head.header.timestamp_ms if self.chain.head else 0)
        block, rejected = self.chain.build_and_import(self.key, self._candidates(), timestamp_ms=timestamp_ms,
                                                      consensus=consensus)
        included = set(block.txs)
        for raw, err in rejected:
            if raw not in included:
                _events.info("tx.skipped", reason=err.reason, detail=str(err)[:120])
        await self._imported(block, announce=True)
        return block

    async def on_block(self, env: Envelope) -> None:
        """Gossip handler: a new block."""
        try:
            block = Block.decode(env.body["block"], self.network_id)
        except (ProtocolError, lerr.LedgerError) as err:
            _events.warning("block.rejected", reason=getattr(err, "reason", "malformed"), detail=str(err)[:200])
            return
        await self.offer_block(block, source=env.sender)

    async def offer_block(self, block: Block, *, source: bytes | None) -> None:
        """Import ``block`` if it extends our head, buffer it if it is ahead, sync if we are behind."""
        h = block.header.height
        self.highest_seen = max(self.highest_seen, h)
        if h <= self.chain.height:
            try:
                evidence = self.chain.import_block(block)
            except lerr.LedgerError as err:
                _events.warning("block.rejected", height=h, reason=err.reason, detail=str(err)[:200])
                return
            if evidence is not None:
                _events.warning("block.equivocation", height=h, proposer=block.header.proposer)
                await self.broadcast_txs([self.sign_tx("evidence", evidence.body()).wire])
            return
        if h > self.chain.height + 1:
            self._pending_blocks[h] = block
            self._trim_pending()
            if source is not None:
                await self.sync_from(source)
            return
        await self._import(block, announce=False)
        while self.chain.height + 1 in self._pending_blocks:
            await self._import(self._pending_blocks.pop(self.chain.height + 1), announce=False)

    def _trim_pending(self) -> None:
        for table in (self._pending_blocks, self._pending_certs):
            for h in sorted(table)[:-SYNC_BATCH]:
                del table[h]
            for h in [h for h in table if h <= self.chain.finalized_height]:
                del table[h]

    async def _import(self, block: Block, *, announce: bool, certified: bool = False) -> bool:
        """Import one block. ``certified``: a verified finality certificate vouches for it (chain sync of
        history), so the market's re-execution hook (e.g. re-evaluating a PoL model) is skipped."""
        checks: list[BlockCheck] = []
        if not certified:
            for hooks in self.hooks:
                if hooks.check is not None:
                    checks.append(hooks.check)
                if hooks.prepare is not None:
                    prepared = await hooks.prepare(block)
                    if prepared is not None:
                        checks.append(prepared)
        try:
            self.chain.import_block(block, checks=checks)
        except lerr.LedgerError as err:
            _events.warning("block.rejected", height=block.header.height, reason=getattr(err, "reason", "invalid"),
                            detail=str(err)[:200])
            return False
        await self._imported(block, announce=announce)
        return True

    async def _imported(self, block: Block, *, announce: bool) -> None:
        """Everything that follows a new head: mempool, market hook, gossip, pending certificate, our vote."""
        self.mempool.prune(self.chain.state)
        h = block.header.height
        for hooks in self.hooks:
            if hooks.imported is not None:
                try:
                    hooks.imported(block)
                except Exception as err:  # an observer's bug must not stop the chain
                    _events.error("hook.failed", height=h, error=repr(err)[:200])
        _events.info("block.imported", height=h, hash=block.hash, proposer=block.header.proposer,
                     txs=len(block.txs))
        if announce:
            await self.publish(MSG_BLOCK, {"block": block.encode()})
        cert = self._pending_certs.pop(h, None)
        if cert is not None:
            self._finalize(cert)
        if all(hooks.may_attest is None or hooks.may_attest(block) for hooks in self.hooks):
            await self._attest(block)
        self.changes.notify()

    # ------------------------------------------------------------------ finality
    async def _attest(self, block: Block) -> None:
        if self.key.public not in self.validator_set(block.header.height):
            return
        att = make_attestation(self.bls_secret, self.key.public, self.network_id, block.header.height, block.hash)
        await self.publish(MSG_ATTEST, {"height": att.height, "hash": att.block_hash, "sig": att.signature})
        self._count(att)

    async def on_attestation(self, env: Envelope) -> None:
        """Gossip handler: a validator's vote for a block."""
        body = env.body
        self.highest_seen = max(self.highest_seen, body["height"])
        att = Attestation(body["height"], body["hash"], env.sender, body["sig"])
        self._count(att)

    def _count(self, att: Attestation) -> None:
        if att.height <= self.chain.finalized_height:
            return
        try:
            cert = self.tracker.add(att, self.validator_set(att.height))
        except lerr.LedgerError as err:
            _events.warning("attestation.rejected", reason=getattr(err, "reason", "invalid"), detail=str(err)[:200])
            return
        if cert is not None:
            self._finalize(cert)

    def _finalize(self, cert: Certificate) -> None:
        if cert.height > self.chain.height:
            self._pending_certs[cert.height] = cert
            return
        try:
            advanced = self.chain.add_certificate(cert)
        except lerr.InvalidAttestation as err:
            if err.reason == "wrong-block" and self._certifies_height(cert):
                self._switch_to(cert)
            else:
                _events.warning("certificate.rejected", height=cert.height, reason=err.reason,
                                detail=str(err)[:200])
            return
        except lerr.LedgerError as err:
            _events.warning("certificate.rejected", height=cert.height, detail=str(err)[:200])
            return
        if advanced:
            _events.info("block.final", height=cert.height, hash=cert.block_hash, signers=len(cert.signers))
            self.tracker.prune(cert.height + 1)
            self.changes.notify()

    def _certifies_height(self, cert: Certificate) -> bool:
        """Whether ``cert`` is a valid certificate for some block at a height we hold unfinalized."""
        if not self.chain.finalized_height < cert.height <= self.chain.height:
            return False
        try:
            verify_certificate(cert, self.validator_set(cert.height), self.network_id)
        except lerr.LedgerError:
            return False
        return True

    def _switch_to(self, cert: Certificate) -> None:
        """Fork choice: 2/3 of the stake finalized another block at a height we hold unfinalized, so drop our
        tail from that height and sync the certified block from peers."""
        ours = self.chain.block(cert.height)
        removed = self.chain.rewind(cert.height - 1)
        self.rewinds += 1
        _events.warning("chain.rewound", height=cert.height, removed=removed, dropped=ours.hash if ours else None,
                        certified=cert.block_hash)
        self._pending_certs[cert.height] = cert
        self.highest_seen = max(self.highest_seen, cert.height)
        self.changes.notify()

    def _cert_ok(self, cert: Certificate, block: Block) -> bool:
        try:
            verify_certificate(cert, self.validator_set(cert.height), self.network_id)
        except lerr.LedgerError:
            return False
        return cert.height == block.header.height and cert.block_hash == block.hash

    async def on_certificate(self, env: Envelope) -> None:
        """Gossip handler: an aggregated finality certificate."""
        cert = Certificate.decode(env.body["cert"])
        self.highest_seen = max(self.highest_seen, cert.height)
        if cert.height > self.chain.finalized_height:
            self._finalize(cert)

    # ------------------------------------------------------------------ sync
    async def _serve_sync(self, peer: bytes, request: bytes) -> bytes:
        req = codec.decode(request, max_size=1024)
        if not isinstance(req, dict) or not isinstance(req.get("from"), int) or req["from"] < 0:
            raise RejectRequest("sync request must be {from: int >= 0, limit: int}")
        limit = req.get("limit", SYNC_BATCH)
        if not isinstance(limit, int) or not 0 < limit <= SYNC_BATCH:
            limit = SYNC_BATCH
        blocks, certs = [], []
        for block in self.chain.blocks_after(req["from"], limit):
            cert = self.chain.certificate(block.height)
            blocks.append(block.encode())
            certs.append(cert.encode() if cert is not None else b"")
        return codec.encode({"blocks": blocks, "certs": certs, "height": self.chain.height})

    async def sync_from(self, peer: bytes, *, timeout: float = 20.0) -> int:
        """Fetch and import blocks past our head from ``peer``; returns how many were imported."""
        if self._syncing.locked():
            return 0
        imported = 0
        async with self._syncing:
            while True:
                try:
                    start = min(self.chain.height, self.chain.finalized_height)
                    raw = await self.transport.request(
                        peer, PROTO_SYNC, codec.encode({"from": start, "limit": SYNC_BATCH}), timeout=timeout)
                    answer = codec.decode(raw)
                    blocks = [Block.decode(b, self.network_id) for b in answer["blocks"]]
                    certs = [Certificate.decode(c) if c else None for c in answer["certs"]]
                except (PeerUnavailable, RemoteRejected, trio.TooSlowError, ProtocolError, lerr.LedgerError,
                        KeyError, TypeError) as err:
                    _events.warning("sync.failed", peer=peer, error=repr(err)[:200])
                    return imported
                if not blocks:
                    break
                progressed = False
                for block, cert in zip(blocks, certs, strict=False):
                    if block.height <= self.chain.height:
                        if cert is not None and cert.height > self.chain.finalized_height:
                            self._finalize(cert)
                            progressed = True
                        continue
                    certified = cert is not None and self._cert_ok(cert, block)
                    if block.height != self.chain.height + 1 or not await self._import(
                            block, announce=False, certified=certified):
                        return imported
                    imported += 1
                    progressed = True
                    if cert is not None:
                        self._finalize(cert)
                if len(blocks) < SYNC_BATCH or not progressed:
                    break
        if imported:
            _events.info("sync.done", peer=peer, imported=imported, height=self.chain.height)
        return imported

    async def sync_loop(self, *, interval: float = 2.0, probe_every: int = 5) -> None:
        """Catch up whenever a peer shows a height above ours (blocks, attestations, certificates), and
        probe one peer every ``probe_every`` intervals in case the network is idle after our restart."""
        tick = 0
        while True:
            peers = self.transport.peers()
            behind = self.highest_seen > self.chain.height or self.chain.finalized_height < self.highest_seen
            if peers and (behind or tick % probe_every == 0):
                for i in range(len(peers) if behind else 1):
                    await self.sync_from(peers[(tick + i) % len(peers)])
                    if self.chain.finalized_height >= self.highest_seen:
                        break
            tick += 1
            await trio.sleep(interval)

    def register(self, router: Any) -> None:
        """Attach the gossip handlers to a :class:`~bazaar.node.router.Router`."""
        router.on(MSG_BLOCK, self.on_block)
        router.on(MSG_ATTEST, self.on_attestation)
        router.on(MSG_CERT, self.on_certificate)
        router.on(MSG_TXS, self.on_txs)
