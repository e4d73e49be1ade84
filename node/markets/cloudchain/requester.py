"""A requester process hosting ``[mechanism] agents`` requester agents, each with its own Ed25519 key and ledger
account (derived from the process's seed). The process funds its agents once; on each day the leader calls,
every active agent posts its tasks (a signed ``task`` record and the contract escrow that funds it). An escrow
the contract never settled returns to its agent by the ledger's expiry rule."""

from __future__ import annotations

import contextlib
from typing import Any

import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.ledger.txs import make_tx
from bazaar.mechanisms.cloudchain.contract import eligible
from bazaar.protocol import Envelope, KeyPair
from bazaar.protocol.markets import cloudchain as msg

from ..app import RoleApp, lifespan, on, on_block
from ..context import Refuse
from .book import CONTRACT, bond_id, dispute_id, task_data, task_escrow, task_key
from .common import ORACLE, CloudchainRole, settled_in
from .config import agent_names, agent_seed, round_tasks

FUND_SHARE = 0.9
"""Share of the process's balance it hands to its agents (the rest pays its own fees)."""
FUND_RETRY_S = 5.0
FUND_CHUNK = 32
"""Funding transfers sent at once (below the mempool's per-sender bound of 64)."""
LOST_AFTER_BLOCKS = 5
"""Blocks after which funding transfers that have not landed are taken as lost and sent again."""


