"""The node's view of the ledger: mempool, block import (through the hooks), proposing; it composes the other
jobs — finality (``finality.py``), sync (``sync.py``), our own nonces (``nonces.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from bazaar.ledger import errors as lerr
from bazaar.ledger.apply import build_block
from bazaar.ledger.block import Block
from bazaar.ledger.chain import Chain
from bazaar.ledger.checks import BlockCheck
from bazaar.ledger.evidence import check_evidence
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx, make_tx
from bazaar.protocol import Envelope, KeyPair, ProtocolError, codec
from bazaar.protocol.chainmsg import (
    MSG_ATTEST,
    MSG_BLOCK,
    MSG_CERT,
    MSG_TXS,
    PROTO_ATTEST,
    PROTO_BLOCK,
    PROTO_CERT,
    PROTO_SYNC,
    PROTO_TXS,
)
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.messages import REGISTRY
from bazaar.protocol.transport import MAX_GOSSIP, PeerUnavailable, RejectRequest, RemoteRejected, Transport

from ..clock import Clock
from ..logs import Events
from ..mempool import Mempool
from ..notify import Changes
from .blockpush import BlockPush
from .finality import Finality
from .hooks import BlockHooks, batch_verdict
from .nonces import OwnNonces
from .sync import SYNC_BATCH, ChainSync

_events = Events("chain")
TXS_PER_MESSAGE = 128
"""Transactions gossiped in one ``chain/txs`` message (its schema takes at most 256)."""
BLOCK_TX_BYTES = MAX_GOSSIP * 3 // 4
"""Bytes of mempool transactions one block carries at most: a block travels whole in one gossip message
(``MAX_GOSSIP``), with room left for its header, proof and the market contracts' own transactions. Found by
``bazaar sim`` (docs/sim.md): 300 cloudchain agents posting at once made a 337 KB block no peer could receive."""


DIRECT_TXS_TIMEOUT = 2.0
"""Deadline of the direct push of a sealed batch to the drawn proposer (a failed push gossips the batch at once)."""
SEALED_GOSSIP_DELAY_S = 1.0
"""A sealed batch pushed to the drawn proposer is gossiped only if some of it is still pending here this long after
(the proposer was silent or left some out), at most half the driver's fallback (docs/adr/0176)."""


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
        self.mempool = Mempool(own=key.public)  # our own transactions always get a slot
        self.changes = Changes()
        self.hooks: list[BlockHooks] = []
        self.market = ""
        self.clock = Clock()
        """The node's wall clock (block timestamps); the runtime hands it the node's own."""
        self._pending_blocks: dict[int, Block] = {}
        self.observe_import: Callable[[float], None] = lambda seconds: None
        """Called with the seconds each successful :meth:`import_block` took (the node's metrics)."""
        self.highest_seen = 0
        self._sealed: set[bytes] = set()
        """Digests of pending transactions that came in a sealed batch (:attr:`sealed`)."""
        self.direct_txs_served = 0
        """Sealed batches sent to us directly as the drawn proposer (``/bazaar/txs/1``)."""
        self.sealed_forwards = 0
        """Sealed batches we passed on to the node drawn after us (:meth:`_forward_sealed`)."""
        self._held: list[bytes] = []
        """Sealed batches pushed to us as the drawn proposer: what the next block leaves out of them (they came while
        we built ours, or another node's block came first) is passed on once to the node drawn then (docs/adr/0211)."""
        self.sealed_pushes = {"landed": 0, "gossiped": 0, "failed": 0}
        """How our sealed batches pushed to the drawn proposer ended: all landed before the gossip delay, some
        gossiped after it, or the push failed and the whole batch was gossiped."""
        self.next_proposer: Callable[[], bytes | None] | None = None
        """The account drawn to propose the next block at its first attempt (the ``pos``/``lottery`` driver hands
        it; None for other rules): a sealed batch goes to it directly, and is gossiped only if it is still pending
        here ``sealed_gossip_delay_s`` later (docs/adr/0159, 0176)."""
        self.sealed_gossip_delay_s = SEALED_GOSSIP_DELAY_S
        """How long a sealed batch pushed to the drawn proposer waits before its leftovers are gossiped (the driver
        sets it below its fallback, so a silent proposer's replacement holds the batch in time)."""
        self.network_size = 0
        """Nodes in the scenario (0: unknown): the aggregator gossips its certificate too when it reached fewer
        peers (docs/adr/0181)."""
        self.aggregator: bytes | None = None
        """The account validators send their votes to (the scenario's first node, docs/adr/0148, 0189); None:
        votes are gossiped."""
        self.votes = "aggregator"
        """The scenario's ``[chain] votes``: ``aggregator`` (direct requests, the certificate pushed back) or
        ``gossip`` (docs/adr/0189)."""
        self.blocks = "push"
        """The scenario's ``[chain] blocks``: ``push`` (a proposer sends its block to every peer directly, gossiping
        it only when that falls short) or ``gossip`` (docs/adr/0192)."""
        self.spawn: Callable[..., None] | None = None
        """``spawn(name, fn, *args)``: run a background task in the node's nursery (the runtime hands it the
        node's own). Without it, votes are always gossiped (no background sends)."""
        self.nonces = OwnNonces(chain, key.public)
        self.finality = Finality(self)
        self.sync = ChainSync(self)
        self.blockpush = BlockPush(self)
        transport.set_handler(PROTO_SYNC, self.sync.serve)
        transport.set_handler(PROTO_ATTEST, self.finality.serve)
        transport.set_handler(PROTO_CERT, self.finality.serve_certificate)
        transport.set_handler(PROTO_TXS, self.serve_txs)
        transport.set_handler(PROTO_BLOCK, self.blockpush.serve)

    # ------------------------------------------------------------------ queries
    @property
    def height(self) -> int:
        """Height of our head."""
        return self.chain.height

    @property
    def synced(self) -> bool:
        """Whether we hold the certified head our peers showed us: until then we neither propose nor attest."""
        return self.sync.synced

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
        """Next transaction nonce for our own account (see :class:`~.nonces.OwnNonces`)."""
        return self.nonces.next()

    def sign_tx(self, kind: str, body: dict[str, Any], *, market: str | None = None, round: int = 0) -> Envelope:
        """Build and sign one of our own transactions with the next nonce (our market unless told)."""
        return make_tx(self.key, self.network_id, kind, {**body, "nonce": self.next_nonce()},
                       market=self.market if market is None else market, round=round)

    def forget_nonce(self, nonce: int) -> None:
        """Our transaction with ``nonce`` will never be sent (e.g. a refused escrow): reuse the nonce."""
        self.nonces.forget(nonce)

    def add_tx(self, raw: bytes) -> Envelope | None:
        """Verify a raw transaction and keep it in the mempool; None when it is unusable."""
        try:
            env = decode_tx(raw, self.network_id)
        except ProtocolError as err:
            _events.warning("tx.rejected", reason=err.reason, detail=err.detail[:200])
            return None
        if env.type == "tx/evidence":
            return self._add_evidence(env, raw)
        refusal = self._refusal(self.chain.state, env)
        if refusal is not None:
            _events.warning("tx.rejected", reason=refusal.reason, detail=refusal.detail[:200])
            return None
        if not self.mempool.add(env, raw, self.chain.state):
            if self.mempool.last_refusal not in ("duplicate", "stale-nonce"):
                _events.debug("tx.refused", reason=self.mempool.last_refusal, sender=env.sender)
            return None
        self.changes.notify()
        return env

    def _add_evidence(self, env: Envelope, raw: bytes) -> Envelope | None:
        """Keep equivocation evidence (it has no nonce) once per proposer and height not punished yet."""
        try:
            key = check_evidence(env.body["a"], env.body["b"], self.network_id)
        except lerr.LedgerError as err:
            _events.warning("tx.rejected", reason=err.reason, detail=err.detail[:200])
            return None
        if not self.mempool.add_evidence(env, raw, key, self.chain.state):
            return None
        _events.info("evidence.pending", proposer=key[0], height=key[1])
        self.changes.notify()
        return env

    def _refusal(self, state: State, env: Envelope) -> ProtocolError | None:
        """The market rules' refusal of ``env`` against ``state`` (``@tx_admit``), or None."""
        for hooks in self.hooks:
            if hooks.admit is not None:
                try:
                    hooks.admit(state, env)
                except ProtocolError as err:
                    return err
        return None

    @property
    def sealed(self) -> bool:
        """A sealed ``chain/txs`` batch (its sender's batch is complete) has transactions pending here: a
        ``pos``/``lottery`` proposer seals at once instead of waiting for a quiet mempool (docs/adr/0155). The seal
        lasts until a block carries them: a batch pushed to the drawn proposer before it imported the previous
        block keeps its seal through that import (docs/adr/0176)."""
        return bool(self._sealed)

    def batch_complete(self) -> bool | None:
        """What the markets say of the batch their next block waits for (``@batch_complete``): True — the mempool
        holds all of it, a ``pos``/``lottery`` proposer seals now, as for a sealed batch; False — some of it is
        still to come, the proposer holds on past a quiet mempool (at most its batch wait); None — no market
        waits for a batch (docs/adr/0185)."""
        said: list[bool | None] = []
        for hooks in self.hooks:
            if hooks.complete is not None:
                try:
                    said.append(hooks.complete(self.chain.state))
                except Exception as err:  # a market's bug must not stop the proposer loop: wait as before
                    _events.error("market.complete_failed", error=type(err).__name__, detail=str(err)[:200])
        return batch_verdict(said)

    def _pending(self, raws: Sequence[bytes]) -> dict[bytes, bytes]:
        """Those of ``raws`` pending in our mempool (after :meth:`add_tx`; duplicates of pending ones included), with
        their digests."""
        out: dict[bytes, bytes] = {}
        for raw in raws:
            try:
                digest = decode_tx(raw, self.network_id).digest  # verified already: the cache only re-decodes
            except ProtocolError:
                continue
            if self.mempool.holds(digest):
                out[raw] = digest
        return out

    def _seal(self, raws: Sequence[bytes]) -> None:
        """Note the transactions of a sealed batch that are pending here."""
        self._sealed.update(self._pending(raws).values())

    async def broadcast_txs(self, raws: list[bytes], *, seal: bool = False) -> None:
        """Keep transactions locally and gossip them in batches of at most ``TXS_PER_MESSAGE``.

        ``seal``: these transactions complete what the block should carry now (a round's settlement): the last
        message says so, and a ``pos``/``lottery`` proposer that holds it seals at once (docs/adr/0155). A sealed
        batch that can go straight to the drawn proposer goes there instead, and only what is still pending here
        after ``sealed_gossip_delay_s`` (or all of it, when the push fails) is gossiped (docs/adr/0159, 0176)."""
        for raw in raws:
            self.add_tx(raw)
        if seal:
            kept = self._pending(raws)
            self._sealed.update(kept.values())
            if self._push_to_proposer(raws, kept):
                return
        await self._gossip_txs(raws, seal=seal)

    async def _gossip_txs(self, raws: list[bytes], *, seal: bool) -> None:
        for i in range(0, len(raws), TXS_PER_MESSAGE):
            last = i + TXS_PER_MESSAGE >= len(raws)
            await self.publish(MSG_TXS, {"txs": raws[i:i + TXS_PER_MESSAGE], **({"seal": True} if seal and last
                                                                               else {})})

    def _push_to_proposer(self, raws: list[bytes], kept: dict[bytes, bytes]) -> bool:
        """Send a sealed batch straight to the next block's attempt-0 proposer when it is another node we are
        connected to and the batch fits one request, gossiping it later only if needed (:meth:`_push_sealed`);
        False when it cannot go directly (the caller gossips it now)."""
        if self.next_proposer is None or self.spawn is None or len(raws) > TXS_PER_MESSAGE:
            return False
        try:
            proposer = self.next_proposer()
        except lerr.LedgerError:
            return False
        if proposer is None or (proposer != self.key.public and proposer not in self.transport.peers()):
            return False
        body = codec.encode({"txs": raws, "seal": True})
        if len(body) > MAX_GOSSIP:
            return False
        peer = None if proposer == self.key.public else proposer  # we propose it ourselves: nothing to push
        self.spawn("txs.direct", self._push_sealed, peer, body, raws, kept)
        return True

    async def _push_sealed(self, peer: bytes | None, body: bytes, raws: list[bytes], kept: dict[bytes, bytes]
                           ) -> None:
        """Push a sealed batch to the drawn proposer (``peer``; None: we are it); gossip the batch when the push
        fails, or what is still pending here once ``sealed_gossip_delay_s`` has passed (a silent proposer's
        replacement, and any transaction the block left out, then come from the gossiped copy as before)."""
        since = trio.current_time()
        if peer is not None:
            try:
                await self.transport.request(peer, PROTO_TXS, body, timeout=DIRECT_TXS_TIMEOUT)
            except (PeerUnavailable, RemoteRejected, trio.TooSlowError) as err:
                _events.info("txs.direct_failed", error=repr(err)[:200])
                self.sealed_pushes["failed"] += 1
                await self._gossip_txs(raws, seal=True)
                return

        def settled() -> bool:
            return not any(self.mempool.holds(d) for d in kept.values())

        left = max(0.0, since + self.sealed_gossip_delay_s - trio.current_time())
        with trio.move_on_after(left):
            await self.changes.wait_for(settled, timeout=left + 1.0)
        leftovers = [raw for raw, digest in kept.items() if self.mempool.holds(digest)]
        if not leftovers:
            self.sealed_pushes["landed"] += 1
            self.changes.notify()
            return
        self.sealed_pushes["gossiped"] += 1
        _events.info("txs.sealed_gossiped", pending=len(leftovers), of=len(raws))
        await self._gossip_txs(leftovers, seal=True)

    async def regossip_own(self) -> int:
        """Gossip again our own transactions still pending; returns how many. Called when a drawn proposer stayed
        silent (at doubling gaps, docs/adr/0198): a transaction gossiped before the mesh formed (a provider's
        registration at start-up) may have reached some nodes only, and a drawn node without any applicable
        transaction never wants a block, so the height waited until a node holding it was drawn (docs/adr/0195)."""
        raws = [p.raw for p in self.mempool.iter_pending() if p.own]
        if raws:
            await self._gossip_txs(raws, seal=False)
        return len(raws)

    async def serve_txs(self, peer: bytes, request: bytes) -> bytes:
        """``/bazaar/txs/1`` handler: a sealed batch ``{txs, seal}`` (the ``chain/txs`` body) sent to us as the
        drawn proposer; each transaction is verified and kept as a gossiped one would be. Answers ``{added}``."""
        try:
            body = codec.decode(request, max_size=MAX_GOSSIP)
            REGISTRY.schema(MSG_TXS).check(body)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if not isinstance(body, dict):
            raise RejectRequest(ProtocolReason.MALFORMED)
        added = 0
        self.direct_txs_served += 1
        for raw in body["txs"]:
            added += self.add_tx(raw) is not None
        if body.get("seal"):
            self._seal(body["txs"])
            if not body.get("fwd"):
                self._forward_sealed(body["txs"])
        self.changes.notify()
        return codec.encode({"added": added})

    def _forward_sealed(self, raws: list[bytes]) -> None:
        """A sealed batch pushed to us for a block we will not propose — we proposed the block its sender had not
        imported yet, so another node is drawn for the next one now: pass what is still pending here on to that
        node, once (``fwd``), instead of holding it until the sender's gossip delay (docs/adr/0195). One for a block we
        will propose is held until the next block, and what that block leaves out is passed on then: at 20 processes
        a batch reached the drawn proposer while it was building its block, and waited a second at its sender
        (docs/adr/0211)."""
        if self.next_proposer is None or self.spawn is None:
            return
        try:
            proposer = self.next_proposer()
        except lerr.LedgerError:
            return
        if proposer == self.key.public:  # ours to propose: what the next block leaves out is passed on then
            self._held = list(dict.fromkeys([*self._held, *self._pending(raws)]))
            return
        if proposer is None or proposer not in self.transport.peers():
            return
        pending = list(self._pending(raws))
        if pending:
            self.sealed_forwards += 1
            self.spawn("txs.forward", self._send_forward, proposer,
                       codec.encode({"txs": pending, "seal": True, "fwd": True}))

    async def _send_forward(self, peer: bytes, body: bytes) -> None:
        try:
            await self.transport.request(peer, PROTO_TXS, body, timeout=DIRECT_TXS_TIMEOUT)
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError) as err:  # its sender gossips it after its delay
            _events.info("txs.forward_failed", error=repr(err)[:200])

    async def submit(self, raws: Sequence[bytes], *, seal: bool = False) -> None:
        """Keep transactions locally and gossip them in one batch (:meth:`broadcast_txs`); ``seal``: the batch is
        complete, a proposer need not wait for more."""
        await self.broadcast_txs(list(raws), seal=seal)

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
        """Gossip handler: a batch of transactions (``seal``: its sender's batch is complete)."""
        for raw in env.body["txs"]:
            self.add_tx(raw)
        if env.body.get("seal"):
            self._seal(env.body["txs"])
            self.changes.notify()  # a proposer waiting for a quiet mempool may seal now

    # ------------------------------------------------------------------ blocks
    def _candidates(self) -> list[bytes]:
        """Mempool transactions in block order, twice: a transaction that depends on another sender's (an
        escrow settlement on a lock signed by the payer) fails on the first pass and lands on the second, in
        the same block; duplicates of included ones are skipped by their nonce."""
        state = self.chain.state  # behind a nonce gap: cannot apply, never offered (docs/ledger.md, Mempool)
        admits = any(h.admit is not None for h in self.hooks)  # the market rules may refuse what the head moved past
        ordered: list[bytes] = []
        size = 0
        for p in self.mempool.iter_pending(state):  # a prefix in block order: no sender's nonces skip one
            if admits and self._refusal(state, p.env) is not None:
                continue
            size += len(p.raw)
            if size > BLOCK_TX_BYTES:
                break  # a block's worth: the rest of the pool is neither ordered nor checked
            ordered.append(p.raw)
        return ordered + ordered

    def would_include(self, consensus: dict[str, Any], *, timestamp_ms: int) -> int:
        """How many transactions a block proposed now would carry (a dry run, nothing stored)."""
        return len(self.dry_run(consensus, timestamp_ms=timestamp_ms).txs)

    def contract_work(self, txs: Sequence[Envelope] = ()) -> list[tuple[str, dict[str, Any]]]:
        """The market contracts' own transactions for a block proposed on our head that carries ``txs`` before
        them (``@block_propose``)."""
        out: list[tuple[str, dict[str, Any]]] = []
        for hooks in self.hooks:
            if hooks.propose is not None:
                try:
                    out.extend(hooks.propose(self.chain.state, txs))
                except Exception as err:  # a contract bug must not stop the proposer loop
                    _events.error("contract.propose_failed", error=type(err).__name__, detail=str(err)[:200])
        return out

    def wants_block(self) -> bool:
        """Whether a block proposed now would carry anything: mempool transactions or contract work."""
        return self.mempool.has_applicable(self.chain.state) or bool(self.contract_work())  # not junk behind gaps

    def _sign_contract_work(self, candidates: list[bytes], consensus: dict[str, Any], timestamp_ms: int
                            ) -> list[Envelope]:
        """The contract's transactions signed with the nonces that follow our own transactions the block
        carries (a dry build of the candidates finds them), so an own transaction the market rules dropped
        since we sent it never leaves the contract's behind a nonce gap. Our dropped transactions' nonces are
        taken over (they could never land). The contract sees the transactions that dry build carried (it may act
        on them in the same block: docs/adr/0186)."""
        if not any(h.propose is not None for h in self.hooks):
            return []
        block, _, _ = build_block(self.chain.state, self.chain.genesis, self.key, candidates,
                                  timestamp_ms=timestamp_ms, consensus=consensus)
        carried = [decode_tx(raw, self.network_id) for raw in block.txs]
        work = self.contract_work(carried)
        if not work:
            return []
        me = self.key.public
        nonce = self.chain.state.nonce(me)
        for env in carried:
            if env.sender == me and "nonce" in env.body:
                nonce = max(nonce, int(env.body["nonce"]))
        return [make_tx(self.key, self.network_id, kind, {**body, "nonce": nonce + 1 + i}, market=self.market)
                for i, (kind, body) in enumerate(work)]

    def dry_run(self, consensus: dict[str, Any], *, timestamp_ms: int) -> Block:
        """The block we would propose now, without the market contracts' checks (nothing stored)."""
        timestamp_ms = max(timestamp_ms, self.chain.head.header.timestamp_ms if self.chain.head else 0)
        candidates = self._candidates()
        own = self._sign_contract_work(candidates, consensus, timestamp_ms)
        block, _, _ = build_block(self.chain.state, self.chain.genesis, self.key, candidates + [e.wire for e in own],
                                  timestamp_ms=timestamp_ms, consensus=consensus)
        return block

    async def prepare_candidate(self, block: Block) -> None:
        """Run the prepare hooks on a block we are about to propose, as an importer would (fetch what the
        market contracts read, e.g. update blobs), so a proposer never refuses its own block for want of data
        its peers can fetch."""
        for hooks in self.hooks:
            if hooks.prepare is not None:
                await hooks.prepare(block)

    async def propose(self, consensus: dict[str, Any], *, timestamp_ms: int) -> Block:
        """Build a block on our head from the mempool, store it, gossip it and attest it. The market contracts
        run on it first, so we never propose what our peers would refuse.

        Raises:
            InvalidBlock: the proof is not ours to give now, a market contract refuses the block, or we have not
                synced to the certified head our peers showed us (``not-synced``).
        """
        if not self.synced:
            raise lerr.InvalidBlock("not-synced", f"our finalized height {self.chain.finalized_height} is below "
                                                  f"the certified head {self.sync.certified_seen} or no peer answered")
        timestamp_ms = max(timestamp_ms, self.chain.head.header.timestamp_ms if self.chain.head else 0)
        contracts = [h.check for h in self.hooks if h.check is not None]
        candidates = self._candidates()
        own = self._sign_contract_work(candidates, consensus, timestamp_ms)
        block, rejected = self.chain.build_and_import(self.key, candidates + [e.wire for e in own],
                                                      timestamp_ms=timestamp_ms, consensus=consensus,
                                                      checks=contracts)
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
        self.highest_seen = max(self.highest_seen, min(h, self.chain.height + 1))  # unverified: one past our head
        if h <= self.chain.height:
            await self._known_height(block)
            return
        if h > self.chain.height + 1:
            self._pending_blocks[h] = block
            self._trim_pending()
            if source is not None:
                await self.sync_from(source)
            return
        await self.import_block(block, announce=False)
        while self.chain.height + 1 in self._pending_blocks:
            await self.import_block(self._pending_blocks.pop(self.chain.height + 1), announce=False)

    async def _known_height(self, block: Block) -> bool:
        """A block at a height we hold: True when it is our block there; a twin by the same proposer becomes
        equivocation evidence (gossiped), any other is refused. Never runs the import's follow-ups again."""
        h = block.header.height
        try:
            evidence = self.chain.import_block(block)
        except lerr.LedgerError as err:
            _events.warning("block.rejected", height=h, reason=err.reason, detail=str(err)[:200])
            return False
        if evidence is not None:
            _events.warning("block.equivocation", height=h, proposer=block.header.proposer)
            await self.broadcast_txs([evidence.to_tx(self.key, self.network_id).wire])  # no nonce
            return False
        return True

    def _trim_pending(self) -> None:
        for table in (self._pending_blocks, self.finality.pending):
            for h in sorted(table)[:-SYNC_BATCH]:
                del table[h]
            for h in [h for h in table if h <= self.chain.finalized_height]:
                del table[h]

    async def import_block(self, block: Block, *, announce: bool, certified: bool = False) -> bool:
        """Import one block. ``certified``: a verified finality certificate vouches for it (chain sync of
        history), so the market's re-execution hook (e.g. re-evaluating a PoL model) is skipped."""
        started = time.perf_counter()
        checks: list[BlockCheck] = []
        if not certified:
            for hooks in self.hooks:
                if hooks.check is not None:
                    checks.append(hooks.check)
                if hooks.prepare is not None:
                    prepared = await hooks.prepare(block)
                    if prepared is not None:
                        checks.append(prepared)
        if block.header.height <= self.chain.height:  # imported meanwhile (a sync, or its gossiped copy, while a
            return await self._known_height(block)     # hook prepared): its follow-ups ran once already
        try:
            self.chain.import_block(block, checks=checks)
        except lerr.LedgerError as err:
            _events.warning("block.rejected", height=block.header.height, reason=getattr(err, "reason", "invalid"),
                            detail=str(err)[:200])
            return False
        self.observe_import(time.perf_counter() - started)
        await self._imported(block, announce=announce)
        return True

    async def _imported(self, block: Block, *, announce: bool) -> None:
        """Everything that follows a new head: mempool, market hook, gossip, pending certificate, our vote."""
        self.mempool.prune(self.chain.state)
        self._sealed = {d for d in self._sealed if self.mempool.holds(d)}  # a seal lasts until its batch lands
        if self._held:  # a batch pushed to us as the drawn proposer: what this block left out goes on (ADR 0211)
            held, self._held = self._held, []
            self._forward_sealed(held)
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
            await self.blockpush.announce(block)
        cert = self.finality.pending.pop(h, None)
        if cert is not None:
            self.finality.finalize(cert)
        if all(hooks.may_attest is None or hooks.may_attest(block) for hooks in self.hooks):
            await self.finality.attest(block)
        self.changes.notify()

    # ------------------------------------------------------------------ delegated jobs
    async def on_attestation(self, env: Envelope) -> None:
        """Gossip handler: a validator's vote for a block."""
        await self.finality.on_attestation(env)

    async def on_certificate(self, env: Envelope) -> None:
        """Gossip handler: an aggregated finality certificate."""
        await self.finality.on_certificate(env)

    @property
    def rewinds(self) -> int:
        """How often fork choice rewound our chain."""
        return self.finality.rewinds

    async def sync_from(self, peer: bytes, *, timeout: float = 20.0) -> int:
        """Fetch and import blocks past our head from ``peer``; returns how many were imported."""
        return await self.sync.sync_from(peer, timeout=timeout)

    async def sync_loop(self) -> None:
        """Keep in step with the peers for the node's lifetime."""
        await self.sync.loop()

    def register(self, router: Any) -> None:
        """Attach the gossip handlers to a :class:`~bazaar.node.router.Router`."""
        router.on(MSG_BLOCK, self.on_block)
        router.on(MSG_ATTEST, self.on_attestation)
        router.on(MSG_CERT, self.on_certificate)
        router.on(MSG_TXS, self.on_txs)
