"""Market ``ai-bazaar`` over the network (SPEC §6): the CPP (leader) and the AI consumers (followers/miners).

One round, driven by the CPP (``POST /round`` on its HTTP endpoint, used by ``bazaar round``):

1. the CPP gossips its price (Stackelberg optimum for the consumers present, or its WoLF-PHC agent's action);
2. each consumer answers over a direct stream with its demand (exact best response, i.e. its component of the
   follower equilibrium among the announced participants, or its agent's action) and a signed escrow lock of
   ``price × demand``; a consumer that misses the deadline is left out of the round;
3. the CPP gossips the lease: the accepted demands, its signed lease record and the escrow locks;
4. each leasing consumer trains the shared model for ``steps_per_unit · β_i F_i`` SGD steps and gossips its
   signed model commitment (hash, claimed loss) and the release of its escrow (the compute was delivered);
5. after the mining deadline every node re-computes the lowest claim; its miner proposes the block (reward
   R + λB minted by the ledger), validators re-check the winner's loss, attest, and the block becomes final
   at 2/3 of the stake; everyone adopts the winner's weights;
6. the agents observe their profits (SPEC §6 formulas at the realised price and demands).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.ai_bazaar import (
    Params,
    WolfPHC,
    consumer_profit,
    cpp_profit,
    demand_bucket,
    demand_grid,
    follower_equilibrium,
    pretrain_wolf,
    price_grid,
    reward_scales,
    solve_stackelberg,
)
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.chainmsg import market_protocol
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import ai_bazaar as msg
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected

from ..httpapi import HttpError
from ..logs import Events
from ..scenario import Scenario
from .ai_bazaar_config import MarketConfig, market_config
from .pol import LearningTask, ModelStore
from .pol_validator import PolValidator

PROTOCOL = market_protocol(msg.MARKET)
_events = Events("ai-bazaar")


def escrow_id(round_no: int, payer: bytes) -> bytes:
    """The escrow of one consumer's lease in one round."""
    return hashlib.sha256(b"ai-bazaar/escrow" + round_no.to_bytes(8, "big") + payer).digest()


