"""The CCSP: the leading one calls rounds, collects the MESPs' offers, clears the upper level, collects the
lower results and submits the settlement; every CCSP validates blocks (the settlement contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from bazaar.ledger.amounts import from_units, to_units
from bazaar.ledger.txs import WEIGHTS_RECORD, decode_tx
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope, codec
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import hierarchical as msg

from ...rounds.collector import Collector
from ...rounds.engine import RoundError, RoundResult, RoundStart
from ..app import RoleApp, serve
from ..context import Refuse, RequestFailed, RoleContext
from .clearing import (
    Cleared,
    Offer,
    clear,
    lower_result,
    outcome_doc,
    parse_lower,
    parse_offer,
    record_parts,
    settle_cleared,
)
from .common import MESP, HierarchicalRole
from .reference import PendingOptimum, ReferenceSolver, reference_instance

REFERENCE_WAIT_S = 60.0
"""How long the report waits for the joint-MILP optimum once the round is final (then: unknown, None)."""


@dataclass
class _Open:
    number: int
    offers: Collector[Offer]
    expires: int = 0
    """The call's escrow expiry: every lock of the round must carry it (a bounded wait if we die, ADR 0092)."""


class Ccsp(HierarchicalRole):
    """A cloud provider; the first one leads rounds (its :class:`RoundPlan`)."""

    current: _Open | None = None

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.references = ReferenceSolver()
        """The joint-MILP optimum of each distinct cleared instance (solved in a child process)."""

    @serve(msg.MSG_BUNDLE, reply=msg.MSG_BUNDLE_ACK, from_roles=(MESP,))
    async def on_offer(self, env: Envelope) -> dict[str, Any]:
        """A MESP's bundle offer for the round in progress."""
        rnd = self.current
        if rnd is None or env.round != rnd.number:
            raise Refuse("wrong-round", "no round open")
        offer = parse_offer(env.wire, self.ctx.network_id, env.round, self.roster, self.steps, self.cfg.max_bid)
        for raw in (offer.lock, *(b.lock for b in offer.bids)):
            if raw is not None and decode_tx(raw, self.ctx.network_id).body["expires"] != rnd.expires:
                raise Refuse("bad-escrow", f"every lock of round {rnd.number} expires at the call's {rnd.expires}")
        if offer.lock is not None and self.ctx.chain.state.balance(env.sender) < to_units(max(offer.values)):
            raise Refuse("insufficient-funds", "the MESP cannot cover its largest bundle bid")
        rnd.offers.offer(env.sender, offer)
        return {"accepted": True, "reason": ""}

    async def open_round(self, rnd: RoundStart) -> RoundResult:
        """Call, collect offers, clear, send the upper result to each MESP cleared (its answer is its lower
        result), settle."""
        ctx = self.ctx
        if ctx.key.public != self.roster.leader:
            raise RoundError("only the leading CCSP runs rounds")
        connected = ctx.connected()
        mesps = [k for k in self.roster.mesps if k in connected]
        miners = [k for k in self.roster.miners if k in connected]
        if not mesps or not miners:
            raise RoundError("no MESP or no miner is connected")
        bid_s, bundle_s, lower_s = ctx.deadline("bid_s"), ctx.deadline("bundle_s"), ctx.deadline("lower_s")
        start = now_ms()
        call = {"params": rnd.params, "miners": miners, "mesps": mesps,
                "bid_deadline_ms": start + int(bid_s * 1000),
                "bundle_deadline_ms": start + int((bid_s + bundle_s) * 1000),
                "lower_deadline_ms": start + int((bid_s + bundle_s + lower_s) * 1000),
                "expires": ctx.chain.height + self.cfg.escrow_expiry}
        self.current = _Open(rnd.number, Collector(mesps, bid_s + bundle_s), expires=call["expires"])
        await ctx.publish(msg.MSG_CALL, call, round=rnd.number)
        got = await self.current.offers.wait()
        offers = [got.answers[k] for k in self.roster.mesps if k in got.answers]
        invited = [ctx.name_of(k) for k in (*mesps, *miners)]
        if not offers:
            self.current = None
            return RoundResult(invited, invited, None, 0.0, metrics={"offers": 0})
        try:
            with self.work.timed(rnd.number):
                cleared = await ctx.compute(clear, self.p, offers)
        except MechanismError as err:
            self.current = None
            raise RoundError(f"the offers do not form a market: {err}") from err
        # the joint-MILP reference is a figure of the report only: a child process solves it beside the round
        reference = self.references.start(ctx.spawn, reference_instance(self.p, cleared.book, cleared.mesps))
        present = [self.roster.mesps[j] for j in cleared.mesps]
        self.current = None
        upper = {"offers": [o.wire for o in sorted(offers, key=lambda o: o.index)],
                 "bundles": [float(x) for x in cleared.bundles], "ccsp_of": [int(x) for x in cleared.ccsp_of],
                 "payments": [float(x) for x in cleared.mesp_payments], "upper_welfare": cleared.upper_welfare,
                 "upper_bound": cleared.upper_bound}
        lowers_got: dict[bytes, tuple[bytes, dict[bytes, float]]] = {}
        async with trio.open_nursery() as nursery:
            for k in present:
                nursery.start_soon(self._ask_lower, k, rnd.number, upper, cleared, lower_s, lowers_got)
        lower_wires = [lowers_got[k][0] for k in present if k in lowers_got]
        lowers = {self.roster.mesps.index(k): lowers_got[k][1] for k in present if k in lowers_got}
        nonce = await self._settle(rnd.number, offers, lower_wires, cleared, lowers)
        doc = outcome_doc(cleared, len(self.roster.miners), len(self.roster.mesps), self.cfg.multi)
        in_book = {b.miner for b in cleared.book}
        confirmed = {self.roster.mesps[j] for j in cleared.mesps if self.roster.mesps[j] in lowers_got}
        left_out = [ctx.name_of(k) for k in mesps if k not in confirmed]
        left_out += [ctx.name_of(k) for k in miners if k not in in_book]
        metrics = {"welfare": doc["welfare"], "optimum_welfare": None, "gap": None,  # close_round: the reference
                   "utilisation": doc["utilisation"], "served": sum(1 for a in doc["assignment"] if a is not None),
                   "bids": len(cleared.book), "cloud_units": float(sum(doc["bundles"])),
                   "ccsp_revenue": float(sum(doc["mesp_payments"])), "duality_gap": doc.get("duality_gap")}
        # two silent draws may be replaced (each after block_s) before the settlement block comes
        return RoundResult(invited, left_out, nonce, 3 * ctx.deadline("block_s"), metrics=metrics, outcome=doc,
                           private={"optimum": reference})

    async def _ask_lower(self, mesp: bytes, round_no: int, upper: dict[str, Any], cleared: Cleared, timeout: float,
                         got: dict[bytes, tuple[bytes, dict[bytes, float]]]) -> None:
        """Send the upper result to one MESP we cleared; its answer is its signed lower result, kept when it
        matches our clearing (point to point: no other node reads either, docs/adr/0157 and 0177)."""
        ctx = self.ctx
        try:
            answer = await ctx.ask(mesp, msg.MSG_UPPER, upper, round=round_no, timeout=timeout)
            j, served = parse_lower(answer.wire, ctx.network_id, round_no, self.roster)
        except (RequestFailed, Refuse) as err:
            ctx.events.warning("lower.missing", round=round_no, mesp=ctx.name_of(mesp), error=str(err)[:200])
            return
        expected = lower_result(cleared, j)
        if (self.roster.mesps[j] != mesp or set(served) != set(expected)
                or any(abs(served[k] - v) > 1e-9 * max(1.0, v) for k, v in expected.items())):
            ctx.events.warning("lower.mismatch", round=round_no, mesp=ctx.name_of(mesp))
            return
        got[mesp] = (answer.wire, served)

    async def _settle(self, round_no: int, offers: list[Offer], lower_wires: list[bytes], cleared: Cleared,
                      lowers: dict[int, dict[bytes, float]]) -> int | None:
        """Submit the locks, the escrow settlements, the settlement record and the lottery weights (derived from
        our own clearing of these offers and the lower results we checked as they came: what every importer
        re-derives from the record)."""
        ctx = self.ctx
        ordered = sorted(offers, key=lambda o: o.index)
        parts = record_parts([o.wire for o in ordered], lower_wires)
        if parts is None:
            ctx.events.error("round.record_too_large", round=round_no,
                             bytes=max(len(codec.encode({"offers": [o.wire], "lowers": []})) for o in ordered))
            return None  # nothing moves; every lock stays off chain
        _, settlement = settle_cleared(cleared, round_no, ordered, lowers, self.roster)
        txs = list(settlement.locks)
        for escrow, (to, amount) in sorted(settlement.settles.items()):
            txs.append(ctx.chain.sign_tx("escrow_settle", {"id": escrow, "to": to, "amount": amount},
                                         round=round_no).wire)
        for data in parts:  # one record, or several when the signed offers exceed one record's data
            last = ctx.chain.sign_tx("record", {"kind": msg.SETTLEMENT_RECORD, "data": data}, round=round_no)
            txs.append(last.wire)
        if settlement.weights and self.lottery:
            last = ctx.chain.sign_tx("record", {"kind": WEIGHTS_RECORD, "data": {"weights": settlement.weights}},
                                     round=round_no)
            txs.append(last.wire)
        await ctx.chain.submit(txs, seal=True)  # the round's whole settlement: a proposer seals at once
        ctx.events.info("round.settlement", round=round_no, txs=len(txs),
                        moved=from_units(sum(a for _, a in settlement.settles.values())))
        return int(last.body["nonce"])

    async def close_round(self, rnd: RoundStart, result: RoundResult, summary: dict[str, Any]) -> None:
        """Name the block's proposer (drawn by the lottery) and add the joint-MILP optimum to the figures."""
        pending: PendingOptimum | None = result.private.get("optimum")
        if pending is not None:
            optimum = await pending.result(REFERENCE_WAIT_S)
            welfare = summary["outcome"].get("welfare")
            summary["outcome"]["optimum_welfare"] = optimum
            summary["metrics"]["optimum_welfare"] = optimum
            summary["metrics"]["gap"] = (None if optimum in (None, 0) or welfare is None
                                         else (optimum - welfare) / abs(optimum))
        block = self.ctx.chain.block(summary["height"]) if summary["height"] else None
        if block is not None:
            summary["proposer"] = self.ctx.name_of(block.header.proposer)
            self.settled_rounds += 1



APP = RoleApp("ccsp", Ccsp)
