"""An SLA oracle, and — the first oracle — the round leader.

For every task the contract allocates, each oracle independently probes the provider (real round trips over
libp2p), waits for the provider's result on chain (its completion time), fetches the result's blobs and spot-
checks them, decides a verdict (``met``, ``late``, ``missing`` or ``wrong``), signs it with its BLS key and
gossips it among the oracles, with the other verdicts it reached at once (docs/adr/0188). Once t oracles agree
on a verdict, the task's aggregator (the first oracle in an order drawn from the task's key; the others step in
after a grace period) aggregates their signatures into one and posts the ``quorum`` record with every dissent it
heard; the contract settles on it.

The leader's round (one simulated day): it calls the day, waits for the requesters' tasks to land, closes the
submission window (the block its last task lands in allocates, docs/adr/0187) and waits for every task of the
round to be settled or refunded on its chain: the round is over once that block is final (docs/adr/0184).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any

import trio

from bazaar.ledger import bls
from bazaar.ledger.amounts import from_units
from bazaar.ledger.block import Block
from bazaar.protocol import Envelope, codec
from bazaar.protocol.markets import cloudchain as msg

from ...byzantine import LYING_ORACLE
from ...rounds.engine import RoundError, RoundResult, RoundStart
from ..app import RoleApp, lifespan, on, on_block
from ..context import Refuse, RequestFailed
from .book import task_key
from .common import (
    MAX_BLOB_BATCH,
    MAX_BLOBS_PER_REQUEST,
    ORACLE,
    PROVIDER,
    REQUESTER,
    BlobStore,
    CloudchainRole,
    decode_all,
    probe_window,
)
from .config import agent_names, round_tasks
from .report import round_outcome

AGGREGATE_GRACE_S = 1.5
"""How long an oracle that is not a round's (or a ruling's) first aggregator waits, per rank, before posting the
quorums itself (a round's later ranks also wait the scenario's ``block_s``: docs/adr/0174)."""
DISSENT_WAIT_S = 0.5
"""How long an aggregator that has t matching attestations waits for the remaining oracles' (their dissent)."""
BATCH_HOLD_S = 0.5
"""How long a round's aggregator holds the quorums it could post while other tasks of the round it watches have no
quorum yet, so that verdicts reached together land in one block (docs/adr/0174). Half a second, not the round:
the quorums of tasks met early land while a slow provider's tasks still wait out their SLA bound, and the block
after the bound carries only the late ones, whose BLS checks every node then makes (docs/adr/0195)."""
CUT_GRACE_S = 1.0
"""How long past a task's deadline (on our clock, from the allocation) and past the last block it imported, beyond
the scenario's ``block_s``, an oracle waits for a block stamped past the deadline before it calls the result
missing on its own (a quiet chain seals no block: docs/adr/0165)."""
CUT_HOLD_S = 10.0
"""The longest an oracle still importing blocks waits past its grace for the block past the deadline."""
EARLY_KEEP = 4096
"""Attestations kept for tasks whose allocation this oracle has not imported yet (oldest dropped first)."""
FETCHED_KEEP = 64
"""Results' blobs kept that were fetched with another task's and not taken yet (oldest dropped first)."""
SETTLE_MARGIN_S = 10.0
WARM_UP_S = 30.0
READY_S = 30.0


@dataclass
class _Watch:
    """What this oracle knows of one allocated task."""

    key: bytes
    provider: bytes
    started: float
    attestations: dict[int, tuple[str, bytes, float, float, bytes]] = field(default_factory=dict)
    posted: bool = False
    quorum: trio.Event = field(default_factory=trio.Event)
    task: bytes = b""
    """The task's key (``key`` is a ruling's own watch key when this watches a dispute)."""
    ruling: bool = False
    alloc_ms: int | None = None
    """The timestamp of the block that allocated the task (the chain's clock)."""
    result_ms: int | None = None
    """The timestamp of the block that carried the result, if it came before the cut."""
    cut_ms: int | None = None
    """The timestamp of the first block of our chain stamped past the deadline (the verdict's cut)."""
    remeasured: bool = False
    """Whether we measured again because every oracle attested and no t of them agreed."""
    agreed_at: float | None = None
    """When (our clock) t attestations first agreed."""


def ruling_key(task: bytes) -> bytes:
    """The key under which oracles collect their ruling attestations on a disputed task."""
    return hashlib.sha256(b"cloudchain/ruling" + task).digest()


def judge(task: Any, delivered: bool, correct: bool, rtt_ms: float, availability: float, completion_ms: float) -> str:
    """An oracle's verdict on what it measured: ``missing`` (nothing delivered), ``wrong`` (the spot check failed),
    ``late`` (latency above the bound, availability below the SLA's, completion after the deadline) or ``met``."""
    if not delivered:
        return "missing"
    if not correct:
        return "wrong"
    if rtt_ms > task.sla.latency_ms or availability < task.sla.availability \
            or completion_ms > task.sla.deadline_s * 1000:
        return "late"
    return "met"