def _state_file(node: Any, name: str) -> Any:
    path = node.data_dir / name
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _save_state(node: Any, name: str, value: Any) -> None:
    tmp = node.data_dir / (name + ".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(node.data_dir / name)


class _Common:
    nursery: trio.Nursery

    """What both roles share: config, the learning task, PoL validation, the CPP's identity."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.cfg: MarketConfig = market_config(node.scenario)
        self.task = LearningTask.digits(eval_fraction=self.cfg.eval_fraction, seed=self.cfg.data_seed,
                                        learning_rate=self.cfg.learning_rate, batch_size=self.cfg.batch_size)
        self.models = ModelStore(self.task, node.data_dir / "models")
        self.pol = PolValidator(node, self.task, self.models)
        cpp = node.peers_of_role("cpp")
        if len(cpp) != 1:
            raise ValueError("the address book must name exactly one cpp")
        self.cpp_key = cpp[0].key
        self.consumers = node.peers_of_role("consumer")
        self.consumer_index = {p.key: i for i, p in enumerate(self.consumers)}
        self.names = {p.key: p.name for p in (*self.consumers, *cpp)}
        node.router.on(msg.MSG_MINED, self.on_mined)
        node.router.on(msg.MSG_LEASE, self.on_lease)

    def spawn(self, name: str, fn: Any, *args: Any) -> None:
        """Run a background task of the role; its failure is logged, never fatal to the node."""

        async def guarded() -> None:
            try:
                await fn(*args)
            except trio.Cancelled:
                raise
            except Exception as err:  # a peer's odd input must not take the node down
                _events.error("task.failed", task=name, error=repr(err)[:300])

        self.nursery.start_soon(guarded)

    def mining_steps(self, params: Params, index: int, demand: float) -> int:
        """SGD steps bought by a lease: proportional to β_i F_i, capped."""
        return int(min(self.cfg.max_steps, round(self.cfg.steps_per_unit * params.beta[index] * demand)))

    async def on_mined(self, env: Envelope) -> None:
        """A miner's submission: keep its transactions and its claim."""
        body = env.body
        sub = self.pol.add_submission(env.round, body["txs"][0])
        if sub.miner != env.sender or sub.model_hash != body["model_hash"] or sub.loss != body["loss"]:
            raise ProtocolError("submission does not match its commitment", reason="schema")
        for raw in body["txs"]:
            self.node.chain.add_tx(raw)

    async def on_lease(self, env: Envelope) -> None:
        """The CPP's lease: keep its transactions (every node may propose the round's block)."""
        if env.sender != self.cpp_key:
            raise ProtocolError("lease not signed by the cpp", reason="not-authorised")
        if any(k not in self.consumer_index for k in env.body["demands"]):
            raise ProtocolError("lease names an unknown consumer", reason="schema")
        for raw in env.body["txs"]:
            self.node.chain.add_tx(raw)
        await self.after_lease(env)

    async def after_lease(self, env: Envelope) -> None:
        """Role-specific reaction to a lease (consumers mine; the CPP validates)."""
        deadline = env.body["mining_deadline_ms"]
        self.pol.expect(env.round)
        self.spawn("settle", self.settle_round, env.round, deadline)

    async def settle_round(self, round_no: int, deadline_ms: int) -> None:
        """After the mining deadline: rank and verify the claims; the winner proposes the block."""
        await trio.sleep(max(0.0, (deadline_ms - now_ms()) / 1000))
        winner = await self.pol.decide(round_no)
        if winner is None:
            _events.warning("round.no_valid_submission", round=round_no)
            return
        _events.info("round.winner", round=round_no, miner=self.names.get(winner.miner, winner.miner.hex()[:8]),
                     loss=winner.loss)
        if winner.miner == self.node.key.public:
            block = await self.pol.propose(round_no, winner)
            _events.info("round.proposed", round=round_no, height=block.header.height)

    async def run(self) -> None:
        """Own the role's background tasks (mining, settling) for the node's lifetime."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            await self.pol.adopt_head_model()
            await trio.sleep_forever()

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return self.pol.status()


@dataclass
class _Round:
    """The CPP's state of the round in progress."""

    number: int
    mode: str
    params_name: str
    params: Params
    price: float
    level: int | None
    participants: list[bytes]
    deadline_ms: int
    demands: dict[bytes, tuple[float, int | None, bytes]] = field(default_factory=dict)
    all_in: trio.Event = field(default_factory=trio.Event)


class CppRole(_Common):
    """The computing-power provider: prices, leases, and drives rounds."""

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        saved = _state_file(node, "cpp-state.json") or {}
        self.round_no: int = int(saved.get("round", 0))
        self.last_bucket: int = int(saved.get("bucket", self.cfg.demand_buckets // 2))
        agent_state = saved.get("agent")
        self.agent = (WolfPHC.from_state_dict(agent_state) if agent_state else
                      WolfPHC(self.cfg.demand_buckets, self.cfg.price_levels, seed=self.cfg.agent_seed))
        self.current: _Round | None = None
        self.lock = trio.Lock()
        node.transport.set_handler(PROTOCOL, self.on_demand)
        node.http.route("POST", "/round", self.http_round)

    def _persist(self) -> None:
        _save_state(self.node, "cpp-state.json",
                    {"round": self.round_no, "bucket": self.last_bucket, "agent": self.agent.state_dict()})

    async def on_demand(self, peer: bytes, data: bytes) -> bytes:
        """Direct request from a consumer: its demand and escrow lock for the current round."""
        try:
            env = self.node.router.verify(data)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        rnd = self.current
        if env.type != msg.MSG_DEMAND or env.sender != peer:
            raise RejectRequest("expected a demand signed by the requesting peer")
        if rnd is None or env.round != rnd.number:
            raise RejectRequest("no such round open")
        if now_ms() > rnd.deadline_ms:
            raise RejectRequest("deadline passed")
        if peer not in rnd.participants or peer in rnd.demands:
            raise RejectRequest("not a participant of this round, or already answered")
        demand = float(env.body["demand"])
        if not rnd.params.F_min - 1e-9 <= demand <= rnd.params.F_max + 1e-9:
            raise RejectRequest("demand outside [F_min, F_max]")
        try:
            lock = decode_tx(env.body["escrow"], self.node.network_id)
        except ProtocolError as err:
            raise RejectRequest(f"escrow: {err.reason}") from err
        body = lock.body
        expected = to_units(rnd.price * demand)
        if (lock.type != "tx/escrow_lock" or lock.sender != peer or body["payee"] != self.node.key.public
                or body["amount"] != expected or body["id"] != escrow_id(rnd.number, peer)):
            raise RejectRequest("escrow lock must pay price x demand to the cpp under this round's id")
        if self.node.chain.chain.state.balance(peer) < expected:
            raise RejectRequest("insufficient funds for the escrow")
        rnd.demands[peer] = (demand, env.body.get("level"), env.body["escrow"])
        if len(rnd.demands) == len(rnd.participants):
            rnd.all_in.set()
        ack = self.node.seal(msg.MSG_ACK, {"accepted": True, "reason": ""}, round=rnd.number)
        return ack.wire

    def _present_consumers(self) -> list[bytes]:
        connected = set(self.node.transport.peers())
        return [p.key for p in self.consumers if p.key in connected]

    async def http_round(self, request: dict[str, Any]) -> Any:
        """``POST /round``: run one round and answer its summary."""
        if self.lock.locked():
            raise HttpError(409, "a round is already running")
        async with self.lock:
            return await self.play_round()

    async def play_round(self) -> dict[str, Any]:
        """Run one scripted round (see module docstring) and return its summary."""
        node, dl = self.node, self.node.scenario.deadlines
        self.round_no += 1
        number = self.round_no
        phase = node.scenario.phase_of(number)
        params_all = self.cfg.param_sets[phase.params]
        participants = self._present_consumers()
        if not participants:
            self._persist()
            raise HttpError(503, "no consumer is connected")
        t0 = time.monotonic()
        idx = [self.consumer_index[k] for k in participants]
        params = params_all.subset(idx)
        level: int | None = None
        if phase.mode == "equilibrium":
            eq = await node.compute(solve_stackelberg, params)
            price = float(eq.price)
        else:
            level = self.agent.act(self.last_bucket)
            price = float(price_grid(params_all, self.cfg.price_levels)[level])
        rnd = _Round(number, phase.mode, phase.params, params, price, level, participants,
                     now_ms() + int(dl["demand_s"] * 1000))
        self.current = rnd
        await node.publish_market(msg.MSG_PRICE, {
            "price": price, "mode": phase.mode, "params": phase.params, "participants": participants,
            "demand_deadline_ms": rnd.deadline_ms, "level": level}, round=number)
        _events.info("round.price", round=number, price=price, mode=phase.mode, participants=len(participants))
        with trio.move_on_after(dl["demand_s"]):
            await rnd.all_in.wait()
        self.current = None
        answered = [k for k in participants if k in rnd.demands]
        missing = [k for k in participants if k not in rnd.demands]
        if missing:
            _events.warning("round.left_out", round=number, consumers=[self.names[k] for k in missing])
        demands = {k: rnd.demands[k][0] for k in answered}
        lease_tx = node.chain.sign_tx("record", {"kind": "lease", "data": {
            "price": price, "mode": phase.mode, "params": phase.params,
            "demands": {k.hex(): f for k, f in demands.items()}}}, market=msg.MARKET, round=number)
        txs = [lease_tx.wire] + [rnd.demands[k][2] for k in answered]
        for raw in txs:
            node.chain.add_tx(raw)
        mining_deadline = now_ms() + int(dl["mining_s"] * 1000)
        await node.publish_market(msg.MSG_LEASE, {"price": price, "demands": demands, "txs": txs,
                                                  "mining_deadline_ms": mining_deadline}, round=number)
        self.pol.expect(number)
        self.spawn("settle", self.settle_round, number, mining_deadline)
        lease_nonce = lease_tx.body["nonce"]
        block_height, final = None, False
        try:
            await node.chain.changes.wait_for(
                lambda: node.chain.chain.state.nonce(node.key.public) >= lease_nonce,
                timeout=dl["mining_s"] + dl["block_s"])
            block_height = node.chain.height
            await node.chain.changes.wait_for(lambda: node.chain.finalized_height >= block_height,
                                              timeout=dl["final_s"])
            final = True
        except trio.TooSlowError:
            _events.warning("round.unsettled", round=number, block=block_height)
        latency_ms = round((time.monotonic() - t0) * 1000, 1)
        summary = await self._summarise(rnd, answered, missing, demands, block_height, final, latency_ms)
        if phase.mode == "learning" and answered and level is not None:
            idx_ans = [self.consumer_index[k] for k in answered]
            realised = params_all.subset(idx_ans)
            total = float(sum(demands.values()))
            next_bucket = demand_bucket(total, realised, self.cfg.demand_buckets)
            scale = reward_scales(params_all)[0]
            self.agent.update(self.last_bucket, level, summary["cpp_profit"] / scale, next_bucket)
            self.last_bucket = next_bucket
        self._persist()
        return summary

    async def _summarise(self, rnd: _Round, answered: list[bytes], missing: list[bytes],
                         demands: dict[bytes, float], height: int | None, final: bool,
                         latency_ms: float) -> dict[str, Any]:
        node = self.node
        summary: dict[str, Any] = {
            "round": rnd.number, "phase": node.scenario.phase_of(rnd.number).name, "mode": rnd.mode,
            "params": rnd.params_name, "price": rnd.price, "participants": [self.names[k] for k in rnd.participants],
            "left_out": [self.names[k] for k in missing],
            "demand": {self.names[k]: demands[k] for k in answered},
            "height": height, "final": final, "latency_ms": latency_ms,
        }
        block = node.chain.chain.block(height) if height else None
        if block is not None:
            summary["block_hash"] = block.hash.hex()
            summary["winner"] = self.names.get(block.header.proposer, block.header.proposer.hex()[:16])
        if answered:
            idx = [self.consumer_index[k] for k in answered]
            params = self.cfg.param_sets[rnd.params_name].subset(idx)
            F = np.array([demands[k] for k in answered])
            summary["cpp_profit"] = float(cpp_profit(params, rnd.price, F))
            summary["consumer_profit"] = {self.names[k]: float(u) for k, u in
                                          zip(answered, consumer_profit(params, rnd.price, F), strict=True)}
            eq = await node.compute(solve_stackelberg, params)
            summary["equilibrium"] = {"price": eq.price, "cpp_profit": eq.cpp_profit,
                                      "demand": {self.names[k]: float(f) for k, f in zip(answered, eq.demand,
                                                                                         strict=True)}}
            summary["price_gap"] = abs(rnd.price - eq.price)
            summary["profit_gap"] = abs(summary["cpp_profit"] - eq.cpp_profit)
        else:
            summary["cpp_profit"] = 0.0
        return summary

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {**super().status(), "round": self.round_no}


class ConsumerRole(_Common):
    """An AI consumer: buys compute at the posted price, mines with a share of it."""

    def __init__(self, node: Any) -> None:
        super().__init__(node)
        self.index = self.consumer_index[node.key.public]
        saved = _state_file(node, "consumer-state.json") or {}
        agent_state = saved.get("agent")
        self.agent = (WolfPHC.from_state_dict(agent_state) if agent_state else
                      WolfPHC(self.cfg.price_levels, self.cfg.demand_levels,
                              seed=self.cfg.agent_seed * 1000 + self.index + 1))
        self.pending: tuple[int, int, float] | None = None
        self.leases: dict[int, tuple[float, float, list[bytes], str]] = {}
        node.router.on(msg.MSG_PRICE, self.on_price)

    def _persist(self) -> None:
        _save_state(self.node, "consumer-state.json", {"agent": self.agent.state_dict()})

    async def on_price(self, env: Envelope) -> None:
        """The CPP posted a price: answer with a demand and an escrow lock before the deadline."""
        if env.sender != self.cpp_key:
            raise ProtocolError("price not signed by the cpp", reason="not-authorised")
        body = env.body
        me = self.node.key.public
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
                raise ProtocolError("unknown participant", reason="schema") from err
            F = await self.node.compute(follower_equilibrium, params_all.subset(idx), price)
            demand = float(F[body["participants"].index(me)])
            level = None
        lock = self.node.chain.sign_tx("escrow_lock", {
            "id": escrow_id(env.round, me), "payee": self.cpp_key, "amount": to_units(price * demand),
            "expires": self.node.chain.height + self.cfg.escrow_expiry, "ref": f"ai-bazaar/{env.round}".encode()},
            market=msg.MARKET, round=env.round)
        request = self.node.seal(msg.MSG_DEMAND, {"demand": demand, "escrow": lock.wire, "level": level},
                                 round=env.round)
        timeout = max(0.1, (body["demand_deadline_ms"] - now_ms()) / 1000)
        try:
            await self.node.ask(self.cpp_key, PROTOCOL, request, timeout=timeout)
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError, ProtocolError) as err:
            _events.warning("demand.refused", round=env.round, error=repr(err)[:200])
            self.node.chain.forget_nonce(lock.body["nonce"])
            return
        _events.info("demand.accepted", round=env.round, price=price, demand=demand)

    async def after_lease(self, env: Envelope) -> None:
        me = self.node.key.public
        body = env.body
        if me in body["demands"]:
            self.spawn("mine", self.mine, env)
        await super().after_lease(env)

    async def mine(self, env: Envelope) -> None:
        """Train for the leased budget, commit the model, release the escrow, gossip the claim."""
        node, me, body = self.node, self.node.key.public, env.body
        demand = float(body["demands"][me])
        params_all = self.cfg.param_sets[self._lease_params(env)]
        steps = self.mining_steps(params_all, self.index, demand)
        start = self.models.global_model
        seed = int.from_bytes(hashlib.sha256(env.round.to_bytes(8, "big") + me).digest()[:4], "big")
        w = await node.compute(self.task.train, start, steps, seed)
        loss = await node.compute(self.task.loss, w)
        h = self.models.put(w)
        if now_ms() > body["mining_deadline_ms"]:
            _events.warning("mining.late", round=env.round, steps=steps)
            return
        commit = node.chain.sign_tx("model_commit", {"hash": h, "size": w.size * 8, "pointer": f"p2p:{me.hex()}",
                                                    "loss": loss}, market=msg.MARKET, round=env.round)
        release = node.chain.sign_tx("escrow_release", {"id": escrow_id(env.round, me)}, market=msg.MARKET,
                                     round=env.round)
        self.pol.add_submission(env.round, commit.wire)
        for raw in (commit.wire, release.wire):
            node.chain.add_tx(raw)
        await node.publish_market(msg.MSG_MINED, {"model_hash": h, "loss": loss, "steps": steps,
                                                  "txs": [commit.wire, release.wire]}, round=env.round)
        _events.info("mining.submitted", round=env.round, steps=steps, loss=loss)
        self._observe(env, params_all)

    def _lease_params(self, env: Envelope) -> str:
        for raw in env.body["txs"]:
            try:
                tx = decode_tx(raw, self.node.network_id)
            except ProtocolError:
                continue
            if tx.sender == self.cpp_key and tx.type == "tx/record" and tx.body["kind"] == "lease":
                name = tx.body["data"].get("params")
                if name in self.cfg.param_sets:
                    return str(name)
        raise ProtocolError("lease carries no lease record naming a known parameter set", reason="schema")

    def _observe(self, env: Envelope, params_all: Params) -> None:
        if self.pending is None:
            return
        keys = [k for k in env.body["demands"] if k in self.consumer_index]
        idx = [self.consumer_index[k] for k in keys]
        F = np.array([float(env.body["demands"][k]) for k in keys])
        profit = consumer_profit(params_all.subset(idx), float(env.body["price"]), F)
        scale = reward_scales(params_all)[1][self.index]
        s, a, _ = self.pending
        self.pending = (s, a, float(profit[keys.index(self.node.key.public)]) / scale)


def prepare(scenario: Scenario, node_dirs: dict[str, Path]) -> None:
    """Before a new network starts: pre-train the WoLF-PHC agents by PB-MARL self-play (offline), and give
    each node its own agent; online learning then continues from there. Runs once, in the launcher; nodes that
    already hold an agent keep it."""
    cfg = market_config(scenario)
    name = cfg.learning_params(scenario)
    if cfg.pretrain_episodes == 0 or name is None:
        return
    files = {"cpp": node_dirs[scenario.names("cpp")[0]] / "cpp-state.json"}
    files.update({n: node_dirs[n] / "consumer-state.json" for n in scenario.names("consumer")})
    if all(f.exists() for f in files.values()):
        return
    cpp, consumers, trace = pretrain_wolf(cfg.param_sets[name], episodes=cfg.pretrain_episodes,
                                          price_levels=cfg.price_levels, demand_levels=cfg.demand_levels,
                                          buckets=cfg.demand_buckets, seed=cfg.agent_seed)
    files["cpp"].write_text(json.dumps({"round": 0, "bucket": cfg.demand_buckets // 2, "agent": cpp.state_dict(),
                                        "pretrained": {"params": name, "episodes": cfg.pretrain_episodes,
                                                       "final_price": float(trace.price[-1])}}))
    for agent, consumer in zip(consumers, scenario.names("consumer"), strict=True):
        files[consumer].write_text(json.dumps({"agent": agent.state_dict()}))


def create_app(node: Any) -> _Common:
    """The app of this node's role."""
    if node.role == "cpp":
        return CppRole(node)
    if node.role == "consumer":
        return ConsumerRole(node)
    raise ValueError(f"ai-bazaar has no role {node.role!r} (roles: cpp, consumer)")
