"""What both ai-bazaar roles share: config, PoL settlement after the mining deadline, the CPP's identity.

One round (docs/models/ai-bazaar.md), driven by the CPP through the round engine:

1. the CPP gossips its price (Stackelberg optimum for the consumers present, or its WoLF-PHC agent's action);
2. each consumer answers over a direct stream with its demand and a signed escrow lock of ``price × demand``;
   a consumer that misses the deadline is left out of the round;
3. the CPP gossips the lease: the accepted demands, its signed lease record and the escrow locks;
4. each leasing consumer trains the shared model for ``steps_per_unit · β_i F_i`` SGD steps and gossips its
   signed model commitment (hash, claimed loss) and the release of its escrow;
5. once every leased miner has claimed (or at the mining deadline, for the missing ones) every node asks the PoL
   driver for the lowest verified claim; its miner proposes the block (reward R + λB) — or, when it stays
   silent, the next verified claimant after ``block_s`` (attempt 1), and so on — validators re-check the
   winner's loss, attest, and the block becomes final at 2/3 of the stake; everyone adopts the winner's weights;
6. the agents observe their profits (docs/models/ai-bazaar.md formulas at the realised price and demands).
"""

from __future__ import annotations

import hashlib
from typing import Any

from bazaar.mechanisms.ai_bazaar import Params
from bazaar.protocol import Envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.markets import ai_bazaar as msg

from ...consensus.pol import PolDriver
from ..app import Role, on
from ..context import Refuse, RoleContext
from .config import MarketConfig

LEADER, FOLLOWER = "cpp", "consumer"


def escrow_id(round_no: int, payer: bytes) -> bytes:
    """The escrow of one consumer's lease in one round."""
    return hashlib.sha256(b"ai-bazaar/escrow" + round_no.to_bytes(8, "big") + payer).digest()


class AiBazaarRole(Role):
    """Config, PoL settlement and the handlers every ai-bazaar node runs."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.cfg: MarketConfig = ctx.settings
        pol = ctx.consensus
        if not isinstance(pol, PolDriver):
            raise TypeError("ai-bazaar settles with Proof-of-Learning")
        self.pol = pol
        cpp = ctx.peers(LEADER)
        if len(cpp) != 1:
            raise ValueError("the address book must name exactly one cpp")
        self.cpp_key = cpp[0].key
        self.consumers = ctx.peers(FOLLOWER)
        self.consumer_index = {p.key: i for i, p in enumerate(self.consumers)}

    def mining_steps(self, params: Params, index: int, demand: float) -> int:
        """SGD steps bought by a lease: proportional to β_i F_i, capped."""
        return int(min(self.cfg.max_steps, round(self.cfg.steps_per_unit * params.beta[index] * demand)))

    @on(msg.MSG_MINED, from_roles=(FOLLOWER,))
    async def on_mined(self, env: Envelope) -> None:
        """A miner's submission: keep its transactions and its claim."""
        body = env.body
        sub = self.pol.add_submission(env.round, body["txs"][0])
        if sub.submitter != env.sender or sub.model_hash != body["model_hash"] or sub.loss != body["loss"]:
            raise Refuse("schema", "submission does not match its commitment")
        self.pol.offer_weights(sub, body.get("weights"))  # inline weights: no fetch from the miner
        for raw in body["txs"]:
            self.ctx.chain.add_tx(raw)

    @on(msg.MSG_LEASE, from_roles=(LEADER,))
    async def on_lease(self, env: Envelope) -> None:
        """The CPP's lease: keep its transactions (every node may propose the round's block)."""
        if any(k not in self.consumer_index for k in env.body["demands"]):
            raise Refuse("schema", "lease names an unknown consumer")
        for raw in env.body["txs"]:
            self.ctx.chain.add_tx(raw)
        await self.after_lease(env)

    async def after_lease(self, env: Envelope) -> None:
        """Role-specific reaction to a lease (consumers mine; everyone settles)."""
        self.pol.expect(env.round, miners=env.body["demands"])  # only the leased miners may claim
        self.ctx.spawn("settle", self.settle_round, env.round, env.body["mining_deadline_ms"])

    async def settle_round(self, round_no: int, deadline_ms: int) -> None:
        """Once every leased miner has claimed, or at the mining deadline for the missing ones: rank and verify the
        claims; the best verified claimant proposes the block at once, the next ones after ``k × block_s`` when it
        stays silent (``PolDriver.settle``, docs/adr/0115)."""
        complete = await self.pol.mining_closed(round_no, (deadline_ms - now_ms()) / 1000)
        self.ctx.events.info("round.mining_closed", round=round_no, every_claim=complete,
                             early_s=round(max(0.0, (deadline_ms - now_ms()) / 1000), 3))
        winner, block = await self.pol.settle(round_no)
        if winner is None:
            self.ctx.events.warning("round.no_valid_submission", round=round_no)
            return
        self.ctx.events.info("round.winner", round=round_no, miner=self.ctx.name_of(winner.submitter),
                             loss=winner.loss)
        if block is not None:
            self.ctx.events.info("round.proposed", round=round_no, height=block.header.height,
                                 attempt=block.header.consensus.get("attempt", 0))

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return self.pol.status()
