"""What every collab node shares: the roster, the book as data, the settlement as data, and the settlement
contract every validator re-executes.

The settlement contract (``@block_check``): a block that splits a collab escrow must carry the pool's
settlement record of that round: the final prices, each signed by its device, and the publishers' signed final
orders. Every validator replays the orders in publisher order against the residual book — no order takes more
than a device has left, and no order costs more than the publisher's lock — and refuses the block unless each
escrow split pays each device exactly what that publisher bought from it (floored to micro-tokens; the rest is
refunded). So no escrow moves without a matched trade, and the pool cannot invent one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from bazaar.ledger.amounts import UNIT
from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.collab import Seller
from bazaar.mechanisms.collab.portfolio import Portfolio
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.markets import collab as msg

from ..app import Role, block_check
from ..context import Refuse, RoleContext
from ..embedded import open_embedded
from .config import CollabConfig

POOL, DEVICE, PUBLISHER = "pool", "device", "publisher"
QTY_TOL = 1e-9


@dataclass(frozen=True)
class Roster:
    """Who is who, in scenario order (the parameter file's seller and publisher indices)."""

    pool: bytes
    devices: tuple[bytes, ...]
    publishers: tuple[bytes, ...]


def escrow_id(round_no: int, publisher: bytes) -> bytes:
    """The budget lock of a publisher in one round."""
    return hashlib.sha256(b"collab/escrow" + round_no.to_bytes(8, "big") + publisher).digest()


def escrow_ref(round_no: int) -> bytes:
    """The ``ref`` of a round's escrows."""
    return f"collab/{round_no}".encode()


def floor_units(x: float) -> int:
    """Micro-tokens, rounded down (a split never pays more than the trades cost)."""
    return int((Decimal(max(0.0, x)) * UNIT).to_integral_value(rounding=ROUND_FLOOR))


def open_signed(wire: bytes, network_id: str, mtype: str) -> Envelope:
    """Open an embedded signed collab message of type ``mtype`` (:func:`~..embedded.open_embedded`)."""
    return open_embedded(wire, network_id, msg.MARKET, mtype)


def portfolio_of(body: dict[str, Any], method: str) -> Portfolio:
    """The portfolio an order states (what the pool fills; its gains are the publisher's own business)."""
    return Portfolio(compute=float(body["compute"]), data=float(body["data"]),
                     compute_purchases=tuple(float(x) for x in body["compute_purchases"]),
                     data_purchases=tuple(float(x) for x in body["data_purchases"]), payoff=float(body["payoff"]),
                     spent=float(body["spent"]), compute_cost=0.0, data_cost=0.0, time_gain=0.0, data_gain=0.0,
                     feasible=bool(body["feasible"]), method=method)


def order_body(port: Portfolio, iteration: int, escrow: bytes | None = None) -> dict[str, Any]:
    """The body of an order (or final order) stating ``port``."""
    return {"iteration": iteration, "feasible": port.feasible, "compute": port.compute, "data": port.data,
            "compute_purchases": list(port.compute_purchases), "data_purchases": list(port.data_purchases),
            "payoff": port.payoff, "spent": port.spent, "escrow": escrow}


def sellers_of(caps_f: list[float], caps_d: list[float], pf: list[float], pd: list[float], phi: list[float],
               theta: list[float]) -> list[Seller]:
    """The book's sellers."""
    return [Seller(caps_f[i], pf[i], caps_d[i], pd[i], phi[i], theta[i]) for i in range(len(caps_f))]


def replay_settlement(data: dict[str, Any], network_id: str, roster: Roster, locks: dict[bytes, int]
                      ) -> dict[bytes, dict[bytes, int]]:
    """Re-derive the escrow splits of a settlement record: publisher -> {device: micro-tokens}.

    Args:
        data: the record's data ``{round, compute_capacity, data_capacity, prices: [signed price or offer, or
            nil for a device that never offered], orders: [signed final orders]}``.
        locks: publisher -> its lock amount (micro-tokens) this round.

    Raises:
        Refuse: a message does not verify, an order takes more than is left or costs more than its lock.
    """
    n = len(roster.devices)
    caps_f = [float(x) for x in data["compute_capacity"]]
    caps_d = [float(x) for x in data["data_capacity"]]
    if len(caps_f) != n or len(caps_d) != n or len(data["prices"]) != n:
        raise Refuse("bad-settlement", "the book does not list every device once")
    pf, pd = [0.0] * n, [0.0] * n
    for i, wire in enumerate(data["prices"]):
        if wire is None:  # a device that never offered: an empty slot
            if caps_f[i] != 0 or caps_d[i] != 0:
                raise Refuse("bad-settlement", f"device {i} has capacity but no signed price")
            continue
        env = open_envelope_any(wire, network_id)
        if env.sender != roster.devices[i] or env.round != data["round"]:
            raise Refuse("bad-settlement", f"price {i} is not signed by its device for this round")
        pf[i], pd[i] = float(env.body["compute_price"]), float(env.body["data_price"])
    left_f, left_d = list(caps_f), list(caps_d)
    out: dict[bytes, dict[bytes, int]] = {}
    seen: set[bytes] = set()
    for wire in data["orders"]:
        env = open_signed(wire, network_id, msg.MSG_FINAL_ORDER)
        if env.round != data["round"]:
            raise Refuse("bad-settlement", "a final order of another round")
        if env.sender not in roster.publishers or env.sender in seen:
            raise Refuse("bad-settlement", "a final order not from a publisher, or two from one")
        if seen and roster.publishers.index(env.sender) < max(roster.publishers.index(k) for k in seen):
            raise Refuse("bad-settlement", "final orders out of publisher order")
        seen.add(env.sender)
        qf = [float(x) for x in env.body["compute_purchases"]]
        qd = [float(x) for x in env.body["data_purchases"]]
        if len(qf) != n or len(qd) != n:
            raise Refuse("bad-order", "an order must name every device")
        pay: dict[bytes, int] = {}
        cost = 0.0
        for i in range(n):
            if qf[i] > left_f[i] + QTY_TOL * max(1.0, caps_f[i]) or qd[i] > left_d[i] + QTY_TOL * max(1.0, caps_d[i]):
                raise Refuse("over-offer", f"an order takes more than device {i} has left")
            left_f[i] = max(0.0, left_f[i] - qf[i])
            left_d[i] = max(0.0, left_d[i] - qd[i])
            amount = qf[i] * pf[i] + qd[i] * pd[i]
            cost += amount
            if floor_units(amount) > 0:
                pay[roster.devices[i]] = floor_units(amount)
        if sum(pay.values()) > locks.get(env.sender, 0) or not math.isfinite(cost):
            raise Refuse("over-budget", "an order costs more than the publisher locked")
        out[env.sender] = pay
    return out


def open_envelope_any(wire: bytes, network_id: str) -> Envelope:
    """A device's signed ``price`` or ``offer`` (the final price of a device never regulated is its offer)."""
    return open_embedded(wire, network_id, msg.MARKET, msg.MSG_PRICE, msg.MSG_OFFER)


class CollabRole(Role):
    """Config, roster and the settlement contract."""

    def __init__(self, ctx: RoleContext) -> None:
        super().__init__(ctx)
        self.cfg: CollabConfig = ctx.settings
        self.roster = Roster(ctx.peers(POOL)[0].key, tuple(e.key for e in ctx.peers(DEVICE)),
                             tuple(e.key for e in ctx.peers(PUBLISHER)))
        self.settled = 0

    def from_pool(self, env: Envelope) -> None:
        """Refuse a round message not signed by the pool."""
        if env.sender != self.roster.pool:
            raise Refuse("not-authorised", f"{env.type} must come from the resource pool")

    @block_check
    def settlement_matches(self, parent: State, block: Block) -> None:
        """The settlement contract (module docstring)."""
        txs: list[Envelope] = []
        for raw in block.txs:
            try:
                txs.append(decode_tx(raw, self.ctx.network_id))
            except ProtocolError:
                return  # the ledger refuses the block itself
        locks = {t.body["id"]: t for t in txs if t.type == "tx/escrow_lock" and t.market == msg.MARKET}
        splits = []
        for t in txs:
            if t.type not in ("tx/escrow_split", "tx/escrow_settle", "tx/escrow_release", "tx/escrow_take"):
                continue
            escrow = parent.escrows.get(t.body["id"])
            market = escrow.market if escrow is not None else (locks[t.body["id"]].market if t.body["id"] in locks
                                                               else "")
            if market != msg.MARKET:
                continue
            if t.type != "tx/escrow_split":
                raise InvalidBlock("market-contract", "collab escrows are split by the pool, never settled or "
                                                      "released")
            splits.append(t)
        records = [t for t in txs if t.type == "tx/record" and t.body["kind"] == msg.SETTLEMENT_RECORD]
        if not records:
            if splits:
                raise InvalidBlock("market-contract", "escrow splits without the round's settlement record")
            return
        expected: dict[bytes, dict[bytes, int]] = {}
        for rec in records:
            if rec.sender != self.roster.pool:
                raise InvalidBlock("market-contract", "settlement record not signed by the pool")
            amounts = {}
            for pub in self.roster.publishers:
                eid = escrow_id(rec.round, pub)
                lock = locks.get(eid)
                held = parent.escrows.get(eid)
                amounts[pub] = int(lock.body["amount"]) if lock is not None else (held.amount if held else 0)
            try:
                derived = replay_settlement(rec.body["data"], self.ctx.network_id, self.roster, amounts)
            except (Refuse, KeyError, TypeError, ValueError) as err:
                raise InvalidBlock("market-contract", f"settlement record does not re-derive: {err}") from err
            for pub, pay in derived.items():
                expected[escrow_id(rec.round, pub)] = pay
        for t in splits:
            want = expected.get(t.body["id"], {})
            if {bytes(k): int(v) for k, v in t.body["to"].items()} != want:
                raise InvalidBlock("market-contract", "an escrow split differs from the re-derived trades")

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {"settled_rounds": self.settled}
