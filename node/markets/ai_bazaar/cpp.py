"""The computing-power provider: prices, leases, and leads rounds (its :class:`RoundPlan`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.ai_bazaar import (
    Params,
    WolfPHC,
    consumer_profit,
    cpp_profit,
    demand_bucket,
    price_grid,
    reward_scales,
    solve_stackelberg,
)
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import ai_bazaar as msg

from ...rounds.collector import Collector
from ...rounds.engine import RoundError, RoundResult, RoundStart
from ..app import RoleApp, serve
from ..context import Refuse, RoleContext
from .common import FOLLOWER, AiBazaarRole, escrow_id

STATE_FILE = "cpp-state.json"
SETTLE_ATTEMPTS = 3
"""The round's block may come from the best verified claimant, or — when it and the next are silent — from the
second or third after ``block_s`` each (node/consensus/pol.py, docs/adr/0095): wait that many ``block_s``."""
EXPIRY_SLACK = 8
EQUILIBRIA_KEPT = 64
"""Blocks a consumer's escrow expiry may exceed ``height + escrow_expiry`` by (its head may differ from ours)."""


@dataclass
class _Open:
    """The CPP's view of the round in progress."""

    number: int
    params: Params
    price: float
    collector: Collector[tuple[float, int | None, bytes]]


