"""The ``pos`` and ``lottery`` consensus drivers: the next block's proposer is drawn from shared randomness.

* ``pos`` — stake- (or revenue-record-) weighted sortition from the RANDAO seed (``ledger.consensus``);
* ``lottery`` — the same draw over the proposer ``weights`` record (the round's allocation, published by the
  network's ``weights_authority``), stakes until one exists.

Both seeds advance with the proposer's BLS reveal, which is unique per key and height, so no proposer can
grind the next draw. A block is wanted as soon as the mempool holds a transaction that applies: every node
notes when that happened for the next height, waits a short quiet window (so a round's batch lands in one
block) — or not at all once the batch's sender sealed it (``chain/txs`` ``seal``: a round's settlement is
complete, docs/adr/0155) — and the draw for attempt ``k = ⌊waited / (backoff · fallback_s)⌋`` may propose —
when the attempt-0 proposer is silent (crashed, partitioned), the attempt-1 draw takes over after ``fallback_s``
(longer after false alarms: ``backoff``, docs/adr/0197), first asking the earlier draws for a block that is only
late (docs/adr/0196), and so on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import trio

from bazaar.ledger.block import Block
from bazaar.ledger.consensus import lottery_consensus, lottery_next, pos_consensus, pos_proposer
from bazaar.ledger.errors import LedgerError

from .. import byzantine
from ..chain.hooks import BlockHooks
from ..chain.service import SEALED_GOSSIP_DELAY_S
from ..logs import Events
from .base import DriverHost

QUIET_S = 0.15
"""Transactions keep arriving for this long before the proposer seals (a round's batch lands in one block)."""
MAX_BATCH_WAIT_S = 1.0
IDLE_WAIT_S = 30.0
MAX_BACKOFF = 8.0
"""A node's fallback wait grows to at most this many times ``block_s`` while the proposers it declares silent
keep turning out to have been only late (docs/adr/0197)."""
FORMATION_MAX_S = 30.0
"""At start-up a node counts no fallback attempt and proposes nothing until its part of the gossip overlay has
formed (every peer it keeps connected registered by pubsub, a mesh on every shared topic), or for at most this
long (docs/adr/0198)."""
FORMATION_POLL_S = 0.25
MAX_REGOSSIP_GAP = 16.0
"""After a silent proposer a node gossips its own pending transactions again, then waits twice as long before the
next such regossip, up to this many fallback waits: 50 nodes regossiping at every 2 s declaration flooded a
2-core machine at start-up, where no height passes (docs/adr/0198)."""
ANCHOR_MAX_WAITS = 4
"""A node counts a height's fallback attempts from when its parent became final, waiting for that at most this
many fallback waits after it first wanted the block (docs/adr/0205)."""
LOOKAHEAD_ATTEMPTS = 2
"""A proposer that may have fallen behind (:meth:`DrawDriver.behind`) first asks the proposers drawn at this many
attempts after its own: the others may have declared it silent and taken over meanwhile (docs/adr/0204)."""
_events = Events("draw")


def attempt_anchor(wanted: float, parent_final: float | None, now: float, cap_s: float) -> float | None:
    """When a node starts counting fallback attempts at a height (attempt k's turn begins ``k`` fallback waits
    later), or None while attempt 0's turn lasts: from when it first wanted the block (``wanted``) or saw the
    block's parent final (``parent_final``, None if not yet), whichever is later, and at most ``cap_s`` after
    ``wanted`` (docs/adr/0205). It never moves once the count has begun: a node's attempt number only grows.

    Each node first wants a height when the parent block reaches it, and on a loaded 50-process network a block
    reaches its last node 6–15 s after its first: counted from there, two nodes' attempt numbers differed by 2, and
    the drawn proposers of attempts 1 and 3 proposed 150 ms apart (a fork whose votes split 24 to 26). A
    certificate reaches every node within about a second (it is pushed to all by the aggregator), so counting
    from the parent's finality keeps the nodes' attempt numbers together. The cap keeps a height live when its
    parent is never certified on its own (a split height, finalized only through a later certificate)."""
    if parent_final is not None:
        return min(max(wanted, parent_final), wanted + cap_s)
    if now - wanted >= cap_s:
        return wanted + cap_s
    return None


class DrawDriver:
    """Proposes when drawn; falls back to the next draw when the drawn proposer is silent."""

    def __init__(self, node: DriverHost, rule: str, *, fallback_s: float) -> None:
        if rule not in ("pos", "lottery"):
            raise ValueError(f"the draw driver runs pos or lottery, not {rule!r}")
        self.node = node
        self.rule = rule
        self.fallback_s = fallback_s
        self.proposed = 0
        self.fallbacks = 0
        self.batch_seals = 0
        """Quiet windows cut short because a market said the mempool holds its whole batch (docs/adr/0185)."""
        self.asked = 0
        """Fallback proposals preceded by a question to the earlier attempts' proposers (docs/adr/0196) ..."""
        self.found_late = 0
        """... and those that found the earlier block, and proposed nothing."""
        self.asked_ahead = 0
        """Proposals preceded by a question to the next attempts' proposers because we may have fallen behind
        (docs/adr/0204) ..."""
        self.found_ahead = 0
        """... and those that found a later attempt's block, and proposed nothing."""
        self.past_turn = 0
        """Blocks of ours prepared only after our turn had passed, and so preceded by a question to the later
        attempts' proposers (docs/adr/0209; those that found a block count in ``found_ahead``)."""
        self._proposed_at: set[tuple[int, int]] = set()
        self.backoff = 1.0
        """The fallback wait is ``backoff × fallback_s``: doubled (up to ``MAX_BACKOFF``) when a height we declared
        silent at attempt k gets a block of attempt ≤ k — its proposer was late, not silent, and the fallback
        made a competing block — and eased back by a quarter at every height that needed no fallback
        (docs/adr/0197)."""
        self._declared: dict[int, int] = {}  # height -> the highest attempt we declared silent there
        self._head_late: tuple[int, float] = (-1, 0.0)  # (height, seconds after its timestamp it reached us)
        self.regossips = 0
        """Own pending transactions gossiped again after a silent proposer (ADR 0195), spaced by ..."""
        self._regossip_gap = 1.0
        """... this many fallback waits, doubled after each (up to ``MAX_REGOSSIP_GAP``) and reset at a height
        that needed no fallback (docs/adr/0198)."""
        self._regossip_at = float("-inf")
        self.formation_s = 0.0
        """How long the driver waited at start-up for the gossip meshes to form (docs/adr/0198)."""
        self.hooks = BlockHooks(imported=self._observe)
        node.chain.next_proposer = lambda: self.drawn(0)  # a sealed batch goes to it directly (ADRs 0159, 0176)
        node.chain.sealed_gossip_delay_s = min(SEALED_GOSSIP_DELAY_S, fallback_s / 2)  # the replacement holds it

    def drawn(self, attempt: int) -> bytes:
        """The account drawn to propose the next block at ``attempt``."""
        state = self.node.chain.state
        if self.rule == "pos":
            return pos_proposer(state, state.height + 1, attempt)
        return lottery_next(state, attempt)

    def proof(self, attempt: int) -> dict[str, Any]:
        """Our consensus proof for the next block at ``attempt``."""
        state = self.node.chain.state
        if self.rule == "pos":
            return pos_consensus(self.node.bls_secret, self.node.network_id, state.height + 1, attempt)
        return lottery_consensus(state, self.node.bls_secret, self.node.network_id, attempt)

    async def _quiet(self) -> None:
        """Wait until a sealed batch arrived (its sender says it is complete: at once), a market says the mempool
        holds the whole batch its next block waits for (``@batch_complete``, docs/adr/0185), or no new transaction
        arrived for ``QUIET_S`` — unless a market says its batch is still incomplete, which holds the block on —
        at most ``MAX_BATCH_WAIT_S`` in all. A block wanted for the market contract's own work alone (nothing in
        the mempool applies) does not wait: no batch is arriving for it to gather."""
        chain = self.node.chain
        if not chain.mempool.has_applicable(chain.state):
            return
        with trio.move_on_after(MAX_BATCH_WAIT_S):
            while not chain.sealed:
                complete = chain.batch_complete()
                if complete:
                    self.batch_seals += 1
                    return
                size = len(chain.mempool)

                def changed(size: int = size) -> bool:
                    return chain.sealed or len(chain.mempool) != size

                with trio.move_on_after(QUIET_S) as quiet:
                    await chain.changes.wait_for(changed, timeout=QUIET_S * 2)
                if quiet.cancelled_caught and complete is None:  # a batch known incomplete holds on (capped)
                    return

    async def run(self) -> None:
        """The proposer loop, for the node's lifetime."""
        chain = self.node.chain
        wanted_since: dict[int, float] = {}
        final_since: dict[int, float] = {}  # height -> when we first wanted it with its parent final
        # trio's clock, not time.monotonic(): the same in a node process, the virtual clock in `bazaar sim` (a
        # wall-clock attempt count made a loaded simulation draw fallback proposers and fork: docs/adr/0152)
        def wanted() -> bool:  # a (re)started node proposes only once it holds the certified head
            return chain.synced and chain.wants_block()

        if await self._await_mesh():
            await self.node.chain.regossip_own()  # they went out before anyone could relay them
        while True:
            try:
                await chain.changes.wait_for(wanted, timeout=IDLE_WAIT_S)
            except trio.TooSlowError:
                continue
            height = chain.height + 1
            first = height not in wanted_since
            since = wanted_since.setdefault(height, trio.current_time())
            for h in [h for h in wanted_since if h < height]:
                del wanted_since[h]
            if first:
                await self._quiet()
                if chain.height + 1 != height:
                    continue
            wait_s = self.fallback_s * self.backoff
            for h in [h for h in final_since if h < height]:
                del final_since[h]

            def count(height: int = height, since: float = since, wait_s: float = wait_s) -> tuple[float | None, int]:
                """When this node began counting ``height``'s attempts (None while attempt 0's turn lasts), and the
                attempt whose turn it is now."""
                now = trio.current_time()
                if chain.finalized_height >= height - 1:
                    final_since.setdefault(height, now)
                begun = attempt_anchor(since, final_since.get(height), now, ANCHOR_MAX_WAITS * wait_s)
                return begun, 0 if begun is None else int((now - begun) // wait_s)

            anchor, attempt = count()
            try:
                proposer = self.drawn(attempt)
            except LedgerError as err:
                _events.warning("draw.failed", height=height, reason=err.reason)
                proposer = b""
            if proposer == self.node.key.public and (height, attempt) not in self._proposed_at:
                self._proposed_at = {(h, a) for h, a in self._proposed_at if h >= height}
                self._proposed_at.add((height, attempt))
                if not await self._ask_drawn(height, attempt):
                    await self._propose(height, attempt, count)
            def advanced(height: int = height) -> bool:
                return chain.height >= height

            if anchor is None:  # attempt 0's turn lasts until the parent is final, or the cap
                def parent_final(height: int = height) -> bool:
                    return chain.height >= height or chain.finalized_height >= height - 1

                cap_at = since + ANCHOR_MAX_WAITS * wait_s
                with contextlib.suppress(trio.TooSlowError):
                    await chain.changes.wait_for(parent_final, timeout=max(0.01, cap_at - trio.current_time()))
                continue
            next_attempt_at = anchor + (attempt + 1) * wait_s

            try:
                await chain.changes.wait_for(advanced, timeout=max(0.01, next_attempt_at - trio.current_time()))
            except trio.TooSlowError:
                if chain.height + 1 == height:
                    self.fallbacks += 1
                    self._declared[height] = max(attempt, self._declared.get(height, 0))
                    _events.warning("draw.silent_proposer", height=height, attempt=attempt)
                    await self._regossip(wait_s)

    async def _await_mesh(self) -> bool:
        """Wait until the node's part of the gossip overlay has formed, at most ``FORMATION_MAX_S``; whether it had
        to wait. A block proposed before then reaches few nodes, the others' fallback proposers make competing
        ones, and on a 50-process start-up the forks' syncs, block relays and connection kicks kept the hubs'
        meshes from ever forming (docs/adr/0198)."""
        if self.node.gossip_formed():
            return False
        since = trio.current_time()
        with trio.move_on_after(FORMATION_MAX_S):
            while not self.node.gossip_formed():
                await trio.sleep(FORMATION_POLL_S)
        self.formation_s = round(trio.current_time() - since, 3)
        _events.info("draw.mesh_formed" if self.node.gossip_formed() else "draw.mesh_not_formed",
                     waited_s=self.formation_s)
        return True

    async def _regossip(self, wait_s: float) -> None:
        """Gossip our own pending transactions again — the drawn node may lack them, and then never wants a block
        (docs/adr/0195) — unless we did so less than the current gap ago; each regossip doubles the gap."""
        now = trio.current_time()
        if now < self._regossip_at:
            return
        if await self.node.chain.regossip_own():
            self.regossips += 1
            self._regossip_at = now + self._regossip_gap * wait_s
            self._regossip_gap = min(MAX_REGOSSIP_GAP, self._regossip_gap * 2)

    def _observe(self, block: Block) -> None:
        """Every new head: a false alarm (a block of an attempt we had declared silent) doubles the fallback wait,
        a height without a declaration eases it back (docs/adr/0197); and how late the head reached us, by its
        timestamp (:meth:`behind`)."""
        height = block.header.height
        self._head_late = (height, max(0.0, (self.node.chain.clock.now_ms() - block.header.timestamp_ms) / 1000))
        declared = self._declared.pop(height, None)
        for h in [h for h in self._declared if h < height]:
            del self._declared[h]
        if declared is None:
            self.backoff = max(1.0, self.backoff * 0.75)
            self._regossip_gap = 1.0
            self._regossip_at = float("-inf")
        elif int(block.header.consensus.get("attempt", 0)) <= declared:
            self.backoff = min(MAX_BACKOFF, self.backoff * 2)
            _events.info("draw.false_alarm", height=height, attempt=declared, backoff=self.backoff)

    def behind(self) -> bool:
        """Whether we may have fallen behind the network at the height after our head: the head came by a sync
        pull, or reached us more than half a fallback wait after its proposer stamped it. The others then started
        counting the next height's attempts before we did (docs/adr/0204)."""
        chain = self.node.chain
        height, late_s = self._head_late
        return chain.sync.caught_up() or (height == chain.height and late_s > self.fallback_s * self.backoff / 2)

    async def _ask_drawn(self, height: int, attempt: int) -> bool:
        """Before proposing at ``attempt``: ask the proposers drawn at the earlier attempts for their block — and,
        when we may have fallen :meth:`behind`, those drawn at the next :data:`LOOKAHEAD_ATTEMPTS` too — at once
        and for at most half a fallback wait; whether one of them made our head move (then we propose nothing).

        A drawn proposer looks silent when its block is only slow to reach us — a loaded machine, a sparse
        topology, a start-up — and a second block at the same height splits the finality votes (docs/adr/0196).
        The mirror case: a node that fell behind and has just caught up starts counting the next height's
        attempts late, and proposes as attempt 0 a block the others replaced by a later attempt's seconds ago;
        at 50 processes such a block split the votes of one height in half, and no certificate ever formed
        (docs/adr/0204). One that crashed answers nothing, and the proposal follows as before."""
        earlier = self._drawn_others(range(attempt))
        later = ([p for p in self._drawn_others(range(attempt + 1, attempt + 1 + LOOKAHEAD_ATTEMPTS))
                  if p not in earlier] if self.behind() else [])
        return await self._ask(height, attempt, earlier, later)

    async def _ask_past_turn(self, height: int, attempt: int, current: int) -> bool:
        """Our block for ``attempt`` was ready only once attempt ``current`` had begun by our count: ask the
        proposers drawn at the attempts after ours, up to :data:`LOOKAHEAD_ATTEMPTS` past ``current``, for a block of
        theirs (as :meth:`_ask_drawn` asks ahead); whether one of them made our head move (docs/adr/0209).

        Preparing a block (the market's dry run of a few hundred transactions, on a loaded machine) can outlast a
        turn: the others declared us silent and the next attempts' proposers took over. At 50 processes the
        attempt-0 proposer, the network's aggregator, had its block ready 11 s after the parent's certificate and
        proposed it 0.5 s after attempt 3's block; the votes split 5 to 6 of 11 and no certificate ever formed."""
        self.past_turn += 1
        return await self._ask(height, attempt, [], self._drawn_others(range(attempt + 1,
                                                                                current + 1 + LOOKAHEAD_ATTEMPTS)))

    async def _ask(self, height: int, attempt: int, earlier: list[bytes], later: list[bytes]) -> bool:
        """Ask ``earlier`` (the proposers drawn before ``attempt``) and ``later`` (those drawn after it) for their
        block at ``height``, at once and for at most half a fallback wait; whether one of them made our head move."""
        chain = self.node.chain
        peers = earlier + later
        if not peers:
            return False
        if earlier:
            self.asked += 1
        if later:
            self.asked_ahead += 1
        with trio.move_on_after(self.fallback_s / 2):
            async with trio.open_nursery() as nursery:
                async def ask(peer: bytes) -> None:
                    if await chain.sync.fetch_next(peer, timeout=self.fallback_s / 2):
                        nursery.cancel_scope.cancel()

                for peer in peers:
                    nursery.start_soon(ask, peer)
        found = chain.height + 1 != height
        if found:
            block = chain.chain.block(height)
            took_over = block is not None and int(block.header.consensus.get("attempt", 0)) > attempt
            if later and (took_over or not earlier):
                self.found_ahead += 1
                _events.info("draw.found_ahead", height=height, attempt=attempt)
            else:
                self.found_late += 1
                _events.info("draw.found_late", height=height, attempt=attempt)
        return found

    def _drawn_others(self, attempts: range) -> list[bytes]:
        """The proposers drawn at ``attempts``, without us, each once, in attempt order."""
        own = self.node.key.public
        out: list[bytes] = []
        for k in attempts:
            try:
                drawn = self.drawn(k)
            except LedgerError:
                continue
            if drawn != own and drawn not in out:
                out.append(drawn)
        return out

    async def _propose(self, height: int, attempt: int, count: Callable[[], tuple[float | None, int]]) -> None:
        """Propose the next block as the proposer drawn at ``attempt`` (``count``: the draw loop's attempt count at
        this height, read again once the block is prepared)."""
        chain = self.node.chain
        proof = self.proof(attempt)
        candidate = chain.dry_run(proof, timestamp_ms=chain.clock.now_ms())
        if not candidate.txs:
            return  # nothing in the mempool applies (e.g. a nonce gap): no empty blocks
        await chain.prepare_candidate(candidate)
        if chain.height + 1 != height or not chain.synced:
            return  # a block arrived while we prepared (or showed us we are behind)
        _, current = count()
        if current > attempt and await self._ask_past_turn(height, attempt, current):
            return  # our turn passed while we prepared, and a later attempt's block was there (docs/adr/0209)
        try:  # through node/byzantine: a Byzantine node may withhold or equivocate here
            block = await byzantine.propose(self.node, proof, timestamp_ms=chain.clock.now_ms())
        except LedgerError as err:  # e.g. a market contract refuses what the mempool holds: propose nothing
            _events.warning("draw.not_proposed", height=height, attempt=attempt, reason=err.reason,
                            detail=err.detail[:200])
            return
        except Exception as err:  # a market contract's bug: log it, keep the proposer loop alive
            _events.error("draw.propose_failed", height=height, attempt=attempt, error=type(err).__name__,
                          detail=str(err)[:200])
            return
        self.proposed += 1
        _events.info("draw.proposed", height=block.height, attempt=attempt, txs=len(block.txs))

    def status(self) -> dict[str, Any]:
        """Fields for ``GET /status``."""
        return {"rule": self.rule, "proposed": self.proposed, "fallbacks": self.fallbacks,
                "batch_seals": self.batch_seals, "regossips": self.regossips, "formation_s": self.formation_s,
                "asked_earlier": self.asked, "found_late": self.found_late,
                "asked_ahead": self.asked_ahead, "found_ahead": self.found_ahead, "past_turn": self.past_turn,
                "backoff": round(self.backoff, 3)}
