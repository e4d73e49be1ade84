"""The ``pol`` consensus driver: collect miners' submissions, verify claimed losses by re-computing them,
rank, propose when we won, check proposed blocks, and adopt the winner's model.

Shared by every node of a PoL network (leaders validate too). The pure ledger checks the proof's shape, the
winner's BLS reveal, and that the winner of attempt k is the (k+1)-th lowest *claimed* loss of the listed
submissions; this driver adds a block check that re-computes the winner's loss (reason ``pol-loss``), refuses a
block whose winner is not among the k+1 best submissions it verified itself, and refuses an attempt-k block
that arrives sooner than ``(k − ½) × block_s`` after it ranked the round (``pol-early``). The market says when
a round's mining ends (:meth:`PolDriver.settle`): the best verified claimant proposes at once, the (k+1)-th
after ``k × block_s`` when no block for the round came (docs/adr/0095). The learning task comes from the
market's spec (``MarketSpec.learning_task``).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio

from bazaar.ledger.block import Block
from bazaar.ledger.checks import BlockCheck
from bazaar.ledger.consensus import make_reveal
from bazaar.ledger.errors import InvalidBlock, LedgerError, LedgerReason
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.chainmsg import PROTO_MODEL
from bazaar.protocol.transport import PeerUnavailable, RemoteRejected

from .. import byzantine
from ..chain.hooks import BlockHooks
from ..logs import Events
from .base import DriverHost
from .pol_models import LearningTask, ModelStore, model_hash, weights_bytes, weights_from_bytes

FETCH_TIMEOUT = 10.0
"""One deadline for fetching every claim's model of a round (concurrently)."""
MAX_CLAIMS = 64
"""At most this many claims of a round are considered (the lowest claimed losses)."""
VERIFIED_KEPT = 3
"""Claims a node verifies per round, lowest claimed loss first: the winner and the fallbacks that may propose
after it (ai-bazaar waits out three attempts). A failed claim is replaced by the next (docs/adr/0147)."""
NOT_LEASED = "not-leased"
EARLY_SLACK = 0.5
"""An attempt-k block is refused when it arrives sooner than ``(k − EARLY_SLACK) × block_s`` after this node
ranked the round (the proposer waits ``k × block_s`` after its own ranking; the slack absorbs the spread of the
nodes' ranking times)."""
DECISION_WAIT = 30.0
CHECKS_KEPT = 256
"""Re-computed losses kept per (miner, model hash): a claim checked as it arrived is not fetched again."""
PREFETCH_QUEUE = 256
"""Claims waiting for their background check; when full, the ranking checks the rest itself."""
SYNC_WAIT = 10.0
ROUNDS_KEPT = 32
_events = Events("pol")


@dataclass(frozen=True)
class Submission:
    """A miner's signed claim: the hash of its trained weights and their loss on the evaluation split."""

    submitter: bytes
    model_hash: bytes
    loss: float
    commit: bytes


class LossCheck:
    """One claim's model fetched and its loss re-computed (``loss`` None: the model did not come or was wrong)."""

    def __init__(self) -> None:
        self.loss: float | None = None
        self.done = trio.Event()


def loss_matches(claimed: float, recomputed: float) -> bool:
    """Deterministic training makes the re-computed loss equal the claim; allow float formatting noise."""
    return abs(claimed - recomputed) <= 1e-9 * max(1.0, abs(claimed))


