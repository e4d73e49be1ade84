"""The round engine: runs a market's rounds at its leader and reports one generic summary per round.

It owns the round counter, ``POST /round``, the phase of each round, the timing, the wait for the
round's settlement block and its finality, and the summary every market shares::

    {round, market, phase, mode, params, participants, left_out, height, final, latency_ms, metrics, outcome}

plus the market's own top-level fields. A market's leading role supplies a :class:`RoundPlan`.

Round numbers are never reused, across restarts too: a round's number is saved in the data dir before the
round starts, and the next number is above both that counter and the highest round of this market in the
leader's own transactions on its chain (which survives a lost or stale counter file); a leader numbers no round
before it has synced to the head its peers certify (issue 12, defect 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import trio

from bazaar.ledger.txs import decode_tx
from bazaar.protocol import ProtocolError

from ..httpapi import HttpError
from ..logs import Events

if TYPE_CHECKING:
    from ..markets.context import RoleContext

_events = Events("rounds")
STATE_FILE = "rounds.json"


class RoundError(Exception):
    """A round cannot run now (e.g. no participant is connected); answered as HTTP 503."""


@dataclass(frozen=True)
class RoundStart:
    """What the engine tells a plan about the round it opens."""

    number: int
    phase: str
    mode: str
    params: str
    started: float


@dataclass
class RoundResult:
    """What a plan hands back once the round's transactions are submitted.

    Attributes:
        participants: names of the nodes invited to the round.
        left_out: names of those that missed a deadline.
        settle_nonce: the leader's own transaction nonce whose inclusion settles the round (None: nothing to
            settle on chain).
        settle_wait_s: seconds to wait for that transaction's block (the plan's remaining work, e.g. mining,
            plus the scenario's ``block_s``).
        metrics: market figures of the round (JSON-able).
        outcome: the settled outcome (JSON-able; compared with the offline solver).
        fields: extra top-level summary fields.
        private: what the plan hands itself from ``open_round`` to ``close_round`` (not reported).
    """

    participants: list[str]
    left_out: list[str]
    settle_nonce: int | None
    settle_wait_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    private: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class RoundPlan(Protocol):
    """What the leading role of a market implements."""

    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """Announce, collect, clear and submit the round's transactions (raise ``RoundError`` to refuse)."""
        ...

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Complete the summary once the settlement block is known (``summary["height"]``, ``["final"]``)."""
        ...


class RoundEngine:
    """Runs rounds of one plan; one at a time."""

    def __init__(self, ctx: RoleContext, plan: RoundPlan, market: str) -> None:
        self.ctx = ctx
        self.plan = plan
        self.market = market
        saved = ctx.load_state(STATE_FILE) or {}
        self.number = int(saved.get("round", 0)) if isinstance(saved, dict) else 0
        self.scanned = 0
        """Height up to which :meth:`chain_round` has read our chain."""
        self.chain_max = 0
        self.lock = trio.Lock()
        self.last: dict[str, Any] | None = None
        self.observers: list[Callable[[dict[str, Any]], None]] = []
        """Called with each closed round's summary (the explorer's round list, the metrics)."""
        self.stage = "idle"
        """Where the running round is: ``open`` (announcing, collecting), ``settle`` (its transactions submitted —
        the escrow locks and the settlement — waiting for its block), ``close``, or ``idle`` between rounds; a
        testnet applies a perturbation at a stage (docs/testnets.md)."""

    async def http_round(self, request: dict[str, Any]) -> Any:
        """``POST /round``: run one round and answer its summary."""
        if self.lock.locked():
            raise HttpError(409, "a round is already running")
        async with self.lock:
            try:
                return await self.play()
            except RoundError as err:
                raise HttpError(503, str(err)) from err
            finally:
                self.stage = "idle"

    def chain_round(self) -> int:
        """The highest round number of this market in the leader's own transactions on its chain (0: none).

        Reads only the blocks imported since the last call. A rewound block may have raised it: the number only
        ever grows, which keeps round numbers unique."""
        chain, me = self.ctx.chain, self.ctx.key.public
        for height in range(self.scanned + 1, chain.height + 1):
            block = chain.block(height)
            if block is None:
                break
            for raw in block.txs:
                try:
                    env = decode_tx(raw, self.ctx.network_id)
                except ProtocolError:
                    continue  # cannot be in an imported block; never worth a crash
                if env.sender == me and env.market == self.market:
                    self.chain_max = max(self.chain_max, env.round)
            self.scanned = height
        return self.chain_max

    async def _next_number(self) -> int:
        """The next round number: above the saved counter and every round of ours on the synced chain.

        Raises:
            RoundError: the node has not synced to its peers' certified head within ``final_s``.
        """
        chain = self.ctx.chain
        try:
            await chain.wait_for(lambda: chain.synced, timeout=self.ctx.deadline("final_s"))
        except trio.TooSlowError as err:
            raise RoundError("not synced to the network's head yet: no round number to trust") from err
        return max(self.number, self.chain_round()) + 1

    async def play(self) -> dict[str, Any]:
        """Run one round and return its summary."""
        self.number = await self._next_number()
        self.ctx.save_state(STATE_FILE, {"round": self.number})
        phase = self.ctx.scenario.phase_of(self.number)
        rnd = RoundStart(self.number, phase.name, phase.mode, phase.params, time.monotonic())
        _events.info("round.open", round=rnd.number, phase=rnd.phase, mode=rnd.mode)
        self.stage = "open"
        result = await self.plan.open_round(rnd)
        self.stage = "settle"
        height, final = await self._settle(result)
        self.stage = "close"
        summary: dict[str, Any] = {
            "round": rnd.number, "market": self.market, "phase": rnd.phase, "mode": rnd.mode, "params": rnd.params,
            "participants": result.participants, "left_out": result.left_out, "height": height, "final": final,
            "latency_ms": round((time.monotonic() - rnd.started) * 1000, 1), "metrics": result.metrics,
            "outcome": result.outcome, **result.fields,
        }
        await self.plan.close_round(rnd, result, summary)
        _events.info("round.closed", round=rnd.number, height=height, final=final, left_out=len(result.left_out),
                     latency_ms=summary["latency_ms"])
        self.last = summary
        for observe in self.observers:
            observe(summary)
        return summary

    async def _settle(self, result: RoundResult) -> tuple[int | None, bool]:
        if result.settle_nonce is None:
            return None, False
        chain, me, nonce = self.ctx.chain, self.ctx.key.public, result.settle_nonce
        height: int | None = None
        try:
            await chain.wait_for(lambda: chain.state.nonce(me) >= nonce, timeout=result.settle_wait_s)
            height = chain.height
            await chain.wait_for(lambda: chain.finalized_height >= height, timeout=self.ctx.deadline("final_s"))
        except trio.TooSlowError:
            _events.warning("round.unsettled", round=self.number, block=height)
            return height, False
        return height, True

    def status(self) -> dict[str, Any]:
        """Engine fields for ``GET /status``."""
        return {"round": self.number, "running": self.lock.locked(), "stage": self.stage}
