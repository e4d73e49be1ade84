"""Messages of market ``ai-bazaar`` (docs/models/ai-bazaar.md): price, demand, lease, mining submission.

Flow of one round: the CPP gossips ``price``; each consumer sends ``demand`` (with its signed escrow lock)
to the CPP over a direct stream and gets ``ack``; the CPP gossips ``lease`` (the accepted demands and the
round's transactions); each consumer trains and gossips ``mined`` (its signed model commitment and escrow
release); the lowest verified loss proposes the block.
"""

from __future__ import annotations

from ..chainmsg import MAX_TX
from ..messages import register
from ..schema import Bool, Bytes, Int, List, Map, Num, Optional, Schema, Str

MARKET = "ai-bazaar"
MAX_CONSUMERS = 1024

MSG_PRICE = "ai-bazaar/price"
MSG_DEMAND = "ai-bazaar/demand"
MSG_ACK = "ai-bazaar/ack"
MSG_LEASE = "ai-bazaar/lease"
MSG_MINED = "ai-bazaar/mined"

MODES = ("equilibrium", "learning")

PRICE = register(MSG_PRICE, Schema({
    "price": Num(low=0),
    "mode": Str(choices=MODES),
    "params": Str(min_len=1, max_len=64),
    "participants": List(Bytes(size=32), max_len=MAX_CONSUMERS, min_len=1),
    "demand_deadline_ms": Int(low=0),
    "level": Optional(Int(low=0, high=10_000)),
}))
DEMAND = register(MSG_DEMAND, Schema({
    "demand": Num(low=0),
    "escrow": Bytes(max_len=MAX_TX),
    "level": Optional(Int(low=0, high=10_000)),
}))
ACK = register(MSG_ACK, Schema({"accepted": Bool(), "reason": Str(max_len=200)}))
LEASE = register(MSG_LEASE, Schema({
    "price": Num(low=0),
    "demands": Map(Bytes(size=32), Num(low=0), max_len=MAX_CONSUMERS),
    "txs": List(Bytes(max_len=MAX_TX), max_len=2 * MAX_CONSUMERS + 4),
    "mining_deadline_ms": Int(low=0),
}))
MAX_INLINE_WEIGHTS = 64 << 10
"""A claim carries its model's weights inline up to this size, so no validator has to fetch them (ADR 0147)."""

MINED = register(MSG_MINED, Schema({
    "model_hash": Bytes(size=32),
    "loss": Num(low=0),
    "steps": Int(low=0, high=10**7),
    "txs": List(Bytes(max_len=MAX_TX), max_len=4, min_len=1),
    "weights": Optional(Bytes(max_len=MAX_INLINE_WEIGHTS)),
}))
