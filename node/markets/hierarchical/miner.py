"""A miner: bids (demand, bid, block size) with a signed escrow lock to the MESPs it can reach, and learns
its allocation from the round's results."""

from __future__ import annotations

from typing import Any

import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.envelope import now_ms, reopen_envelope
from bazaar.protocol.markets import hierarchical as msg

from ..app import RoleApp, block_check, on, on_block
from ..context import RequestFailed, RoleContext
from .clearing import escrow_id, escrow_ref, joined_record
from .common import CCSP, HierarchicalRole
from .mesp import reach_of

DEFAULT_BLOCK_SIZE = 1.0
PENDING_ROUNDS = 8
"""Rounds whose settlement we still look for (an unsettled round's lock nonce is given up by the chain service)."""


class Miner(HierarchicalRole):
    """A miner buying compute for its mining."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.pending: dict[int, tuple[int, bytes, bytes]] = {}
        """Per round: our escrow lock's nonce, our signed bid and our lock, until the round's settlement block."""

    @property
    def index(self) -> int:
        """Our index in the parameter file."""
        return self.roster.miners.index(self.ctx.key.public)

    def my_bid(self) -> dict[str, Any]:
        """Our demand, bid and block size from the parameter file (our private values)."""
        p, i = self.p, self.index
        sizes = p.get("miner_block_size")
        return {"demand": float(p["miner_demand"][i]), "bid": float(p["miner_bid"][i]),
                "block_size": float(sizes[i]) if sizes else DEFAULT_BLOCK_SIZE}

    @on(msg.MSG_CALL, from_roles=(CCSP,), slow=True)
    async def on_call(self, env: Envelope) -> None:
        """Bid to every reachable MESP of the round, with one signed bid and one escrow lock (in its own task:
        waiting for the MESPs' answers never holds up the market topic)."""
        self.from_leader(env)
        ctx, me = self.ctx, self.ctx.key.public
        if me not in env.body["miners"] or env.round in self.pending:  # not ours, or a second call: one bid a round
            return
        for old in [r for r in self.pending if r < env.round - PENDING_ROUNDS]:  # rounds that never settled
            del self.pending[old]
        reach = [j for j in reach_of(self.p, self.index, len(self.roster.mesps))
                 if self.roster.mesps[j] in env.body["mesps"]]
        if not reach:
            return
        mine = self.my_bid()
        lock = ctx.chain.sign_tx("escrow_lock", {
            "id": escrow_id(env.round, me), "payee": self.roster.leader, "amount": to_units(mine["bid"]),
            "expires": env.body["expires"], "arbiter": self.roster.leader, "ref": escrow_ref(env.round)},
            round=env.round)
        nonce = int(lock.body["nonce"])
        bid = ctx.seal(msg.MSG_BID, {**mine, "reach": reach, "escrow": lock.wire}, round=env.round)
        self.pending[env.round] = (nonce, bid.wire, lock.wire)
        timeout = max(0.1, (env.body["bid_deadline_ms"] - now_ms()) / 1000)
        accepted = 0

        async def send(j: int) -> None:
            nonlocal accepted
            try:
                await ctx.ask_envelope(self.roster.mesps[j], bid, timeout=timeout)
                accepted += 1
            except RequestFailed as err:
                ctx.events.warning("bid.refused", round=env.round, mesp=j, error=str(err)[:200])

        async with trio.open_nursery() as nursery:
            for j in reach:
                nursery.start_soon(send, j)
        if not accepted:
            if self.pending.get(env.round, (None,))[0] == nonce:
                del self.pending[env.round]
            ctx.chain.forget_nonce(nonce)
        ctx.events.info("bid.sent", round=env.round, accepted=accepted, bid=mine["bid"])

    @block_check(own_proposals=True)
    def contract(self, parent: State, block: Block) -> None:
        """The settlement contract, live only on a block we propose ourselves (the lottery draws miners), so we
        never propose a settlement the validators would refuse. Others' blocks are not re-derived live: a miner
        does not attest, and a block becomes final only with the validators' certificate (``common.py``,
        docs/adr/0179); ``bazaar chain audit`` re-derives every block of a miner's chain all the same."""
        self.settlement_matches(parent, block)

    @on_block
    def left_out(self, block: Block) -> None:
        """When the block that settles a round we bid in comes, and our lock is not in it: our bid is not in the
        cleared book, the lock never lands, give its nonce back.

        The settlement batch carries the lock of every bid in the cleared book, so our lock's exact bytes in the
        block say we are in; otherwise the round's settlement record is read, and only our own signed bid is
        looked for among its offers' bids (docs/adr/0157). The upper result, which told us this before, now goes
        to the MESPs only (docs/adr/0177). A miner does not re-derive the record (docs/adr/0179): a block whose
        record the validators refuse is never final, and at worst gives our nonce back early (the chain service
        gives up a lost nonce anyway)."""
        if not self.pending:
            return
        txs = set(block.txs)
        for round_no, (nonce, bid, lock) in list(self.pending.items()):
            if lock in txs:
                del self.pending[round_no]
                continue
            record = _settlement_record(block.txs, self.ctx.network_id, round_no, self.roster.leader)
            if record is None:
                continue
            del self.pending[round_no]
            offers = record.get("offers")
            offers = [w for w in offers if isinstance(w, bytes)] if isinstance(offers, list) else []
            if not any(bid in _bids_of(w, self.ctx.network_id) for w in offers):
                self.ctx.chain.forget_nonce(nonce)
                self.ctx.events.warning("bid.left_out", round=round_no)


def _settlement_record(raws: list[bytes], network_id: str, round_no: int, leader: bytes) -> dict[str, Any] | None:
    """The leader's settlement record of ``round_no`` among a block's transactions, its parts joined, if any."""
    parts = []
    for raw in raws:
        try:
            tx = decode_tx(raw, network_id)
        except ProtocolError:
            continue
        if (tx.type == "tx/record" and tx.sender == leader and tx.round == round_no
                and tx.body.get("kind") == msg.SETTLEMENT_RECORD and isinstance(tx.body.get("data"), dict)):
            parts.append(tx.body["data"])
    if not parts:
        return None
    try:
        return joined_record(parts)
    except (KeyError, TypeError):
        return {"offers": []}  # a record the validators refuse: never final


def _bids_of(offer_wire: bytes, network_id: str) -> list[bytes]:
    """The bid wires a MESP's offer forwards (decoded without checking the offer's signature: the caller only
    looks for bytes it signed itself); none when the offer does not decode."""
    try:
        bids = reopen_envelope(offer_wire, network_id).body.get("bids")
    except ProtocolError:
        return []
    return [b for b in bids if isinstance(b, bytes)] if isinstance(bids, list) else []


APP = RoleApp("miner", Miner)
