"""A MESP: collects the miners' bids (a :class:`Collector`), bids for cloud bundles with its exact lower-level
surplus gain, checks the CCSP's upper result by clearing the round itself, and answers it with its lower result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bazaar.ledger.amounts import to_units
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import hierarchical as msg

from ...notify import Changes
from ...rounds.collector import Collector
from ..app import RoleApp, on, serve
from ..context import Refuse, RequestFailed
from .clearing import MinerBid, bundle_row, clear, escrow_id, escrow_ref, lower_result, parse_bid, parse_offer
from .common import CCSP, MINER, HierarchicalRole

EARLY_BID_S = 1.0
"""How long a bid for a round we have not heard called yet waits for the CCSP's call: a miner that got the
gossiped call a hop before us bids at once (before, such bids were refused and the round waited out its whole bid
deadline for them)."""


@dataclass
class _Round:
    number: int
    call: dict[str, Any]
    bids: Collector[MinerBid]


def reach_of(p: dict[str, Any], miner: int, n_mesps: int) -> list[int]:
    """The MESPs a miner can reach: its home MESP from ``miner_mesp`` (−1 or absent: all)."""
    home = p.get("miner_mesp")
    if home is None or home[miner] < 0:
        return list(range(n_mesps))
    return [int(home[miner])]


class Mesp(HierarchicalRole):
    """A mobile-edge provider."""

    current: _Round | None = None

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.called = Changes()

    @property
    def index(self) -> int:
        """Our index in the parameter file."""
        return self.roster.mesps.index(self.ctx.key.public)

    @on(msg.MSG_CALL, from_roles=(CCSP,))
    async def on_call(self, env: Envelope) -> None:
        """A round opens: collect the bids of the miners that can reach us, then offer."""
        self.from_leader(env)
        if self.ctx.key.public not in env.body["mesps"]:
            return
        expected = [k for k in env.body["miners"] if k in self.roster.miners
                    and self.index in reach_of(self.p, self.roster.miners.index(k), len(self.roster.mesps))]
        wait_s = max(0.0, (env.body["bid_deadline_ms"] - now_ms()) / 1000)
        self.current = _Round(env.round, env.body, Collector(expected, wait_s))
        self.called.notify()
        self.ctx.spawn("offer", self.offer, self.current)

    @serve(msg.MSG_BID, reply=msg.MSG_BID_ACK, from_roles=(MINER,))
    async def on_bid(self, env: Envelope) -> dict[str, Any]:
        """A miner's bid and escrow lock for the round in progress (a bid for a later round waits up to
        ``EARLY_BID_S`` for its call: the miner may have heard the call before us)."""
        rnd = self.current
        if rnd is None or env.round > rnd.number:
            await self.called.holds_within(lambda: self.current is not None and self.current.number >= env.round,
                                           EARLY_BID_S)
            rnd = self.current
        if rnd is None or env.round != rnd.number:
            raise Refuse("wrong-round", "no round open")
        bid = parse_bid(env.wire, self.ctx.network_id, env.round, self.roster, self.cfg.max_bid)
        if self.index not in bid.reach:
            raise Refuse("bad-reach", "the bid does not name this MESP")
        if self.ctx.chain.state.balance(env.sender) < to_units(bid.bid):
            raise Refuse("insufficient-funds", "the miner cannot cover its bid")
        rnd.bids.offer(env.sender, bid)
        return {"accepted": True, "reason": ""}

    async def offer(self, rnd: _Round) -> None:
        """After the bid deadline: our bundle row from the bids we hold, its escrow, to the CCSP."""
        ctx = self.ctx
        got = await rnd.bids.wait()
        book = sorted(got.answers.values(), key=lambda b: b.index)
        invited = [self.roster.mesps.index(k) for k in rnd.call["mesps"] if k in self.roster.mesps]
        try:
            with self.work.timed(rnd.number):
                row = await ctx.compute(bundle_row, self.p, book, invited, self.index)
        except MechanismError as err:
            ctx.events.error("offer.failed", round=rnd.number, error=str(err)[:200])
            return
        top = to_units(max(row, default=0.0))
        lock = None
        if top > 0:
            lock = ctx.chain.sign_tx("escrow_lock", {
                "id": escrow_id(rnd.number, ctx.key.public), "payee": self.roster.leader, "amount": top,
                "expires": rnd.call["expires"], "arbiter": self.roster.leader, "ref": escrow_ref(rnd.number)},
                round=rnd.number)
        body = {"values": row, "bids": [b.wire for b in book], "escrow": lock.wire if lock else None}
        timeout = max(0.1, (rnd.call["bundle_deadline_ms"] - now_ms()) / 1000)
        try:
            await ctx.ask(self.roster.leader, msg.MSG_BUNDLE, body, round=rnd.number, timeout=timeout)
        except RequestFailed as err:
            ctx.events.warning("offer.refused", round=rnd.number, error=str(err)[:200])
            if lock is not None:
                ctx.chain.forget_nonce(lock.body["nonce"])
            return
        ctx.events.info("offer.accepted", round=rnd.number, bids=len(book), top=max(row, default=0.0))

    @serve(msg.MSG_UPPER, reply=msg.MSG_LOWER, from_roles=(CCSP,))
    async def on_upper(self, env: Envelope) -> dict[str, Any]:
        """Check the leading CCSP's upper result against our own clearing; our answer (a signed ``lower``) is our
        lower result. A direct request, not gossip: no other node reads it (docs/adr/0177); the settlement record
        carries both for every node to re-check."""
        self.from_leader(env)
        ctx, body = self.ctx, env.body
        offers = [parse_offer(w, ctx.network_id, env.round, self.roster, self.steps, self.cfg.max_bid)
                  for w in body["offers"]]
        if self.index not in [o.index for o in offers]:
            raise Refuse("result-mismatch", "the upper result does not clear our offer")
        try:
            with self.work.timed(env.round):
                cleared = await ctx.compute(clear, self.p, offers)
        except MechanismError as err:
            raise Refuse("result-mismatch", f"the offers do not clear: {err}") from err
        same = (np.allclose(cleared.bundles, body["bundles"], rtol=1e-9, atol=1e-9)
                and np.allclose(cleared.mesp_payments, body["payments"], rtol=1e-9, atol=1e-9)
                and [int(x) for x in cleared.ccsp_of] == list(body["ccsp_of"]))
        if not same:
            raise Refuse("result-mismatch", "the CCSP's bundles or payments differ from the round's clearing")
        served = lower_result(cleared, self.index)
        ctx.events.info("lower.published", round=env.round, served=len(served))
        return {"served": served, "surplus": float(sum(
            b.bid - self.p["mesp_ask"][self.index] * b.demand for b in cleared.book if b.miner in served))}


APP = RoleApp("mesp", Mesp)