class Cpp(AiBazaarRole):
    """Posts prices (equilibrium or WoLF-PHC), collects demands, leases."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        saved = ctx.load_state(STATE_FILE) or {}
        self.last_bucket: int = int(saved.get("bucket", self.cfg.demand_buckets // 2))
        agent_state = saved.get("agent")
        self.agent = (WolfPHC.from_state_dict(agent_state) if agent_state else
                      WolfPHC(self.cfg.demand_buckets, self.cfg.price_levels, seed=self.cfg.agent_seed))
        self.current: _Open | None = None
        self.round_no = int(saved.get("round", 0))
        self.equilibria: dict[tuple[str, tuple[int, ...]], Any] = {}
        """The Stackelberg solution per (parameter set, participants): a pure function of them (docs/adr/0117)."""

    async def equilibrium(self, round_no: int, set_name: str, members: list[bytes]) -> Any:
        """The Stackelberg equilibrium of ``set_name`` for ``members`` (solved once per distinct input; the
        solving time counts as this round's work)."""
        key = (set_name, tuple(self.consumer_index[k] for k in members))
        if key not in self.equilibria:
            params = self.cfg.param_sets[set_name].subset(list(key[1]))
            with self.work.timed(round_no):
                self.equilibria[key] = await self.ctx.compute(solve_stackelberg, params)
            while len(self.equilibria) > EQUILIBRIA_KEPT:
                del self.equilibria[next(iter(self.equilibria))]
        return self.equilibria[key]

    def _persist(self) -> None:
        self.ctx.save_state(STATE_FILE, {"round": self.round_no, "bucket": self.last_bucket,
                                         "agent": self.agent.state_dict()})

    @serve(msg.MSG_DEMAND, reply=msg.MSG_ACK, from_roles=(FOLLOWER,))
    async def on_demand(self, env: Envelope) -> dict[str, Any]:
        """A consumer's demand and escrow lock for the current round."""
        rnd = self.current
        if rnd is None or env.round != rnd.number:
            raise Refuse("wrong-round", "no such round open")
        demand = float(env.body["demand"])
        if not rnd.params.F_min - 1e-9 <= demand <= rnd.params.F_max + 1e-9:
            raise Refuse("out-of-range", "demand outside [F_min, F_max]")
        try:
            lock = decode_tx(env.body["escrow"], self.ctx.network_id)
        except ProtocolError as err:
            raise Refuse("bad-escrow", f"escrow: {err.reason}") from err
        body = lock.body
        expected = to_units(rnd.price * demand)
        if (lock.type != "tx/escrow_lock" or lock.sender != env.sender or body["payee"] != self.ctx.key.public
                or body["amount"] != expected or body["id"] != escrow_id(rnd.number, env.sender)):
            raise Refuse("bad-escrow", "escrow lock must pay price x demand to the cpp under this round's id")
        height = self.ctx.chain.height
        if not height < body["expires"] <= height + self.cfg.escrow_expiry + EXPIRY_SLACK:
            # a lock must come back within a bounded number of blocks if the round never settles (ADR 0092)
            raise Refuse("bad-escrow", f"escrow must expire within {self.cfg.escrow_expiry} blocks of height {height}")
        if self.ctx.chain.state.balance(env.sender) < expected:
            raise Refuse("insufficient-funds", "insufficient funds for the escrow")
        rnd.collector.offer(env.sender, (demand, env.body.get("level"), env.body["escrow"]))
        return {"accepted": True, "reason": ""}

    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """Price, collect demands, lease; the round settles with the PoL winner's block."""
        ctx = self.ctx
        self.round_no = rnd.number
        params_all = self.cfg.param_sets[rnd.params]
        connected = ctx.connected()
        participants = [p.key for p in self.consumers if p.key in connected]
        if not participants:
            self._persist()
            raise RoundError("no consumer is connected")
        params = params_all.subset([self.consumer_index[k] for k in participants])
        level: int | None = None
        if rnd.mode == "equilibrium":
            eq = await self.equilibrium(rnd.number, rnd.params, participants)
            price = float(eq.price)
        else:
            level = self.agent.act(self.last_bucket)
            price = float(price_grid(params_all, self.cfg.price_levels)[level])
        demand_s = ctx.deadline("demand_s")
        self.current = _Open(rnd.number, params, price, Collector(participants, demand_s))
        deadline_ms = now_ms() + int(demand_s * 1000)
        await ctx.publish(msg.MSG_PRICE, {
            "price": price, "mode": rnd.mode, "params": rnd.params, "participants": participants,
            "demand_deadline_ms": deadline_ms, "level": level}, round=rnd.number)
        ctx.events.info("round.price", round=rnd.number, price=price, mode=rnd.mode, participants=len(participants))
        got = await self.current.collector.wait()
        self.current = None
        if got.missing:
            ctx.events.warning("round.left_out", round=rnd.number, consumers=[ctx.name_of(k) for k in got.missing])
        answered = [k for k in participants if k in got.answers]
        demands = {k: got.answers[k][0] for k in answered}
        lease_tx = ctx.chain.sign_tx("record", {"kind": "lease", "data": {
            "price": price, "mode": rnd.mode, "params": rnd.params,
            "demands": {k.hex(): f for k, f in demands.items()}}}, round=rnd.number)
        txs = [lease_tx.wire] + [got.answers[k][2] for k in answered]
        for raw in txs:
            ctx.chain.add_tx(raw)
        mining_s = ctx.deadline("mining_s")
        mining_deadline = now_ms() + int(mining_s * 1000)
        await ctx.publish(msg.MSG_LEASE, {"price": price, "demands": demands, "txs": txs,
                                          "mining_deadline_ms": mining_deadline}, round=rnd.number)
        self.pol.expect(rnd.number, miners=answered)  # only the leased miners may claim
        ctx.spawn("settle", self.settle_round, rnd.number, mining_deadline)
        names = [ctx.name_of(k) for k in answered]
        return RoundResult(
            participants=[ctx.name_of(k) for k in participants], left_out=[ctx.name_of(k) for k in got.missing],
            settle_nonce=lease_tx.body["nonce"], settle_wait_s=mining_s + SETTLE_ATTEMPTS * ctx.deadline("block_s"),
            fields={"price": price, "demand": {n: demands[k] for n, k in zip(names, answered, strict=True)}},
            private={"answered": answered, "level": level},
        )

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Profits, the equilibrium for comparison, the winner; the CPP's agent learns."""
        ctx = self.ctx
        answered: list[bytes] = result.private["answered"]
        level: int | None = result.private["level"]
        price = float(summary["price"])
        params_all = self.cfg.param_sets[rnd.params]
        block = ctx.chain.block(summary["height"]) if summary["height"] else None
        if block is not None:
            summary["block_hash"] = block.hash.hex()
            summary["winner"] = ctx.name_of(block.header.proposer)
        demands = summary["demand"]
        if answered:
            params = params_all.subset([self.consumer_index[k] for k in answered])
            F = np.array([demands[ctx.name_of(k)] for k in answered])
            summary["cpp_profit"] = float(cpp_profit(params, price, F))
            summary["consumer_profit"] = {ctx.name_of(k): float(u) for k, u in
                                          zip(answered, consumer_profit(params, price, F), strict=True)}
            eq = await self.equilibrium(rnd.number, rnd.params, answered)  # what the round is compared with
            summary["equilibrium"] = {"price": eq.price, "cpp_profit": eq.cpp_profit,
                                      "demand": {ctx.name_of(k): float(f) for k, f in zip(answered, eq.demand,
                                                                                         strict=True)}}
            summary["price_gap"] = abs(price - eq.price)
            summary["profit_gap"] = abs(summary["cpp_profit"] - eq.cpp_profit)
        else:
            summary["cpp_profit"] = 0.0
        summary["outcome"] = {"price": price, "demand": demands, "cpp_profit": summary["cpp_profit"],
                              "consumer_profit": summary.get("consumer_profit", {})}
        summary["metrics"] = {"price_gap": summary.get("price_gap"), "profit_gap": summary.get("profit_gap"),
                              "total_demand": float(sum(demands.values())),
                              "consumer_profit_total": float(sum(summary.get("consumer_profit", {}).values()))}
        if rnd.mode == "learning" and answered and level is not None:
            realised = params_all.subset([self.consumer_index[k] for k in answered])
            next_bucket = demand_bucket(float(sum(demands.values())), realised, self.cfg.demand_buckets)
            scale = reward_scales(params_all)[0]
            self.agent.update(self.last_bucket, level, summary["cpp_profit"] / scale, next_bucket)
            self.last_bucket = next_bucket
        self._persist()

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {**super().status(), "round": self.round_no}



APP = RoleApp("cpp", Cpp)