class RequesterNode(CloudchainRole):
    """Requester agents multiplexed in one process."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.agents = [KeyPair(agent_seed(ctx.key.seed, i)) for i in range(self.cfg.agents)]
        self.names = agent_names(self.cfg, [ctx.name])
        self.by_name = dict(zip(self.names, self.agents, strict=True))
        self.nonces: dict[bytes, int] = {}
        self.funded = trio.Event()
        self.posted: dict[bytes, tuple[KeyPair, int]] = {}
        """Our tasks' escrow ids -> (agent, expiry height)."""
        self.refunds = 0
        self.bonding: set[bytes] = set()
        self.disputed = 0

    def _sign(self, agent: KeyPair, kind: str, body: dict[str, Any], round_no: int) -> Envelope:
        acct = agent.public
        nonce = max(self.nonces.get(acct, 0), self.ctx.chain.state.nonce(acct)) + 1
        self.nonces[acct] = nonce
        return make_tx(agent, self.ctx.network_id, kind, {**body, "nonce": nonce}, market=msg.MARKET, round=round_no)

    @lifespan
    async def fund(self) -> None:
        """Give every agent its share of the process's balance (once; again only if the transfers were lost)."""
        ctx, me = self.ctx, self.ctx.key.public

        mine = [a.public for a in self.agents]

        def funded() -> bool:
            return all(ctx.chain.state.balance(a) > 0 for a in mine) and self.book.hosts.get(me) == tuple(mine)

        each = 0
        while not funded():
            state = ctx.chain.state
            poor = [a for a in self.agents if state.balance(a.public) == 0]
            each = each or int(state.balance(me) * FUND_SHARE) // max(1, len(poor))
            if each <= 0 and poor:
                ctx.events.error("requester.broke", balance=state.balance(me))
                return
            # in chunks: a mempool keeps at most 64 pending transactions of one sender
            txs = [ctx.chain.sign_tx("transfer", {"to": a.public, "amount": each}) for a in poor[:FUND_CHUNK]]
            if self.book.hosts.get(me) != tuple(mine):
                txs.append(ctx.chain.sign_tx("record", {"kind": msg.AGENTS, "data": {"agents": mine}}))
            last, sent_at = max(int(t.body["nonce"]) for t in txs), ctx.chain.height
            await ctx.chain.submit([t.wire for t in txs])

            def settled(last: int = last, sent_at: int = sent_at) -> bool:
                return funded() or ctx.chain.state.nonce(me) >= last or ctx.chain.height > sent_at + LOST_AFTER_BLOCKS

            while not settled():
                with contextlib.suppress(trio.TooSlowError):
                    await ctx.chain.wait_for(settled, timeout=FUND_RETRY_S)
        self.funded.set()

    @on(msg.MSG_DAY, from_roles=(ORACLE,))
    async def on_day(self, env: Envelope) -> None:
        """The leader's call: every active agent of ours posts its tasks of the day."""
        if env.sender != self.rules.leader:
            raise Refuse("not-authorised", "only the round leader calls a day")
        with trio.move_on_after(env.body["window_ms"] / 1000):
            await self.funded.wait()
        if not self.funded.is_set():
            self.ctx.events.warning("requester.unfunded", round=env.round)
            return
        plan = round_tasks(self.cfg, env.round, agent_names(self.cfg, [e.name for e in self.ctx.peers("requester")]))
        expires = self.ctx.chain.height + 2 * self.cfg.task_expiry + 10
        registry = list(self.book.providers.values())
        txs = []
        for agent_name, task, seed in plan:
            agent = self.by_name.get(agent_name)
            if agent is None:
                continue
            if not any(eligible(task, p) for p in registry):
                self.ctx.events.info("requester.unservable", task=task.id)  # the market would refuse it
                continue
            if self.cfg.requester_bond > 0 and bond_id(agent.public) not in self.ctx.chain.state.escrows \
                    and agent.public not in self.bonding:
                self.bonding.add(agent.public)  # the agent's stake in disputes, once
                txs.append(self._sign(agent, "escrow_lock", {
                    "id": bond_id(agent.public), "payee": agent.public, "amount": to_units(self.cfg.requester_bond),
                    "expires": 2**62, "arbiter": CONTRACT, "ref": b"cloudchain/bond"}, env.round).wire)
            key = task_key(agent.public, task.id)
            if key in self.posted:
                continue
            txs.append(self._sign(agent, "escrow_lock", {
                "id": key, "payee": agent.public, "amount": task_escrow(task, self.cfg.oracle_fee),
                "expires": expires, "arbiter": CONTRACT, "ref": b"cloudchain/task"}, env.round).wire)
            txs.append(self._sign(agent, "record", {"kind": msg.TASK, "data": task_data(task, seed, "main")},
                                  env.round).wire)
            self.posted[key] = (agent, expires)
        if txs:
            await self.ctx.chain.submit(txs)
            self.ctx.events.info("requester.posted", round=env.round, tasks=len(txs) // 2)

    @on_block
    def take_back(self, block: Block) -> None:
        """Forget our escrows once settled or expired: the ledger's expiry rule returns an escrow the contract
        never settled in the block after its expiry, with no transaction of ours (docs/ledger.md §End of block);
        ``refunds`` counts those it returned."""
        height = block.header.height
        state = self.ctx.chain.state
        for key in [k for k, (_, exp) in self.posted.items() if height > exp]:
            del self.posted[key]
            if key in state.expired:
                self.refunds += 1
        for key in [k for k in self.posted if k not in state.escrows and k in self.settled]:
            del self.posted[key]

    @on_block
    def contest(self, block: Block) -> None:
        """A requester named in ``[mechanism] contest`` has its agents contest every ``met`` verdict (dishonestly:
        to claw the payment back), each with a deposit the ruling may hand to the provider."""
        if self.ctx.name not in self.cfg.contest:
            return
        mine = {a.public: a for a in self.agents}
        txs = []
        for key, verdict in settled_in(block, self.ctx.network_id):
            done = self.book.closed.get(key)
            agent = mine.get(done.requester) if done is not None else None
            if agent is None or verdict != "met":
                continue
            txs.append(self._sign(agent, "escrow_lock", {
                "id": dispute_id(key, agent.public), "payee": agent.public, "amount": self.rules.dispute_deposit,
                "expires": 2**62, "arbiter": CONTRACT, "ref": b"cloudchain/dispute"}, 0).wire)
            txs.append(self._sign(agent, "record", {"kind": msg.DISPUTE, "data": {"task": key, "claim": "wrong"}},
                                  0).wire)
            self.disputed += 1
        if txs:
            self.ctx.spawn("requester.contest", self.ctx.chain.submit, txs)

    def agent_accounts(self) -> dict[str, bytes]:
        """Agent name -> account."""
        return {n: a.public for n, a in self.by_name.items()}

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {**super().status(), "agents": len(self.agents), "open_escrows": len(self.posted),
                "disputed": self.disputed,
                "refunds": self.refunds, "funded": self.funded.is_set()}


APP = RoleApp("requester", RequesterNode)
