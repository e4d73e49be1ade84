"""An AI consumer: buys compute at the posted price and mines with a share of it."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.ai_bazaar import (
    Params,
    WolfPHC,
    consumer_profit,
    demand_grid,
    follower_equilibrium,
    reward_scales,
)
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import ai_bazaar as msg

from ...byzantine import FALSE_CLAIM
from ..app import RoleApp, on
from ..context import Refuse, RequestFailed, RoleContext
from .common import LEADER, AiBazaarRole, escrow_id

STATE_FILE = "consumer-state.json"
FOLLOWERS_KEPT = 64


class Consumer(AiBazaarRole):
    """Answers prices with demands (best response or WoLF-PHC), mines what it leased."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.index = self.consumer_index[ctx.key.public]
        saved = ctx.load_state(STATE_FILE) or {}
        agent_state = saved.get("agent")
        self.agent = (WolfPHC.from_state_dict(agent_state) if agent_state else
                      WolfPHC(self.cfg.price_levels, self.cfg.demand_levels,
                              seed=self.cfg.agent_seed * 1000 + self.index + 1))
        self.pending: tuple[int, int, float] | None = None
        self.followers: dict[tuple[str, tuple[int, ...], float], Any] = {}
        """The follower equilibrium per (parameter set, participants, price)."""

    def _persist(self) -> None:
        self.ctx.save_state(STATE_FILE, {"agent": self.agent.state_dict()})

    @on(msg.MSG_PRICE, from_roles=(LEADER,))
    async def on_price(self, env: Envelope) -> None:
        """The CPP posted a price: answer with a demand and an escrow lock before the deadline."""
        ctx, body, me = self.ctx, env.body, self.ctx.key.public
        if me not in body["participants"] or body["params"] not in self.cfg.param_sets:
            return
        params_all = self.cfg.param_sets[body["params"]]
        price = float(body["price"])
        if body["mode"] == "learning" and body.get("level") is not None:
            if self.pending is not None:
                s, a, r = self.pending
                self.agent.update(s, a, r, int(body["level"]))
                self._persist()
            state = min(int(body["level"]), self.cfg.price_levels - 1)
            action = self.agent.act(state)
            demand = float(demand_grid(params_all, self.cfg.demand_levels)[action])
            self.pending = (state, action, 0.0)
            level: int | None = action
        else:
            try:
                idx = [self.consumer_index[k] for k in body["participants"]]
            except KeyError as err:
                raise Refuse("schema", "unknown participant") from err
            key = (str(body["params"]), tuple(idx), price)
            if key not in self.followers:  # a pure function of its inputs: solved once per distinct input
                with self.work.timed(env.round):
                    self.followers[key] = await ctx.compute(follower_equilibrium, params_all.subset(idx), price)
                while len(self.followers) > FOLLOWERS_KEPT:
                    del self.followers[next(iter(self.followers))]
            F = self.followers[key]
            demand = float(F[body["participants"].index(me)])
            level = None
        lock = ctx.chain.sign_tx("escrow_lock", {
            "id": escrow_id(env.round, me), "payee": self.cpp_key, "amount": to_units(price * demand),
            "expires": ctx.chain.height + self.cfg.escrow_expiry, "ref": f"ai-bazaar/{env.round}".encode()},
            round=env.round)
        timeout = max(0.1, (body["demand_deadline_ms"] - now_ms()) / 1000)
        try:
            await ctx.ask(self.cpp_key, msg.MSG_DEMAND, {"demand": demand, "escrow": lock.wire, "level": level},
                          round=env.round, timeout=timeout)
        except RequestFailed as err:
            ctx.events.warning("demand.refused", round=env.round, error=str(err)[:200])
            ctx.chain.forget_nonce(lock.body["nonce"])
            return
        ctx.events.info("demand.accepted", round=env.round, price=price, demand=demand)

    async def after_lease(self, env: Envelope) -> None:
        """Mine if we leased, then settle like every node."""
        if self.ctx.key.public in env.body["demands"]:
            self.ctx.spawn("mine", self.mine, env)
        await super().after_lease(env)

    async def mine(self, env: Envelope) -> None:
        """Train for the leased budget, commit the model, release the escrow, gossip the claim."""
        ctx, me, body = self.ctx, self.ctx.key.public, env.body
        demand = float(body["demands"][me])
        params_all = self.cfg.param_sets[self._lease_params(env)]
        steps = self.mining_steps(params_all, self.index, demand)
        start = self.pol.models.global_model
        seed = int.from_bytes(hashlib.sha256(env.round.to_bytes(8, "big") + me).digest()[:4], "big")
        with self.work.timed(env.round):  # the leased compute: training, and the loss the claim states
            w = await ctx.compute(self.pol.task.train, start, steps, seed)
            loss = await ctx.compute(self.pol.task.loss, w)
        if FALSE_CLAIM in ctx.byzantine:  # a Byzantine miner claims a perfect model (honest nodes re-compute it)
            ctx.events.warning("byzantine.false_claim", round=env.round, loss=loss)
            loss = 0.0
        h = self.pol.models.put(w)
        if now_ms() > body["mining_deadline_ms"]:
            ctx.events.warning("mining.late", round=env.round, steps=steps)
            return
        commit = ctx.chain.sign_tx("model_commit", {"hash": h, "size": w.size * 8, "pointer": f"p2p:{me.hex()}",
                                                   "loss": loss}, round=env.round)
        release = ctx.chain.sign_tx("escrow_release", {"id": escrow_id(env.round, me)}, round=env.round)
        self.pol.add_submission(env.round, commit.wire)
        for raw in (commit.wire, release.wire):
            ctx.chain.add_tx(raw)
        claim: dict[str, Any] = {"model_hash": h, "loss": loss, "steps": steps, "txs": [commit.wire, release.wire]}
        weights = self.pol.inline_weights(h, msg.MAX_INLINE_WEIGHTS)
        if weights is not None:
            claim["weights"] = weights
        await ctx.publish(msg.MSG_MINED, claim, round=env.round)
        ctx.events.info("mining.submitted", round=env.round, steps=steps, loss=loss)
        self._observe(env, params_all)

    def _lease_params(self, env: Envelope) -> str:
        for raw in env.body["txs"]:
            try:
                tx = decode_tx(raw, self.ctx.network_id)
            except ProtocolError:
                continue
            if tx.sender == self.cpp_key and tx.type == "tx/record" and tx.body["kind"] == "lease":
                name = tx.body["data"].get("params")
                if name in self.cfg.param_sets:
                    return str(name)
        raise Refuse("schema", "lease carries no lease record naming a known parameter set")

    def _observe(self, env: Envelope, params_all: Params) -> None:
        if self.pending is None:
            return
        keys = [k for k in env.body["demands"] if k in self.consumer_index]
        F = np.array([float(env.body["demands"][k]) for k in keys])
        profit = consumer_profit(params_all.subset([self.consumer_index[k] for k in keys]), float(env.body["price"]), F)
        scale = reward_scales(params_all)[1][self.index]
        s, a, _ = self.pending
        self.pending = (s, a, float(profit[keys.index(self.ctx.key.public)]) / scale)


APP = RoleApp("consumer", Consumer)
