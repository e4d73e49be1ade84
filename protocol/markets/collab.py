"""Messages of market ``collab`` (docs/models/collab.md): device offers, the pool's book, publishers' orders,
the pool's price regulation and the devices' new prices, and the settlement orders.

Flow of one round (docs/protocol.md §collab): the pool gossips ``call``; each device sends ``offer`` (its
capacities, starting prices, φ, θ) to the pool; then per iteration the pool gossips ``book`` (the prices of
every offer), each publisher still holding budget sends ``order`` (its portfolio against the book; with its
signed budget lock in iteration 0), and — unless the market cleared or the cap is reached — the pool gossips
``regulate`` (the new price of every offer by the round's rule) and each device sends ``price`` (its new prices,
signed). At the end the pool asks each publisher in turn for its ``final`` order against what the earlier ones
left, and settles.

With the ``declared`` protocol (the default for the pool's rules, docs/adr/0160) a round is O(1) exchanges: with
its offer each device sends nothing more until the end; each publisher answers the ``call`` with ``declare`` (its
portfolio parameters and its signed budget lock) to the pool alone; the pool regulates locally with the offline
code, then asks each device at once with ``outcome`` (its own price path and gap directions; the device answers
with its signed ``price``) and each publisher with ``final-book`` (the final book and what the earlier publishers
leave; it answers with its signed ``final-order``), and settles with the same record.
"""

from __future__ import annotations

from ..chainmsg import MAX_TX
from ..messages import register
from ..schema import Bool, Bytes, Int, List, Num, Optional, Schema, Str

MARKET = "collab"
MAX_DEVICES = 256
MAX_PUBLISHERS = 256

MSG_CALL = "collab/call"
MSG_OFFER = "collab/offer"
MSG_OFFER_ACK = "collab/offer-ack"
MSG_BOOK = "collab/book"
MSG_ORDER = "collab/order"
MSG_ORDER_ACK = "collab/order-ack"
MSG_REGULATE = "collab/regulate"
MSG_PRICE = "collab/price"
MSG_PRICE_ACK = "collab/price-ack"
MSG_FINAL = "collab/final"
MSG_FINAL_ORDER = "collab/final-order"
MSG_DECLARE = "collab/declare"
MSG_DECLARE_ACK = "collab/declare-ack"
MSG_OUTCOME = "collab/outcome"
MSG_FINAL_BOOK = "collab/final-book"
MAX_PATH = 100_001
"""Longest price path of an ``outcome`` (evaluations: ``max_iter`` + 1)."""

SETTLEMENT_RECORD = "collab/settlement"
"""``tx/record`` kind: the final prices (the devices' signed ``price`` messages) and the publishers' signed final
orders; every validator re-derives the escrow splits from them."""

_KEY = Bytes(size=32)
_PRICES = List(Num(low=0), max_len=MAX_DEVICES)
ACK = Schema({"accepted": Bool(), "reason": Str(max_len=200)})

CALL = register(MSG_CALL, Schema({
    "devices": List(_KEY, min_len=1, max_len=MAX_DEVICES),
    "publishers": List(_KEY, min_len=1, max_len=MAX_PUBLISHERS),
    "offer_deadline_ms": Int(low=0),
    "expires": Int(low=0),
}))
OFFER = register(MSG_OFFER, Schema({
    "compute_capacity": Num(low=0),
    "compute_price": Num(low=0),
    "data_capacity": Num(low=0),
    "data_price": Num(low=0),
    "phi": Num(low=0),
    "theta": Num(low=0),
}))
register(MSG_OFFER_ACK, ACK)
_BOOK_FIELDS = {  # every device's offer, one list per offer field (a book and the declared round's final book)
    "iteration": Int(low=0),
    "compute_capacity": _PRICES,
    "data_capacity": _PRICES,
    "compute_price": _PRICES,
    "data_price": _PRICES,
    "phi": _PRICES,
    "theta": _PRICES,
}
BOOK = register(MSG_BOOK, Schema({**_BOOK_FIELDS, "order_deadline_ms": Int(low=0)}))
ORDER = register(MSG_ORDER, Schema({
    "iteration": Int(low=0),
    "feasible": Bool(),
    "compute": Num(low=0),
    "data": Num(low=0),
    "compute_purchases": _PRICES,
    "data_purchases": _PRICES,
    "payoff": Num(),
    "spent": Num(low=0),
    "escrow": Optional(Bytes(max_len=MAX_TX)),
}))
register(MSG_ORDER_ACK, ACK)
REGULATE = register(MSG_REGULATE, Schema({
    "iteration": Int(low=0),
    "compute_price": _PRICES,
    "data_price": _PRICES,
    "directions": List(Int(low=-1, high=1), max_len=2 * MAX_DEVICES),
    "gaps": List(Num(low=0), max_len=2 * MAX_DEVICES),
    "price_deadline_ms": Int(low=0),
}))
PRICE = register(MSG_PRICE, Schema({
    "iteration": Int(low=0),
    "compute_price": Num(low=0),
    "data_price": Num(low=0),
}))
register(MSG_PRICE_ACK, ACK)
FINAL = register(MSG_FINAL, Schema({
    "compute_left": _PRICES,
    "data_left": _PRICES,
    "compute_price": _PRICES,
    "data_price": _PRICES,
}))
FINAL_ORDER = register(MSG_FINAL_ORDER, ORDER)
DECLARE = register(MSG_DECLARE, Schema({
    "budget": Num(low=0),
    "deadline": Num(low=0),
    "own_data": Num(low=0),
    "multiplier": Num(low=0),
    "omega": Num(low=0, high=1),
    "escrow": Bytes(max_len=MAX_TX),
}))
register(MSG_DECLARE_ACK, ACK)
_PATH = List(Num(low=0), max_len=MAX_PATH)
_DIRS = List(Int(low=-1, high=1), max_len=MAX_PATH)
OUTCOME = register(MSG_OUTCOME, Schema({
    "iteration": Int(low=0),
    "compute_path": _PATH,
    "data_path": _PATH,
    "compute_directions": _DIRS,
    "data_directions": _DIRS,
}))
FINAL_BOOK = register(MSG_FINAL_BOOK, Schema({**_BOOK_FIELDS, "compute_left": _PRICES, "data_left": _PRICES}))
