"""A compute provider: bonds and registers its profile on chain, runs every task the contract allocates to it
(a real numpy job scaled by the task's units, with DP noise when the task asks for privacy), keeps the model
and its metadata as content-addressed blobs it serves over libp2p, posts their hashes, and answers the
oracles' latency probes.

The scenario may make it misbehave (``[mechanism] slow / fail / wrong``): answer the oracles' probes past the
SLA's latency bound, silently never deliver (nor answer probes in time), or deliver a wrong result — so the
oracles' quorum has something to penalise.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.protocol import Envelope, codec
from bazaar.protocol.markets import cloudchain as msg

from ..app import RoleApp, lifespan, on_block, serve
from .book import CONTRACT, bond_id, dispute_id, profile_data
from .common import ORACLE, BlobStore, CloudchainRole, decode_all, settled_in
from .config import provider_profiles

REGISTER_RETRY_S = 5.0
"""How often a provider looks again whether its bond and registration landed."""
LOST_AFTER_BLOCKS = 5
"""Blocks after which transactions that have not landed are taken as lost (the chain gives their nonces up after
fewer) and signed again."""


class ProviderNode(CloudchainRole):
    """One compute provider."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        names = [e.name for e in ctx.peers("provider")]
        self.profile = provider_profiles(self.cfg, names)[names.index(ctx.name)]
        self.blobs = BlobStore(ctx)
        self.running: set[bytes] = set()
        self.jobs_done = 0
        self.disputed = 0
        self.round = 0

    def _faulty(self, table: tuple[tuple[str, int], ...]) -> bool:
        return self.cfg.faulty(table, self.ctx.name, self.round)

    @lifespan
    async def register(self) -> None:
        """Bond and register once (again after a restart if the chain does not hold them yet). What was sent is
        sent again only once our account's nonce shows it was lost, never while it may still land."""
        ctx, me = self.ctx, self.ctx.key.public

        def done() -> bool:
            return bond_id(me) in ctx.chain.state.escrows and self.book.providers.get(me) == self.profile

        while not done():
            state = ctx.chain.state
            txs = []
            if bond_id(me) not in state.escrows:
                txs.append(ctx.chain.sign_tx("escrow_lock", {
                    "id": bond_id(me), "payee": me, "amount": to_units(self.cfg.bond), "expires": 2**62,
                    "arbiter": CONTRACT, "ref": b"cloudchain/bond"}))
            if self.book.providers.get(me) != self.profile:
                txs.append(ctx.chain.sign_tx("record", {"kind": msg.REGISTER, "data": profile_data(self.profile)}))
            last, sent_at = max(int(t.body["nonce"]) for t in txs), ctx.chain.height
            await ctx.chain.submit([t.wire for t in txs])
            ctx.events.info("provider.register", txs=len(txs))

            def settled(last: int = last, sent_at: int = sent_at) -> bool:
                return done() or ctx.chain.state.nonce(me) >= last or ctx.chain.height > sent_at + LOST_AFTER_BLOCKS

            while not settled():
                with contextlib.suppress(trio.TooSlowError):
                    await ctx.chain.wait_for(settled, timeout=REGISTER_RETRY_S)

    @serve(msg.MSG_PROBE, reply=msg.MSG_PROBE_ACK, from_roles=(ORACLE,))
    async def on_probe(self, env: Envelope) -> dict[str, Any]:
        """An oracle's latency probe (a slow provider answers past its SLA; a failed one not at all in time)."""
        self.round = max(self.round, env.round)
        if self._faulty(self.cfg.fail):
            await trio.sleep(self.cfg.deadline_s * 2)
        elif self._faulty(self.cfg.slow):
            await trio.sleep(2.5 * self.cfg.latency_ms / 1000)
        return {"nonce": env.body["nonce"], "busy": bool(self.running)}

    @on_block
    def on_alloc(self, block: Block) -> None:
        """Start every task the block's allocation gives us (their results go out together: one batch)."""
        me = self.ctx.key.public
        keys = []
        for t in decode_all(block, self.ctx.network_id) or []:
            if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] == msg.ALLOC \
                    and t.sender == block.header.proposer:
                for key, prov in zip(t.body["data"]["tasks"], t.body["data"]["providers"], strict=True):
                    if prov == me and key not in self.running:
                        self.running.add(key)
                        keys.append(key)
        if keys:
            self.ctx.spawn(f"jobs.{keys[0].hex()[:8]}", self.run_tasks, keys)

    async def run_tasks(self, keys: list[bytes]) -> None:
        """Run the tasks one allocation gave us side by side, and post their results in one submission (one
        ``chain/txs`` message instead of one per task: docs/adr/0174)."""
        results: list[bytes] = []

        async def one(key: bytes) -> None:
            try:
                await self.run_task(key, results)
            except Exception as err:  # one job's failure must not drop the others' results
                self.ctx.events.error("job.failed", task=key.hex()[:8], error=type(err).__name__,
                                      detail=str(err)[:120])

        try:
            async with trio.open_nursery() as nursery:
                for key in keys:
                    nursery.start_soon(one, key)
            if results:
                await self.ctx.chain.submit(results)
        finally:
            self.running.difference_update(keys)

    async def run_task(self, key: bytes, results: list[bytes]) -> None:
        """Run one task, store its blobs and add its signed result to ``results``."""
        from bazaar.mechanisms.cloudchain.jobs import run_job

        ctx = self.ctx
        entry = self.book.tasks.get(key)
        if entry is None:
            return
        self.round = max(self.round, entry.round)
        task = entry.task
        if self._faulty(self.cfg.fail):
            ctx.events.warning("job.dropped", task=task.id)
            return
        # the DP noise seed: a keyed draw from our secret key and the task (as unpredictable to others as a
        # fresh random draw, and reproducible, so a simulation with one seed gives one chain: docs/sim.md)
        secret = hashlib.sha256(b"cloudchain/noise" + ctx.key.seed + key).digest()
        noise = int.from_bytes(secret[:4], "big") if task.epsilon is not None else None
        with self.work.timed(entry.round):  # the workload itself
            job = await ctx.compute(lambda: run_job(task.kind, task.units, entry.seed, epsilon=task.epsilon,
                                                    delta=task.delta, noise_seed=noise, clip_bound=self.cfg.clip))
        model = job.blob
        if self._faulty(self.cfg.wrong):
            model = (hashlib.sha256(secret + b"wrong").digest() * (len(model) // 32 + 1))[: len(model)]
        meta = codec.encode(job.metadata)
        hm, hd = self.blobs.put(model), self.blobs.put(meta)
        results.append(ctx.chain.sign_tx("record", {"kind": msg.RESULT, "data": {
            "task": key, "model": hm, "meta": hd, "sizes": [len(model), len(meta)]}}, round=entry.round).wire)
        self.jobs_done += 1
        ctx.events.info("job.done", task=task.id, kind=task.kind, units=task.units,
                        seconds=round(job.seconds, 5), private=task.epsilon is not None,
                        quality=round(job.quality, 5), bytes=len(model))

    @on_block
    def contest(self, block: Block) -> None:
        """A provider named in ``[mechanism] contest`` contests every violation verdict against it (claiming it
        met the SLA), with a deposit the ruling hands to the requester when it loses."""
        if self.ctx.name not in self.cfg.contest:
            return
        ctx, me = self.ctx, self.ctx.key.public
        txs = []
        for key, verdict in settled_in(block, ctx.network_id):
            done = self.book.closed.get(key)
            if done is None or done.provider != me or verdict not in ("late", "missing", "wrong"):
                continue
            txs.append(ctx.chain.sign_tx("escrow_lock", {
                "id": dispute_id(key, me), "payee": me, "amount": self.rules.dispute_deposit, "expires": 2**62,
                "arbiter": CONTRACT, "ref": b"cloudchain/dispute"}).wire)
            txs.append(ctx.chain.sign_tx("record", {"kind": msg.DISPUTE, "data": {"task": key, "claim": "met"}}).wire)
            self.disputed += 1
        if txs:
            ctx.spawn("provider.contest", ctx.chain.submit, txs)

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {**super().status(), "jobs_done": self.jobs_done, "running": len(self.running),
                "profile": self.profile.kind}


APP = RoleApp("provider", ProviderNode)
