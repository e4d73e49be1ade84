"""What every hierarchical node shares: the roster, and the settlement contract the validators re-execute.

The settlement contract (:meth:`HierarchicalRole.settlement_matches`): a block that moves any escrow of this market
must carry the leading CCSP's settlement record of that round; a node re-derives the round's clearing from the
signed messages in the record (the MESPs' offers with the miners' bids inside, the MESPs' lower results) and
refuses the block unless every escrow settlement in it and the lottery ``weights`` record match it exactly. So no
escrow is released without the signed result that justifies it, and a CCSP cannot forge a bid, an offer or a
payment. A settlement may be missing — a miner that emptied its account after bidding makes its own lock fail, so
its settlement cannot apply — and the block still settles everyone else (an escrow never locked moves nothing).

Who runs it (``@block_check``, docs/adr/0179): the validating roles (CCSPs and MESPs) on every block, as
tbcim's edge servers run theirs; a miner only on a block it proposes itself. A miner does not attest: a block
becomes final only with the validators' certificate, so a block that breaks the contract is never final, and a
miner holding one rewinds to the certified block at that height (fork choice by certificate).
"""

from __future__ import annotations

from typing import Any

from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.execute import parse_weights
from bazaar.ledger.state import State
from bazaar.ledger.txs import WEIGHTS_RECORD, decode_tx
from bazaar.mechanisms.errors import MechanismError
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.markets import hierarchical as msg

from ..app import Role, block_check
from ..context import Refuse, RoleContext
from .clearing import Roster, expected_settlement, joined_record, n_steps, parse_lower, parse_offer
from .config import HierarchicalConfig

CCSP, MESP, MINER = "ccsp", "mesp", "miner"


class HierarchicalRole(Role):
    """Config, roster and the settlement contract."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.cfg: HierarchicalConfig = ctx.settings
        self.p = self.cfg.params
        self.roster = Roster(tuple(e.key for e in ctx.peers(CCSP)), tuple(e.key for e in ctx.peers(MESP)),
                             tuple(e.key for e in ctx.peers(MINER)))
        self.steps = n_steps(self.p)
        self.settled_rounds = 0
        self.lottery = ctx.scenario.consensus == "lottery"
        """On a lottery network the allocation sets the next draw's weights; on pos the stakes draw."""

    def from_leader(self, env: Envelope) -> None:
        """Refuse a round message not signed by the leading CCSP."""
        if env.sender != self.roster.leader:
            raise Refuse("not-authorised", f"{env.type} must come from the leading CCSP")

    def settlement_of(self, round_no: int, data: dict[str, Any]) -> Any:
        """Re-derive a settlement record's clearing: ``(cleared, settlement)``.

        Raises:
            Refuse: a message in the record does not verify.
            MechanismError: the offers do not form a market.
        """
        nid = self.ctx.network_id
        offers = [parse_offer(w, nid, round_no, self.roster, self.steps, self.cfg.max_bid) for w in data["offers"]]
        if len({o.index for o in offers}) != len(offers):
            raise Refuse("duplicate", "two offers of one MESP")
        lowers = dict(parse_lower(w, nid, round_no, self.roster) for w in data["lowers"])
        return expected_settlement(self.p, round_no, offers, lowers, self.roster)

    @block_check
    def contract(self, parent: State, block: Block) -> None:
        """The validators' settlement contract on every block (CCSPs and MESPs; a miner narrows it to its own
        proposals, ``miner.py``)."""
        self.settlement_matches(parent, block)

    def settlement_matches(self, parent: State, block: Block) -> None:
        """The settlement contract (module docstring).

        Raises:
            InvalidBlock: ``market-contract``.
        """
        txs: list[Envelope] = []
        for raw in block.txs:
            try:
                txs.append(decode_tx(raw, self.ctx.network_id))
            except ProtocolError:
                return  # the ledger refuses the block itself
        ours = {t.body["id"]: t for t in txs if t.type == "tx/escrow_lock" and t.market == msg.MARKET}
        settles = []
        for t in txs:
            if t.type not in ("tx/escrow_settle", "tx/escrow_split", "tx/escrow_take"):
                continue
            escrow = parent.escrows.get(t.body["id"])
            market = escrow.market if escrow is not None else (ours[t.body["id"]].market if t.body["id"] in ours
                                                               else "")
            if market != msg.MARKET:
                continue
            if t.type != "tx/escrow_settle":
                raise InvalidBlock("market-contract", "hierarchical escrows are settled, never split or taken from")
            settles.append(t)
        records = [t for t in txs if t.type == "tx/record" and t.body["kind"] == msg.SETTLEMENT_RECORD]
        weights = [t for t in txs if t.type == "tx/record" and t.body["kind"] == WEIGHTS_RECORD]
        if not records:
            if settles:
                raise InvalidBlock("market-contract", "escrow settlements without the round's settlement record")
            return
        expected: dict[bytes, tuple[bytes, int]] = {}
        expected_weights: list[list[Any]] | None = None
        rounds: dict[int, list[dict[str, Any]]] = {}
        for rec in records:
            if rec.sender != self.roster.leader:
                raise InvalidBlock("market-contract", "settlement record not signed by the leading CCSP")
            rounds.setdefault(rec.round, []).append(rec.body["data"])
        for round_no, parts in rounds.items():  # a round's record may come in parts (docs/adr/0182)
            try:
                _, settlement = self.settlement_of(round_no, joined_record(parts))
            except (Refuse, MechanismError, KeyError, TypeError, ValueError) as err:
                raise InvalidBlock("market-contract", f"settlement record does not re-derive: {err}") from err
            expected.update(settlement.settles)
            expected_weights = settlement.weights if self.lottery else []
        got = {t.body["id"]: (t.body["to"], t.body["amount"]) for t in settles}
        wrong = [k for k, v in got.items() if expected.get(k) != v]
        if wrong:
            raise InvalidBlock("market-contract", f"{len(wrong)} escrow settlement(s) differ from the re-derived round")
        if not self.lottery and weights:
            raise InvalidBlock("market-contract", "a weights record on a stake-drawn network")
        if expected_weights is not None and expected_weights:
            if len(weights) != 1 or weights[0].sender != self.roster.leader:
                raise InvalidBlock("market-contract", "the round's lottery weights record is missing")
            try:
                published = parse_weights(weights[0].body["data"])
            except Exception as err:
                raise InvalidBlock("market-contract", f"bad weights record: {err}") from err
            if published != {bytes(a): int(w) for a, w in expected_weights}:
                raise InvalidBlock("market-contract", "lottery weights differ from the allocation")

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"settled_rounds": self.settled_rounds}