class OracleNode(CloudchainRole):
    """One oracle; the first one also leads rounds."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.index = self.oracles.index(ctx.key.public)
        self.bls_secret = bls.bls_keygen(ctx.key.seed)
        self.blobs = BlobStore(ctx)
        self.watching: dict[bytes, _Watch] = {}
        self.examined: set[bytes] = set()
        self.probed: dict[tuple[bytes, int, float], tuple[trio.Event, list[tuple[float, float]]]] = {}
        """(provider, round, latency bound) -> the measurement (taken once, shared by the provider's tasks)."""
        self.early: dict[bytes, dict[int, dict[str, Any]]] = {}
        """Task key -> oracle index -> a verified attestation that came before we saw the task allocated."""
        self.last_block_at = 0.0
        """When (our clock) we last imported a block."""
        self.uncut: set[bytes] = set()
        """Allocated tasks whose deadline no block of our chain has passed yet."""
        self.liar = ctx.name in self.cfg.lying_oracles or LYING_ORACLE in ctx.byzantine
        self.attested = 0
        self.outbox: dict[int, list[dict[str, Any]]] = {}
        """Round -> our verdicts not gossiped yet (:meth:`_send_attestations`)."""
        self.sending = False
        self.quorums = 0
        self.was_ready = False
        """Whether the leader has waited for the network's bonds and funds once (it does so only once)."""
        self.aggregating: set[int] = set()
        """Rounds whose quorum batch this oracle's aggregator task is gathering."""
        self.heard = trio.Event()
        """Set (and replaced) whenever an attestation is taken: wakes the round aggregators."""
        self.fetching: dict[bytes, trio.Event] = {}
        """Task key -> set once the blob request that asks for its result's blobs is over."""
        self.fetched: dict[tuple[bytes, bytes, bytes], tuple[bytes, bytes]] = {}
        """(task key, model hash, metadata hash) -> the result's model and metadata, fetched with another task's
        (taken once)."""
        self.fetch_failed: set[bytes] = set()
        """Tasks whose result's blobs a batch asked for from a provider that did not answer in time."""

    # ------------------------------------------------------------------ examining tasks
    @lifespan
    async def warm_up(self) -> None:
        """Open one probe stream to every provider once connected, so a round's first probes do not carry
        the protocol negotiation of a first request."""
        providers = [e.key for e in self.ctx.peers(PROVIDER)]
        with trio.move_on_after(WARM_UP_S):
            await self.ctx.chain.wait_for(lambda: all(p in self.ctx.connected() for p in providers),
                                          timeout=WARM_UP_S)
        for p in providers:
            with contextlib.suppress(RequestFailed):
                await self.ctx.ask(p, msg.MSG_PROBE, {"nonce": os.urandom(16)}, round=0, timeout=5.0)

    @on_block
    def on_alloc(self, block: Block) -> None:
        """Start examining every task the block allocates; note the chain's time of every result and of the first
        block past each watched task's deadline (the verdict's cut: docs/adr/0165)."""
        stamp = block.header.timestamp_ms
        self.last_block_at = trio.current_time()
        for t in decode_all(block, self.ctx.network_id) or []:
            if t.type != "tx/record" or t.market != msg.MARKET:
                continue
            if t.body["kind"] == msg.ALLOC and t.sender == block.header.proposer:
                for key, prov in zip(t.body["data"]["tasks"], t.body["data"]["providers"], strict=True):
                    if prov and key not in self.examined:
                        self.examined.add(key)
                        watch = self.watching.setdefault(key, _Watch(key, prov, trio.current_time()))
                        watch.started = trio.current_time()  # our clock starts when we see the allocation
                        watch.alloc_ms = stamp
                        for idx, body in sorted(self.early.pop(key, {}).items()):
                            self._take(idx, body)
                        self.ctx.spawn(f"examine.{key.hex()[:8]}", self.examine, key)
                        self.uncut.add(key)
            elif t.body["kind"] == msg.RESULT and t.body["data"].get("task") in self.uncut:
                done = self.watching[t.body["data"]["task"]]
                if done.result_ms is None:
                    done.result_ms = stamp
        deadline_ms = self.cfg.deadline_s * 1000
        for key in [k for k in self.uncut if stamp - (self.watching[k].alloc_ms or stamp) > deadline_ms]:
            self.watching[key].cut_ms = stamp
            self.uncut.discard(key)
        self._foresee(block)

    def _foresee(self, block: Block) -> None:
        """Start measuring the providers of the allocation the next block must carry as soon as our head fixes it
        (the contract is a deterministic function of the head), not when that block arrives: the probes then run
        while it is proposed and imported, and :meth:`examine` joins them (one measurement per provider, round and
        bound, :meth:`measured`; docs/adr/0184). A head that loses a fork costs at most one measurement of a provider
        that gets no task. A node still catching up on old blocks foresees nothing."""
        chain = self.ctx.chain
        state = chain.state
        if state.head != block.header.hash or not chain.synced:
            return
        planned = self.book.allocation(state, self.rules.task_expiry)  # the contract's allocation part alone
        if planned is None:
            return
        batch, accounts, alloc, _ = planned
        started: set[tuple[bytes, int, float]] = set()
        for entry, i in zip(batch, alloc.assignment, strict=True):
            slot = (accounts[i], entry.round, entry.task.sla.latency_ms) if i >= 0 else None
            if slot is None or slot in self.probed or slot in started:
                continue
            started.add(slot)
            self.ctx.spawn(f"probe.{slot[0].hex()[:8]}", self.measured, *slot)

    def probe_the_day(self, round_no: int, called_ms: int) -> None:
        """With ``probe_from = "day"``: start this round's measurement of every bonded provider we are connected to
        as soon as the day is called, with the scenario's latency bound (every shipped task carries it; a task
        with another bound gets a measurement of its own). The probes then run while the tasks, the allocation
        and the results land, instead of after them (docs/adr/0186); their window closes ``called_ms`` (the
        leader's stamp of the call) plus the bound, for every oracle alike (docs/adr/0191)."""
        if self.cfg.probe_from != "day":
            return
        connected = self.ctx.connected()
        for prov, _ in self.book.bonded(self.ctx.chain.state):
            slot = (prov, round_no, self.cfg.latency_ms)
            if prov in connected and slot not in self.probed:
                self.ctx.spawn(f"probe.{prov.hex()[:8]}", self.measured, *slot, called_ms)

    @on(msg.MSG_DAY, from_roles=(ORACLE,))
    async def on_day(self, env: Envelope) -> None:
        """The leader called the day: start its probes (:meth:`probe_the_day`)."""
        if env.sender != self.rules.leader:
            raise Refuse("not-authorised", "only the round leader calls a day")
        self.probe_the_day(env.round, env.ts)

    async def probe(self, provider: bytes, bound_ms: float, round_no: int,
                    called_ms: int | None = None) -> tuple[float, float]:
        """``(least round trip in ms of the answered probes, share of probes answered before the timeout)``.

        The least, not the median: on a loaded machine a round trip is the network's latency plus queueing
        behind other work, and the least of a few probes is the estimate of the former that noise inflates
        least (a provider that is slow on purpose is slow on every probe).

        The probes go out at once, and the measurement closes as soon as it is decided (docs/adr/0151): when
        every probe has answered, or when the SLA's latency bound has passed with no answer — then the least
        round trip exceeds the bound whatever comes later, the verdict is ``late`` (or worse), and the result
        is ``(inf, 0.0)`` without waiting out the probes' timeouts.

        ``called_ms``: probes of the day's call, whose window closes at the call's stamp plus the bound, so that
        every oracle closes it at once however late the call reached it (docs/adr/0191); it stays open at least
        half the bound (a clock far off the leader's cannot close it at once)."""
        rtts: list[float] = []
        finished = [0]
        decided = trio.Event()
        timeout = max(1.0, 4 * bound_ms / 1000)
        window = bound_ms / 1000 if called_ms is None else probe_window(bound_ms, called_ms, self.ctx.now_ms())

        async def one() -> None:
            t0 = trio.current_time()
            try:
                await self.ctx.ask(provider, msg.MSG_PROBE, {"nonce": os.urandom(16)}, round=round_no,
                                   timeout=timeout)
                rtts.append((trio.current_time() - t0) * 1000)
            except RequestFailed:
                pass
            finally:
                finished[0] += 1
                if rtts or finished[0] == self.cfg.probes:
                    decided.set()

        async with trio.open_nursery() as nursery:
            for _ in range(self.cfg.probes):
                nursery.start_soon(one)
            with trio.move_on_after(window):
                await decided.wait()
            if not rtts:
                nursery.cancel_scope.cancel()  # no answer within the bound: late, whatever comes later
        return (min(rtts) if rtts else math.inf), len(rtts) / self.cfg.probes

    async def measured(self, provider: bytes, round_no: int, bound_ms: float,
                       called_ms: int | None = None) -> tuple[float, float]:
        """The provider's probes of this round: taken once per provider, round and latency bound, shared by its
        tasks (``called_ms``: started by the day's call, :meth:`probe`)."""
        slot = self.probed.get((provider, round_no, bound_ms))
        if slot is None:
            slot = self.probed[(provider, round_no, bound_ms)] = (trio.Event(), [])
            for old in [k for k in self.probed if k[1] < round_no - 1]:
                del self.probed[old]
            try:
                t_probe = trio.current_time()
                slot[1].append(await self.probe(provider, bound_ms, round_no, called_ms))
                waited = trio.current_time() - t_probe
                self.ctx.events.info("oracle.probed", round=round_no, provider=self.ctx.name_of(provider),
                                     rtt_ms=min(slot[1][0][0], 1e9), ms=round(waited * 1000, 1))
                if math.isinf(slot[1][0][0]):  # no answer within the SLA's bound: a wait the contract imposes
                    self.deadline_waits.longest(round_no, waited)
            finally:
                slot[0].set()
        await slot[0].wait()
        return slot[1][0] if slot[1] else (math.inf, 0.0)

    async def examine(self, key: bytes) -> None:
        """Probe the provider while waiting for the result, spot-check the result as soon as it is on chain (also
        while the probes still run: a provider that does not answer them in time holds them for the SLA's whole
        latency bound, and the fetch no longer waits behind that, docs/adr/0164), attest.

        Whether the result came in time is read from the chain, not from our clock (docs/adr/0165): its
        completion is the time between the blocks that allocated the task and carried the result, and the
        verdict is cut at the first block of our chain stamped past the deadline — a result carried by a
        block before the cut counts (``met`` or ``late``), one after it is ``missing``. Every oracle that
        follows the same chain reads the same completion and the same cut, however late it imports the blocks.
        Only when no block past the deadline comes (a quiet chain) does our clock cut: ``block_s + CUT_GRACE_S``
        after the deadline and after the last block we imported (an oracle that lags behind a loaded network keeps
        importing blocks, and waits for the one past the deadline, at most ``CUT_HOLD_S`` more)."""
        ctx, watch = self.ctx, self.watching[key]
        entry = self.book.tasks.get(key)
        if entry is None:
            return
        task = entry.task
        probes: list[tuple[float, float]] = []
        checked: dict[tuple[bytes, bytes], bool] = {}  # (model, metadata hash) -> spot check passed (while probing)
        ctx.events.info("oracle.examine", round=entry.round, task=task.id)

        def decided() -> bool:
            e = self.book.tasks.get(key)
            return e is None or e.state != "allocated" or watch.result_ms is not None or watch.cut_ms is not None

        async def take_probes() -> None:
            probes.append(await self.measured(watch.provider, entry.round, task.sla.latency_ms))

        async def await_result() -> None:
            # our clock cuts only a quiet chain: past the deadline and a grace after the last block we imported
            # (an oracle still importing a backlog waits for the block past the deadline); block_s is a fallback
            # proposer's wait, so a live chain seals a pending transaction within about that long
            grace = ctx.deadline("block_s") + CUT_GRACE_S
            limit = watch.started + task.sla.deadline_s + grace
            while not decided():
                now = trio.current_time()
                wake = min(max(limit, self.last_block_at + grace), limit + CUT_HOLD_S)
                if now >= wake:
                    break
                with contextlib.suppress(trio.TooSlowError):
                    await ctx.chain.wait_for(decided, timeout=wake - now)
            if watch.result_ms is not None:
                ctx.events.info("oracle.result_seen", task=task.id)
                seen = self.book.tasks.get(key)
                if seen is not None and seen.state == "allocated" and seen.result:
                    checked[(seen.result, seen.meta)] = await self.check_result(seen, watch.provider, self.index)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(take_probes)
            nursery.start_soon(await_result)
        rtt, availability = probes[0]
        current = self.book.tasks.get(key)
        if current is None or current.state != "allocated":
            return  # decided without us
        if watch.alloc_ms is not None and watch.result_ms is not None:
            delivered, completion_ms = bool(current.result), float(watch.result_ms - watch.alloc_ms)
        elif watch.alloc_ms is not None and watch.cut_ms is not None:
            delivered, completion_ms = False, float(watch.cut_ms - watch.alloc_ms)
        else:  # no block past the deadline came (or we folded the blocks without seeing them): our clock
            delivered, completion_ms = bool(current.result), (trio.current_time() - watch.started) * 1000
        done = checked.get((current.result, current.meta))
        ok = delivered and (done if done is not None else await self.check_result(current, watch.provider, self.index))
        verdict = judge(task, delivered, ok, rtt, availability, completion_ms)
        await self.attest(key, verdict, current.result, rtt, availability, completion_ms, entry.round, "")

    async def remeasure(self, key: bytes) -> None:
        """Every oracle attested a task and no t of them agree: probe the provider again and attest anew (the
        completion and the cut are the chain's, the same for all; what varies between honest oracles is the
        probes' round trip near the bound and a fetch that got no answer). Each oracle does this once per task;
        a vote still split after it leaves the task to ``task_expiry`` as before (docs/adr/0165)."""
        watch, entry = self.watching[key], self.book.tasks.get(key)
        if entry is None or entry.state != "allocated" or self.index not in watch.attestations:
            return
        ctx, task = self.ctx, entry.task
        rtt, availability = await self.probe(watch.provider, task.sla.latency_ms, entry.round)
        current = self.book.tasks.get(key)
        if current is None or current.state != "allocated":
            return
        if watch.alloc_ms is not None and watch.result_ms is not None:
            delivered, completion_ms = bool(current.result), float(watch.result_ms - watch.alloc_ms)
        else:
            delivered, completion_ms = False, watch.attestations[self.index][3]
        ok = delivered and await self.check_result(current, watch.provider, self.index)
        verdict = judge(task, delivered, ok, rtt, availability, completion_ms)
        ctx.events.info("oracle.remeasured", task=task.id, verdict=verdict)
        await self.attest(key, verdict, current.result, rtt, availability, completion_ms, entry.round, "")

    async def _fetch_blobs(self, entry: Any, provider: bytes) -> tuple[bytes, bytes]:
        """A result's model and metadata, fetched together with those of the provider's other results on our chain
        that no examination has fetched yet (one request of the blob protocol for them all, docs/adr/0164).

        A task whose result another examination is fetching waits for that request; when it failed, and
        when the batch was refused or answered wrongly, the task's own blobs are asked for alone, so one result's
        blobs never decide another's verdict (a provider that did not answer in time is not asked again).

        Raises:
            RequestFailed: no answer, or bytes that do not match.
        """
        key = entry.key
        if key in self.fetching:
            await self.fetching[key].wait()
        kept = self.fetched.pop((key, entry.result, entry.meta), None)
        if kept is not None:
            return kept
        if key in self.fetch_failed:
            self.fetch_failed.discard(key)
            raise RequestFailed("timeout", "the provider did not answer the batch that asked for this result")
        batch, wanted, size = [entry], [(entry.result, entry.sizes[0]), (entry.meta, entry.sizes[1])], sum(entry.sizes)
        for other in self.book.tasks.values():
            if len(wanted) + 2 > MAX_BLOBS_PER_REQUEST:
                break
            if other.key == key or other.provider != provider or other.state != "allocated" or not other.result \
                    or other.key not in self.watching or other.key in self.fetching \
                    or (other.key, other.result, other.meta) in self.fetched \
                    or size + sum(other.sizes) > MAX_BLOB_BATCH:
                continue
            batch.append(other)
            wanted += [(other.result, other.sizes[0]), (other.meta, other.sizes[1])]
            size += sum(other.sizes)
        done = trio.Event()
        for e in batch[1:]:
            self.fetching[e.key] = done
        try:
            blobs = await self.blobs.fetch_many(wanted, provider, timeout=5.0)
        except RequestFailed as err:
            if err.reason == "timeout":
                self.fetch_failed.update(e.key for e in batch[1:])
            if len(batch) == 1 or err.reason == "timeout":
                raise
            blobs = await self.blobs.fetch_many(wanted[:2], provider, timeout=5.0)
        else:
            for i, e in enumerate(batch[1:], start=1):
                self.fetched[(e.key, e.result, e.meta)] = (blobs[2 * i], blobs[2 * i + 1])
            while len(self.fetched) > FETCHED_KEEP:
                del self.fetched[next(iter(self.fetched))]
        finally:
            for e in batch[1:]:
                del self.fetching[e.key]
            done.set()
            while len(self.fetch_failed) > EARLY_KEEP:
                self.fetch_failed.pop()
        return blobs[0], blobs[1]

    async def check_result(self, entry: Any, provider: bytes, sample_seed: int) -> bool:
        """Fetch a result's blobs from its provider and spot-check them."""
        from bazaar.mechanisms.cloudchain.jobs import spot_check

        ctx, task = self.ctx, entry.task
        try:
            t_fetch = trio.current_time()
            model, meta_raw = await self._fetch_blobs(entry, provider)
            ctx.events.info("oracle.fetched", task=task.id, bytes=len(model) + len(meta_raw),
                            ms=round((trio.current_time() - t_fetch) * 1000, 2))
            meta = codec.decode(meta_raw, max_size=msg.MAX_BLOB)
            return isinstance(meta, dict) and bool(await ctx.compute(
                lambda: spot_check(task.kind, task.units, entry.seed, model, meta, epsilon=task.epsilon,
                                   delta=task.delta, clip_bound=self.cfg.clip, sample_seed=sample_seed)))
        except (RequestFailed, ValueError, TypeError) as err:
            ctx.events.warning("oracle.fetch_failed", task=task.id, error=str(err)[:120])
            return False

    async def attest(self, key: bytes, verdict: str, result: bytes, rtt: float, availability: float,
                     completion_ms: float, round_no: int, prefix: str) -> None:
        """Sign a verdict (a lying oracle flips it), keep it and gossip it."""
        ctx = self.ctx
        if self.liar:
            verdict = "late" if verdict == "met" else "met"
        result = b"" if verdict == "missing" else result
        ctx.events.info("oracle.attest", task=key.hex()[:8], verdict=prefix + verdict, rtt_ms=round(rtt, 1),
                        availability=availability, completion_ms=round(completion_ms, 1))
        sig = bls.sign(self.bls_secret, msg.verdict_message(ctx.network_id, key, prefix + verdict, result))
        body = {"task": key, "verdict": prefix + verdict, "result": result, "rtt_ms": min(rtt, 1e9),
                "completion_ms": min(completion_ms, 1e9), "sig": sig}
        self._take(self.index, body)
        self.attested += 1
        self.outbox.setdefault(round_no, []).append(body)
        if not self.sending:
            self.sending = True
            ctx.spawn("attest.send", self._send_attestations)

    async def _send_attestations(self) -> None:
        """Gossip our outbox's verdicts, one message per round for all those reached by then (docs/adr/0188):
        the verdicts a probe's timeout or a batch fetch decides at once go together, and those reached while a
        message is being sent go in the next."""
        try:
            while self.outbox:
                batch, self.outbox = self.outbox, {}
                for round_no, items in sorted(batch.items()):
                    for i in range(0, len(items), msg.ATTEST_ITEMS):
                        await self.ctx.publish(msg.MSG_ATTEST, {"items": items[i:i + msg.ATTEST_ITEMS]},
                                               round=round_no)
        finally:
            self.sending = False

    @on_block
    def on_dispute(self, block: Block) -> None:
        """Re-examine every task the block brought into dispute."""
        for t in decode_all(block, self.ctx.network_id) or []:
            if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] == msg.DISPUTE:
                key = t.body["data"].get("task")
                d = self.book.disputes.get(key) if isinstance(key, bytes) else None
                if d is not None and not d.ruling and d.height == block.header.height \
                        and ruling_key(key) not in self.examined:
                    self.examined.add(ruling_key(key))
                    self.ctx.spawn(f"rule.{key.hex()[:8]}", self.rule, key)

    async def rule(self, key: bytes) -> None:
        """The ruling on a disputed task: probe the provider again, fetch and spot-check the result again (with
        another sample), and judge the completion the quorum measured."""
        done = self.book.closed.get(key)
        if done is None:
            return
        wk = ruling_key(key)
        self.watching.setdefault(wk, _Watch(wk, done.provider, trio.current_time(), task=key, ruling=True))
        rtt, availability = await self.probe(done.provider, done.task.sla.latency_ms, done.round)
        completion = sorted(done.completion_ms)[len(done.completion_ms) // 2] if done.completion_ms else math.inf
        ok = bool(done.result) and await self.check_result(done, done.provider, 1000 + self.index)
        verdict = judge(done.task, bool(done.result), ok, rtt, availability, completion)
        await self.attest(key, verdict, done.result, rtt, availability, completion, done.round, msg.RULING_PREFIX)

    @on(msg.MSG_ATTEST, from_roles=(ORACLE,))
    async def on_attest(self, env: Envelope) -> None:
        """Another oracle's verdicts (checked: an oracle, known verdicts, BLS signatures; a message with one bad
        signature is refused whole). Each verdict on a task that awaits one is taken; the others are refused, after
        the rest is taken, as ``unknown-task``."""
        pk = self.ctx.chain.state.validators.get(env.sender)
        items = env.body["items"]
        if pk is None or not all(b["verdict"].removeprefix(msg.RULING_PREFIX) in msg.VERDICTS and bls.verify(
                pk, msg.verdict_message(self.ctx.network_id, b["task"], b["verdict"], b["result"]), b["sig"])
                for b in items):
            raise Refuse("bad-attestation", "unknown verdict or BLS signature that does not verify")
        idx = self.oracles.index(env.sender)
        stale = [b["task"].hex()[:8] for b in items if not self._attested(idx, b)]
        if stale:
            raise Refuse("unknown-task", f"no task awaits a verdict under {len(stale)} of {len(items)} keys "
                                         f"({', '.join(stale[:4])})")

    def _attested(self, idx: int, b: dict[str, Any]) -> bool:
        """Take oracle ``idx``'s verified verdict ``b``; False when no task (or open dispute) awaits it."""
        key = b["task"]
        ruling = b["verdict"].startswith(msg.RULING_PREFIX)
        if ruling:
            d, done = self.book.disputes.get(key), self.book.closed.get(key)
            if d is None or d.ruling or done is None:
                return False
            provider = done.provider
        else:
            entry = self.book.tasks.get(key)
            if key in self.book.closed or key in self.settled or (entry is not None and entry.state == "decided"):
                return False
            if entry is None or entry.state != "allocated":
                # an oracle ahead of us attested a task whose allocation we have not imported yet: keep it for then
                self.early.setdefault(key, {})[idx] = b
                while sum(len(v) for v in self.early.values()) > EARLY_KEEP:
                    del self.early[next(iter(self.early))]
                return True
            provider = entry.provider
        wk = ruling_key(key) if ruling else key
        if wk not in self.watching:
            self.watching[wk] = _Watch(wk, provider, trio.current_time(), task=key, ruling=ruling)
        self._take(idx, b)
        return True

    def _take(self, idx: int, b: dict[str, Any]) -> None:
        ruling = b["verdict"].startswith(msg.RULING_PREFIX)
        watch = self.watching[ruling_key(b["task"]) if ruling else b["task"]]
        watch.attestations[idx] = (b["verdict"], b["result"], float(b["rtt_ms"]), float(b["completion_ms"]), b["sig"])
        if self._agreeing(watch) is not None and not watch.posted and not watch.quorum.is_set():
            watch.quorum.set()
            watch.agreed_at = trio.current_time()
            if ruling:
                self.ctx.spawn(f"quorum.{watch.key.hex()[:8]}", self.aggregate, watch.key)
            else:
                self._gather(watch.key)
        elif not ruling and not watch.remeasured and len(watch.attestations) == len(self.oracles) \
                and self._agreeing(watch) is None and not self._decided(watch.key):
            watch.remeasured = True  # a split vote (probes near the bound on a loaded machine): measure once more
            self.ctx.spawn(f"remeasure.{watch.key.hex()[:8]}", self.remeasure, watch.key)
        self.heard.set()
        self.heard = trio.Event()

    def _agreeing(self, watch: _Watch) -> tuple[str, bytes, list[int]] | None:
        groups: dict[tuple[str, bytes], list[int]] = {}
        for i, (v, r, *_rest) in sorted(watch.attestations.items()):
            groups.setdefault((v, r), []).append(i)
        for (v, r), members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            if len(members) >= self.cfg.quorum:
                return v, r, members
        return None

    def _rank(self, key: bytes) -> int:
        order = sorted(range(len(self.oracles)), key=lambda i: hashlib.sha256(key + self.oracles[i]).digest())
        return order.index(self.index)

    def _round_rank(self, round_no: int) -> int:
        """Our place among a round's quorum aggregators: an order drawn from the round, the leader last (it also
        closes the round and, in the demo networks, aggregates the finality votes)."""
        seed = b"cloudchain/aggregator" + round_no.to_bytes(8, "big")
        order = sorted(range(len(self.oracles)),
                       key=lambda i: (i == 0, hashlib.sha256(seed + self.oracles[i]).digest()))
        return order.index(self.index)

    def _round_of(self, key: bytes) -> int | None:
        e = self.book.tasks.get(key)
        return e.round if e is not None else None

    def _gather(self, key: bytes) -> None:
        """A task of ours reached t agreeing attestations: make sure its round's aggregator task runs."""
        round_no = self._round_of(key)
        if round_no is not None and round_no not in self.aggregating:
            self.aggregating.add(round_no)
            self.ctx.spawn(f"quorums.{round_no}", self.aggregate_round, round_no)

    async def _heard_or_block(self, timeout: float) -> None:
        """Return when an attestation is taken, our head moves, or ``timeout`` passes."""
        chain, heard, height = self.ctx.chain, self.heard, self.ctx.chain.height
        with trio.move_on_after(max(0.0, timeout)):
            async with trio.open_nursery() as nursery:
                async def on_heard() -> None:
                    await heard.wait()
                    nursery.cancel_scope.cancel()

                async def on_moved() -> None:
                    with contextlib.suppress(trio.TooSlowError):
                        await chain.wait_for(lambda: chain.height != height, timeout=timeout + 1)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(on_heard)
                nursery.start_soon(on_moved)

    async def aggregate_round(self, round_no: int) -> None:
        """Post the quorums of a round's tasks in one sealed batch (docs/adr/0174): the round's first aggregator
        posts once every task of the round it watches has t agreeing attestations — each from every oracle, or
        ``DISSENT_WAIT_S`` after its t-th — and holds the ready ones at most ``BATCH_HOLD_S`` for the rest; the
        next aggregators do the same ``AGGREGATE_GRACE_S`` + ``block_s`` per rank later for tasks still undecided."""
        # a later rank steps in only when the batch before it should have landed: a fallback proposer's wait
        # (block_s) beyond the per-task grace, so a chain that stalls one proposer does not get duplicate batches
        grace = self._round_rank(round_no) * (AGGREGATE_GRACE_S + self.ctx.deadline("block_s"))
        n = len(self.oracles)
        try:
            while True:
                now = trio.current_time()
                pending = [w for w in self.watching.values() if not w.ruling and not w.posted
                           and self._round_of(w.key) == round_no and not self._decided(w.key)]
                agreed = [w for w in pending if w.agreed_at is not None and self._agreeing(w) is not None]
                if not agreed:
                    return
                due = {w.key: w.agreed_at + (0.0 if len(w.attestations) == n else DISSENT_WAIT_S) + grace
                       for w in agreed if w.agreed_at is not None}
                ready = [w for w in agreed if due[w.key] <= now]
                hold_until = min(due.values()) + BATCH_HOLD_S
                if ready and (len(ready) == len(pending) or now >= hold_until):
                    await self._post_quorums(ready)
                    continue
                wake = min([d for d in due.values() if d > now] + [hold_until])
                await self._heard_or_block(wake - now)
        finally:
            self.aggregating.discard(round_no)

    async def _post_quorums(self, watches: list[_Watch]) -> None:
        """Submit the quorum records of ``watches`` (each with t agreeing attestations) in one sealed batch."""
        ctx, txs = self.ctx, []
        for watch in watches:
            agreed = self._agreeing(watch)
            if agreed is None:
                continue
            watch.posted = True
            txs.append(ctx.chain.sign_tx("record", {"kind": msg.QUORUM, "data": self._quorum_data(watch, agreed)}))
        if not txs:
            return
        await ctx.chain.submit([t.wire for t in txs], seal=True)
        self.quorums += len(txs)
        ctx.events.info("oracle.quorum", kind=msg.QUORUM, tasks=len(txs),
                        verdicts=sorted(t.body["data"]["verdict"] for t in txs),
                        dissent=sum(len(t.body["data"]["dissent"]) for t in txs))

    def _quorum_data(self, watch: _Watch, agreed: tuple[str, bytes, list[int]]) -> dict[str, Any]:
        """A quorum (or ruling) record's data from the attestations that agree and those that dissent."""
        verdict, result, signers = agreed
        rows = [watch.attestations[i] for i in signers]
        strip = len(msg.RULING_PREFIX) if watch.ruling else 0
        task = watch.task or watch.key
        keys = [self.ctx.chain.state.validators.get(self.oracles[i], b"") for i in signers]
        sigs = [r[4] for r in rows]
        try:  # checked on receipt (ours: here, once), so our own admission of the record does not check the sum again
            sig = bls.aggregate_checked(keys, msg.verdict_message(self.ctx.network_id, task, verdict, result), sigs)
        except ValueError:  # a key missing from our state: the record goes out as before and the contract judges it
            sig = bls.aggregate(sigs)
        return {"task": task, "verdict": verdict[strip:], "result": result, "signers": signers,
                "sig": sig, "rtt_ms": [r[2] for r in rows],
                "completion_ms": [r[3] for r in rows],
                "dissent": [[i, a[0][strip:], a[1], a[4]] for i, a in sorted(watch.attestations.items())
                            if a[0] != verdict]}

    async def aggregate(self, key: bytes) -> None:
        """Post a ruling's record (first aggregator at once, the others after a grace period if still needed)."""
        ctx, watch = self.ctx, self.watching[key]
        rank = self._rank(key)
        wait = DISSENT_WAIT_S + rank * AGGREGATE_GRACE_S
        with trio.move_on_after(wait):
            await ctx.chain.wait_for(lambda: (len(watch.attestations) == len(self.oracles) and rank == 0)
                                     or self._decided(key), timeout=wait + 1)
        if self._decided(key) or watch.posted:
            return
        agreed = self._agreeing(watch)
        if agreed is None:
            return
        data = self._quorum_data(watch, agreed)
        watch.posted = True
        kind = msg.RULING if watch.ruling else msg.QUORUM
        await ctx.chain.submit([ctx.chain.sign_tx("record", {"kind": kind, "data": data}).wire])
        self.quorums += 1
        ctx.events.info("oracle.quorum", kind=kind, task=(watch.task or key).hex()[:8], verdict=data["verdict"],
                        signers=len(data["signers"]), dissent=len(data["dissent"]))

    def _landed(self, round_no: int, ids: list[str]) -> dict[str, bytes]:
        """Task id -> key of the round's planned tasks that are on chain (open, running or settled)."""
        want = set(ids)
        out = {e.task.id: e.key for e in self.book.tasks.values() if e.round == round_no and e.task.id in want}
        for key, s in self.settled.items():
            if s["round"] == round_no and s["task"] in want:
                out[s["task"]] = key
        return out

    def _expected(self, plan: list[tuple[str, Any, int]], ids: list[str]) -> list[bytes]:
        """The keys of the round's planned tasks, for a window that closes once they all landed — or none (the
        window is then shut by the leader's clock) when an agent's account is not on chain yet or a task is."""
        want, book, keys = set(ids), self.book, []
        for agent, task, _ in plan:
            if task.id not in want:
                continue
            host, _, idx = agent.rpartition("/")
            accounts = book.hosts.get(next((e.key for e in self.ctx.peers(REQUESTER) if e.name == host), b""), ())
            if not idx.isdigit() or int(idx) >= len(accounts):
                return []
            key = task_key(accounts[int(idx)], task.id)
            if key in book.tasks or key in book.closed or key in self.settled:
                return []
            keys.append(key)
        return keys

    def _decided(self, key: bytes) -> bool:
        watch = self.watching.get(key)
        if watch is not None and watch.ruling:
            d = self.book.disputes.get(watch.task)
            return d is None or bool(d.ruling)
        e = self.book.tasks.get(key)
        return e is None or e.state != "allocated"

    # ------------------------------------------------------------------ leading rounds
    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """Call the day, close the window once the tasks landed, wait for their settlement, close the round."""
        ctx = self.ctx
        if self.index != 0:
            raise RoundError("only the first oracle leads rounds")
        connected = ctx.connected()
        requesters = ctx.peers(REQUESTER)
        agents = agent_names(self.cfg, [e.name for e in requesters])
        plan = round_tasks(self.cfg, rnd.number, agents)
        from bazaar.mechanisms.cloudchain.contract import eligible

        providers = [e.key for e in ctx.peers(PROVIDER) if e.key in connected]
        hosts = [e.key for e in requesters if e.key in connected]

        t_ready = trio.current_time()

        def ready() -> bool:
            state, book = ctx.chain.state, self.book
            return {a for a, _ in book.bonded(state)} >= set(providers) and all(
                h in book.hosts and all(state.balance(a) > 0 for a in book.hosts[h]) for h in hosts)

        if not self.was_ready:  # a fresh network: bonds, profiles and the agents' funds land first
            with trio.move_on_after(READY_S):
                await ctx.chain.wait_for(ready, timeout=READY_S)
            # once: a provider whose bond never landed is a missing participant, not a reason to hold every
            # round READY_S (cloudchain-30d: the condition never held and each day's call came 30 s late)
            self.was_ready = True
            ctx.events.info("oracle.ready", ready=ready(), s=round(trio.current_time() - t_ready, 3))
        registry = list(self.book.providers.values())
        unservable = sorted(t.id for _, t, _ in plan if not any(eligible(t, p) for p in registry))
        ids = [task.id for _, task, _ in plan if task.id not in unservable]
        live = [e for e in requesters if e.key in connected]
        if not live or not [e for e in ctx.peers(PROVIDER) if e.key in connected]:
            raise RoundError("no requester or no provider is connected")
        window_s = ctx.deadline("window_s")
        expect = self._expected(plan, ids)
        call = await ctx.publish(msg.MSG_DAY, {"day": rnd.number, "window_ms": int(window_s * 1000)},
                                 round=rnd.number)
        self.probe_the_day(rnd.number, call.ts)  # our own gossip does not come back to us
        t_call = trio.current_time()
        window: Envelope | None = None
        if expect:  # the window closes itself on chain once these tasks landed (docs/adr/0174); not sealed: the
            # proposer's quiet window may gather the requesters' tasks into the same block
            window = ctx.chain.sign_tx("record", {"kind": msg.WINDOW, "data": {
                "tasks": len(expect), "expect": expect}}, round=rnd.number)
            await ctx.chain.submit([window.wire])
        with trio.move_on_after(window_s):
            await ctx.chain.wait_for(lambda: len(self._landed(rnd.number, ids)) == len(ids), timeout=window_s + 1)
        on_time = self._landed(rnd.number, ids)  # task id -> key of the tasks that made the window
        landed = list(on_time.values())
        if not expect or set(expect) - set(landed):  # not every expected task landed: the window is shut now
            window = ctx.chain.sign_tx("record", {"kind": msg.WINDOW, "data": {"tasks": len(landed)}},
                                       round=rnd.number)
            await ctx.chain.submit([window.wire], seal=True)
        assert window is not None  # one of the two above was sent
        t_window = trio.current_time()
        ctx.events.info("oracle.window", round=rnd.number, landed=len(landed), planned=len(ids),
                        s=round(t_window - t_call, 3), expected=len(expect))
        settle_s = self.cfg.deadline_s + ctx.deadline("settle_s")
        t_settle = t_window + settle_s + SETTLE_MARGIN_S

        # the round ends when every task that made the window is settled on our chain: the engine then waits for
        # the finality of our head, the settlement's block or a later one. No close record follows it (it took
        # a block of its own whenever it missed the settlement proposer's batch, docs/adr/0184); the engine's
        # settle nonce is the window's, already on chain by then
        with trio.move_on_at(t_settle):
            await ctx.chain.wait_for(lambda: all(k in self.settled for k in landed), timeout=settle_s + SETTLE_MARGIN_S)
        ctx.events.info("oracle.settled", round=rnd.number, settled=sum(k in self.settled for k in landed),
                        landed=len(landed), s=round(trio.current_time() - t_window, 3))
        names = {e.key: e.name for e in ctx.peers()}
        outcome, metrics = round_outcome(self, rnd.number, landed, names)
        for tid in unservable:  # refused at admission (no registered provider could serve them): unserved
            outcome["allocation"][tid] = None
        if unservable:
            outcome["verdicts"]["unservable"] = metrics["verdicts"]["unservable"] = len(unservable)
        metrics["tasks"] += len(unservable)
        left_out = sorted({agent.split("/")[0] for agent, task, _ in plan
                           if task.id in ids and task.id not in on_time})
        metrics.update({"window_s": round(t_window - t_call, 3), "tasks_posted": len(landed),
                        "tasks_planned": len(ids)})
        return RoundResult(participants=[e.name for e in ctx.peers() if e.key != ctx.key.public],
                           left_out=left_out, settle_nonce=int(window.body["nonce"]),
                           settle_wait_s=ctx.deadline("block_s") + 5, metrics=metrics, outcome=outcome)

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Name the closing block's proposer and the tokens moved."""
        block = self.ctx.chain.block(summary["height"]) if summary["height"] else None
        if block is not None:
            summary["proposer"] = self.ctx.name_of(block.header.proposer)
        summary["metrics"]["tokens_total"] = round(sum(from_units(v) for v in self.book.earned.values()), 6)

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {**super().status(), "oracle": self.index, "attested": self.attested, "quorums": self.quorums,
                "liar": self.liar, "sla_wait_s": self.deadline_waits.status()}


APP = RoleApp("oracle", OracleNode)