class PolDriver:
    """Submissions per round, verified ranking, block checks and model adoption."""

    rule = "pol"

    def __init__(self, node: DriverHost, task: LearningTask, models: ModelStore, *, fallback_s: float,
                 byzantine: Iterable[str] = ()) -> None:
        self.node = node
        self.task = task
        self.models = models
        self.fallback_s = fallback_s
        """``block_s``: the (k+1)-th best claimant proposes ``k × fallback_s`` after ranking the round."""
        self.byzantine = frozenset(byzantine)
        self.submissions: OrderedDict[int, dict[bytes, Submission]] = OrderedDict()
        self.winners: dict[int, bytes] = {}
        self.verified: OrderedDict[int, list[Submission]] = OrderedDict()
        """Per round, the claims this node verified, best first: attempt k belongs to ``verified[round][k]``."""
        self.decided_at: dict[int, float] = {}
        """Per round, when this node finished ranking it (``trio.current_time()``): attempt waits count from it."""
        self.proposed = 0
        self.fallbacks = 0
        self.withheld = 0
        self.decisions: OrderedDict[int, trio.Event] = OrderedDict()
        self.cheaters: set[tuple[int, bytes]] = set()
        self.leased: OrderedDict[int, frozenset[bytes]] = OrderedDict()
        """The miners that leased compute in each round (from the market's lease): only they may claim."""
        self.all_claimed: OrderedDict[int, trio.Event] = OrderedDict()
        """Per round, set once every leased miner that could propose has claimed (the mining window closes)."""
        self.checks: OrderedDict[tuple[bytes, bytes], LossCheck] = OrderedDict()
        """Per (miner, model hash), its model's re-computed loss: started in the background as each claim arrives
        (while the other miners still train), so the ranking at the close of mining finds them done."""
        self._prefetch_send, self._prefetch_recv = trio.open_memory_channel[Submission](PREFETCH_QUEUE)
        node.transport.set_handler(PROTO_MODEL, models.serve)
        self.hooks = BlockHooks(prepare=self.prepare_block, may_attest=self.may_attest, imported=self.after_import)

    # ------------------------------------------------------------ submissions
    def add_submission(self, round_no: int, commit_raw: bytes) -> Submission:
        """Record a signed ``tx/model_commit`` as a submission of ``round_no``.

        Raises:
            ProtocolError: the commitment does not verify or is not a model commitment of that round.
        """
        env = decode_tx(commit_raw, self.node.network_id)
        if env.type != "tx/model_commit" or env.round != round_no:
            raise ProtocolError("expected a model commitment of this round", reason="schema")
        if not self.may_claim(round_no, env.sender):
            raise ProtocolError("a claim from a key that leased no compute this round", reason=NOT_LEASED)
        if env.sender not in self.node.chain.state.validators:
            raise ProtocolError("a claim from a key without a registered BLS key (it could never propose)",
                                reason=LedgerReason.UNKNOWN_VALIDATOR)
        sub = Submission(env.sender, env.body["hash"], float(env.body["loss"]), commit_raw)
        table = self.submissions.setdefault(round_no, {})
        if env.sender not in table:
            table[env.sender] = sub
            if self._may_be_kept(round_no, sub):
                with contextlib.suppress(trio.WouldBlock):  # checked in the background now; ranking waits or redoes
                    self._prefetch_send.send_nowait(sub)
        while len(self.submissions) > ROUNDS_KEPT:
            self.submissions.popitem(last=False)
        self._note_claims(round_no)
        return sub

    def _may_be_kept(self, round_no: int, sub: Submission) -> bool:
        """Whether ``sub`` ranks among the ``VERIFIED_KEPT`` best claims of ``round_no`` seen so far: only those
        are checked in the background as they arrive (≈ VERIFIED_KEPT · ln N checks a round, not N per node:
        docs/adr/0144, 0147)."""
        better = sum(1 for s in self.ranked(round_no)
                     if (s.loss, s.submitter) < (sub.loss, sub.submitter)
                     and (round_no, s.submitter) not in self.cheaters)
        return better < VERIFIED_KEPT

    def inline_weights(self, digest: bytes, limit: int) -> bytes | None:
        """Our model ``digest``'s weight bytes to send inside a claim, when they fit in ``limit`` bytes."""
        w = self.models.get(digest)
        if w is None or 8 * w.size > limit:
            return None
        return weights_bytes(w)

    def offer_weights(self, sub: Submission, raw: bytes | None) -> bool:
        """Keep weights a claim carried inline (checked against its model hash): verifying the claim then needs
        no fetch from the miner (docs/adr/0147). False when absent or not the claimed model."""
        if raw is None or self.models.get(sub.model_hash) is not None:
            return False
        try:
            w = weights_from_bytes(raw, self.task.n_params)
        except ValueError:
            return False
        if model_hash(w) != sub.model_hash:
            return False
        self.models.put(w)
        return True

    def _claims_event(self, round_no: int) -> trio.Event:
        event = self.all_claimed.get(round_no)
        if event is None:
            event = self.all_claimed[round_no] = trio.Event()
            while len(self.all_claimed) > ROUNDS_KEPT:
                self.all_claimed.popitem(last=False)
        return event

    def missing_claims(self, round_no: int) -> set[bytes] | None:
        """The leased miners of ``round_no`` that could propose (a registered BLS key, not slashed) and have not
        claimed yet; None while the round's lease is unknown here."""
        leased = self.leased.get(round_no)
        if leased is None:
            return None
        state = self.node.chain.state
        claimed = self.submissions.get(round_no, {})
        return {m for m in leased if m in state.validators and m not in state.slashed and m not in claimed}

    def _note_claims(self, round_no: int) -> None:
        if self.missing_claims(round_no) == set():
            self._claims_event(round_no).set()

    async def mining_closed(self, round_no: int, deadline_s: float) -> bool:
        """Wait until every leased miner of ``round_no`` that could propose has claimed, or ``deadline_s`` seconds
        passed (the mining deadline, for the missing ones). Returns whether every claim came (docs/adr/0115).

        The set of claims ranked is the same as at the deadline: nobody else may claim in the round."""
        event = self._claims_event(round_no)
        self._note_claims(round_no)
        with trio.move_on_after(max(0.0, deadline_s)):
            await event.wait()
        return event.is_set()

    def may_claim(self, round_no: int, account: bytes) -> bool:
        """Whether ``account`` leased compute in ``round_no`` (True while the round's lease is not known yet: a
        claim may overtake the lease on gossip; :meth:`ranked` filters again once it is)."""
        leased = self.leased.get(round_no)
        return leased is None or account in leased

    def ranked(self, round_no: int) -> list[Submission]:
        """Submissions of a round from leased miners that can propose (a registered BLS key, not slashed), lowest
        claimed loss first (ties by account bytes, as the ledger ranks them)."""
        state = self.node.chain.state
        subs = [s for s in self.submissions.get(round_no, {}).values() if self.may_claim(round_no, s.submitter)
                and s.submitter in state.validators and s.submitter not in state.slashed]
        return sorted(subs, key=lambda s: (s.loss, s.submitter))

    async def verify(self, sub: Submission) -> bool:
        """Fetch the submission's weights and re-compute its loss (once per model: see :meth:`loss_of`)."""
        with trio.move_on_after(FETCH_TIMEOUT):
            recomputed = await self.loss_of(sub)
            return recomputed is not None and self._matches(sub, recomputed)
        return False

    async def loss_of(self, sub: Submission) -> float | None:
        """The re-computed loss of ``sub``'s model: the background check's result when one ran or runs (waited
        for), else fetched and evaluated now; None when the model did not come (within ``FETCH_TIMEOUT``) or did
        not match its hash. A failed check is retried by the next caller."""
        key = (sub.submitter, sub.model_hash)
        check = self.checks.get(key)
        if check is not None and not (check.done.is_set() and check.loss is None):
            await check.done.wait()
            return check.loss
        check = self._new_check(key)
        await self._run_check(sub, check)
        return check.loss

    def _new_check(self, key: tuple[bytes, bytes]) -> LossCheck:
        check = self.checks[key] = LossCheck()
        while len(self.checks) > CHECKS_KEPT:
            self.checks.popitem(last=False)
        return check

    async def _run_check(self, sub: Submission, check: LossCheck) -> None:
        try:
            w = await self.models.fetch(self.node.transport, sub.submitter, sub.model_hash, timeout=FETCH_TIMEOUT)
            check.loss = float(await self.node.compute(self.task.loss, w))
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError, ValueError, ProtocolError) as err:
            _events.warning("pol.fetch_failed", miner=sub.submitter, error=repr(err)[:200])
        finally:
            check.done.set()

    async def _prefetch(self, sub: Submission) -> None:
        key = (sub.submitter, sub.model_hash)
        if key not in self.checks:
            await self._run_check(sub, self._new_check(key))

    def expect(self, round_no: int, miners: Iterable[bytes] | None = None) -> None:
        """A round we take part in has started mining: blocks for it wait for our own ranking. ``miners``: the
        accounts that leased compute in it (the market's lease); only their claims count."""
        self.decisions.setdefault(round_no, trio.Event())
        while len(self.decisions) > ROUNDS_KEPT:
            self.decisions.popitem(last=False)
        if miners is not None:
            self.leased[round_no] = frozenset(miners)
            while len(self.leased) > ROUNDS_KEPT:
                self.leased.popitem(last=False)
            self._note_claims(round_no)

    async def _losses(self, subs: list[Submission], deadline: float) -> dict[bytes, float]:
        """The submissions' re-computed losses, concurrently until ``deadline`` (``trio.current_time()``): a
        claim checked in the background as it arrived is not fetched again; one whose model does not arrive in
        time is dropped, never waited on one after another."""
        losses: dict[bytes, float] = {}

        async def one(sub: Submission) -> None:
            loss = await self.loss_of(sub)
            if loss is not None:
                losses[sub.submitter] = loss

        with trio.move_on_at(deadline):
            async with trio.open_nursery() as nursery:
                for sub in subs[:MAX_CLAIMS]:
                    nursery.start_soon(one, sub)
        return losses

    def _matches(self, sub: Submission, recomputed: float) -> bool:
        if not loss_matches(sub.loss, recomputed):
            _events.warning("pol.false_claim", miner=sub.submitter, claimed=sub.loss, recomputed=recomputed,
                            reason=LedgerReason.POL_LOSS)
            return False
        return True

    async def decide(self, round_no: int) -> Submission | None:
        """Rank the round: fetch the claims' models best claimed loss first and re-compute each loss, until
        ``VERIFIED_KEPT`` verify or ``FETCH_TIMEOUT`` (one deadline) runs out; keep the claims that verified,
        best first (``verified``); returns the best, or None when none verifies.

        A claim that fails (false loss, model not served in time) is replaced by the next best; claims ranked
        below the kept ones are never fetched: every node fetching every claim is N² model transfers a round,
        which at 50 processes on 2 cores timed out and gave each node its own winner (docs/adr/0147)."""
        try:
            ranked = [s for s in self.ranked(round_no) if (round_no, s.submitter) not in self.cheaters]
            ranked = ranked[:MAX_CLAIMS]
            good: list[Submission] = []
            deadline = trio.current_time() + FETCH_TIMEOUT
            tried = 0
            while len(good) < VERIFIED_KEPT and tried < len(ranked):
                batch = ranked[tried:tried + VERIFIED_KEPT - len(good)]
                tried += len(batch)
                recomputed = await self._losses(batch, deadline)
                for sub in batch:
                    loss = recomputed.get(sub.submitter)
                    if loss is not None and self._matches(sub, loss):
                        good.append(sub)
                    else:
                        self.cheaters.add((round_no, sub.submitter))  # a false claim, or a model not served in time
            good.sort(key=lambda s: (s.loss, s.submitter))
            self.verified[round_no] = good
            while len(self.verified) > ROUNDS_KEPT:
                self.verified.popitem(last=False)
            if good:
                self.winners[round_no] = good[0].submitter
            return good[0] if good else None
        finally:
            self.decided_at[round_no] = trio.current_time()
            for old in sorted(self.decided_at)[:-ROUNDS_KEPT]:
                del self.decided_at[old]
            self.expect(round_no)
            self.decisions[round_no].set()

    def settled(self, round_no: int) -> bool:
        """Whether our head already holds a PoL block for ``round_no`` (or a later round)."""
        return self.node.chain.state.pol_round >= round_no

    async def settle(self, round_no: int) -> tuple[Submission | None, Block | None]:
        """After the round's mining deadline: rank it, then propose if one of our claims is entitled — at once
        when ours is the best verified claim (attempt 0), after ``k × block_s`` without a block for the round
        when it is the (k+1)-th (attempt k: the better claimants are silent). Returns the best verified claim
        and the block we proposed (None when we did not propose).
        """
        best = await self.decide(round_no)
        if best is None:
            return None, None
        me = self.node.key.public
        ranking = [s.submitter for s in self.verified[round_no]]
        if me not in ranking:
            return best, None
        attempt = ranking.index(me)
        if attempt:
            chain = self.node.chain
            wait = self.decided_at[round_no] + attempt * self.fallback_s - trio.current_time()
            try:
                await chain.wait_for(lambda: self.settled(round_no), timeout=max(0.0, wait))
                return best, None  # a better claimant proposed in time
            except trio.TooSlowError:
                pass
            if self.settled(round_no):
                return best, None
            self.fallbacks += 1
            _events.warning("pol.silent_winner", round=round_no, attempt=attempt, winner=ranking[0])
        if byzantine.WITHHOLD_BLOCK in self.byzantine:  # entitled to propose now, and keeps the block to itself
            self.withheld += 1
            _events.warning("pol.withheld", round=round_no, attempt=attempt)
            return best, None
        try:
            block = await self.propose(round_no, self.verified[round_no][attempt], attempt)
        except LedgerError as err:
            _events.warning("pol.not_proposed", round=round_no, attempt=attempt, reason=err.reason,
                            detail=err.detail[:200])
            return best, None
        return best, block

    def proof(self, round_no: int, winner: Submission, attempt: int = 0) -> dict[str, Any]:
        """The consensus proof of a block we propose at ``attempt``: the claims we verified, best first (so the
        ledger's ranking of them is ours), the winner, and our BLS reveal for the next height."""
        subs = [s.commit for s in self.verified.get(round_no, [winner])]
        proof: dict[str, Any] = {"rule": "pol", "submissions": subs, "winner": winner.submitter,
                                 "reveal": make_reveal(self.node.bls_secret, self.node.network_id,
                                                       self.node.chain.height + 1)}
        if attempt:
            proof["attempt"] = attempt
        return proof

    async def propose(self, round_no: int, winner: Submission, attempt: int = 0) -> Block:
        """Build, import and gossip the round's block (we are its winner at ``attempt``), once we hold the
        certified head our peers showed us (a restarted node never proposes on an old head).

        Raises:
            InvalidBlock: ``not-synced`` when we did not catch up within ``SYNC_WAIT``; ``withheld`` for a
                Byzantine ``withhold-block`` node; else as :meth:`ChainService.propose`.
        """
        chain = self.node.chain
        with trio.move_on_after(SYNC_WAIT):
            await chain.wait_for(lambda: chain.synced, timeout=SYNC_WAIT * 2)
        # the Byzantine hook (node/byzantine): `equivocate` gossips a twin (`withhold-block` is handled in settle)
        block = await byzantine.propose(self.node, self.proof(round_no, winner, attempt),
                                       timestamp_ms=chain.clock.now_ms())
        self.proposed += 1
        _events.info("pol.proposed", round=round_no, attempt=attempt, height=block.header.height)
        return block

    # ------------------------------------------------------------ block hooks
    def _winner_of(self, block: Block) -> tuple[int, Submission] | None:
        proof = block.header.consensus
        if proof.get("rule") != "pol":
            return None
        for raw in proof.get("submissions", []):
            try:
                env: Envelope = decode_tx(raw, self.node.network_id)
            except ProtocolError:
                continue
            if env.sender == proof.get("winner") and env.type == "tx/model_commit":
                return env.round, Submission(env.sender, env.body["hash"], float(env.body["loss"]), raw)
        return None

    @staticmethod
    def _attempt_of(block: Block) -> int:
        attempt = block.header.consensus.get("attempt", 0)
        return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 0 else 0

    def _within_rank(self, round_no: int, submitter: bytes, attempt: int) -> bool:
        """Whether ``submitter`` is among the ``attempt + 1`` best claims we verified for the round (True when we
        did not rank it ourselves)."""
        mine = self.verified.get(round_no)
        if mine is None:
            return True
        return submitter in [s.submitter for s in mine[:attempt + 1]]

    def _early(self, round_no: int, attempt: int, arrived: float) -> bool:
        """Whether an attempt-``attempt`` block that arrived at ``arrived`` came before its wait."""
        decided = self.decided_at.get(round_no)
        return attempt > 0 and decided is not None and arrived < decided + (attempt - EARLY_SLACK) * self.fallback_s

    async def prepare_block(self, block: Block) -> BlockCheck | None:
        """Fetch and re-evaluate the block's winning model; returns the ledger check of the winner's loss, of its
        rank among the claims we verified, and of the attempt's wait."""
        found = self._winner_of(block)
        if found is None:
            return None
        arrived = trio.current_time()
        round_no, sub = found
        attempt = self._attempt_of(block)
        if not self.may_claim(round_no, sub.submitter):
            _events.warning("pol.not_leased", round=round_no, proposer=sub.submitter)

            def not_leased(parent: State, checked: Block) -> None:
                raise InvalidBlock("pol-loss", "the winner leased no compute this round")

            return not_leased
        pending = self.decisions.get(round_no)
        if pending is not None and not pending.is_set():
            for raw in block.header.consensus.get("submissions", []):  # claims gossip has not brought us yet
                try:
                    self.add_submission(round_no, raw)
                except (ProtocolError, KeyError, TypeError, ValueError):
                    continue
            with trio.move_on_after(DECISION_WAIT):
                await pending.wait()  # import only once we ranked the round ourselves
        if self._early(round_no, attempt, arrived):
            waited = arrived - self.decided_at[round_no]
            _events.warning("pol.early_attempt", round=round_no, attempt=attempt, proposer=sub.submitter,
                            waited_s=round(waited, 3))

            def early(parent: State, checked: Block) -> None:
                raise InvalidBlock("pol-early", f"attempt {attempt} arrived {waited:.2f} s after the round was "
                                                f"ranked, before its wait of {attempt} × {self.fallback_s} s")

            return early
        mine = self.verified.get(round_no)
        if not self._within_rank(round_no, sub.submitter, attempt):
            _events.warning("pol.not_best", round=round_no, proposer=sub.submitter, attempt=attempt,
                            expected=self.winners.get(round_no))
            ok = False  # we verified better claims for this round: never build on this block
        elif mine is not None or sub.submitter == self.node.key.public:
            ok = True  # verified when we ranked the round (or our own claim)
        else:
            ok = await self.verify(sub)

        def check_loss(parent: State, checked: Block) -> None:
            found_again = self._winner_of(checked)
            if not ok or found_again is None or found_again[1] != sub:
                raise InvalidBlock("pol-loss", "the winner's claimed loss does not verify")

        return check_loss

    def may_attest(self, block: Block) -> bool:
        """Refuse a block whose winner is not among the attempt + 1 best submissions we verified for that round."""
        found = self._winner_of(block)
        if found is None:
            return True
        round_no, sub = found
        if not self.may_claim(round_no, sub.submitter):
            return False
        if not self._within_rank(round_no, sub.submitter, self._attempt_of(block)):
            _events.warning("pol.not_best", round=round_no, proposer=sub.submitter, expected=self.winners.get(round_no))
            return False
        return True

    def after_import(self, block: Block) -> None:
        """Adopt the winner's weights as the global model."""
        found = self._winner_of(block)
        if found is not None and self.models.adopt(found[1].model_hash):
            _events.info("pol.adopted", round=found[0], miner=found[1].submitter, loss=found[1].loss)

    async def run(self) -> None:
        """Fetch the head block's model after a restart or sync, then check each claim's model as it arrives
        (fetch and loss re-computation, while the round's other miners still train: docs/adr/0144)."""
        await self.adopt_head_model()
        async with trio.open_nursery() as nursery:
            async for sub in self._prefetch_recv:
                nursery.start_soon(self._prefetch, sub)

    async def adopt_head_model(self) -> None:
        """After a restart or sync: fetch the head block's winning model if we lack it."""
        head = self.node.chain.chain.head
        if head is None:
            return
        found = self._winner_of(head)
        if found is None or found[1].model_hash == self.models.global_hash:
            return
        try:
            await self.models.fetch(self.node.transport, found[1].submitter, found[1].model_hash, timeout=FETCH_TIMEOUT)
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError, ValueError, ProtocolError):
            return
        self.after_import(head)

    def status(self) -> dict[str, Any]:
        """PoL fields for the status endpoint."""
        return {"global_model": self.models.global_hash.hex()[:16], "rounds_seen": len(self.submissions),
                "proposed": self.proposed, "fallbacks": self.fallbacks, "withheld": self.withheld}
