"""Messages of market ``hierarchical`` (docs/models/hierarchical.md): the round call, miner bids, MESP bundle bids,
the CCSP's upper result and each MESP's lower result.

Flow of one round (docs/protocol.md §hierarchical): the leading CCSP gossips ``call``; each miner sends ``bid``
(its demand, bid, block size, reach and a signed escrow lock of its bid) point to point to the MESPs it can
reach and gets ``bid-ack``; each MESP sends ``bundle`` (its bundle bids, the miner bids it accepted, the escrow
lock of its largest bundle bid) to the CCSP; the CCSP sends ``upper`` (the MESPs' signed ``bundle`` envelopes
it cleared, the awarded bundles and payments) point to point to each MESP it cleared, and each answers with its
signed ``lower`` (the miners it serves and their payments; docs/adr/0177); the CCSP submits the settlement, which
carries the offers and the lower results for every node to re-check.
"""

from __future__ import annotations

from ..chainmsg import MAX_TX
from ..messages import register
from ..schema import Bool, Bytes, Int, List, Map, Num, Optional, Schema, Str

MARKET = "hierarchical"
MAX_MINERS = 512
MAX_MESPS = 64
MAX_BUNDLES = 1024
MAX_BID_WIRE = 2 * MAX_TX
MAX_BUNDLE_WIRE = 64 << 10

MSG_CALL = "hierarchical/call"
MSG_BID = "hierarchical/bid"
MSG_BID_ACK = "hierarchical/bid-ack"
MSG_BUNDLE = "hierarchical/bundle"
MSG_BUNDLE_ACK = "hierarchical/bundle-ack"
MSG_UPPER = "hierarchical/upper"
MSG_LOWER = "hierarchical/lower"

SETTLEMENT_RECORD = "hierarchical/settlement"
"""Kind of the ``tx/record`` that carries a settled round (its book and outcome) on chain."""

_KEY = Bytes(size=32)

CALL = register(MSG_CALL, Schema({
    "params": Str(max_len=64),
    "miners": List(_KEY, min_len=1, max_len=MAX_MINERS),
    "mesps": List(_KEY, min_len=1, max_len=MAX_MESPS),
    "bid_deadline_ms": Int(low=0),
    "bundle_deadline_ms": Int(low=0),
    "lower_deadline_ms": Int(low=0),
    "expires": Int(low=0),
}))
BID = register(MSG_BID, Schema({
    "demand": Num(low=0, open_low=True),
    "bid": Num(low=0),
    "block_size": Num(low=0, open_low=True),
    "reach": List(Int(low=0, high=MAX_MESPS - 1), min_len=1, max_len=MAX_MESPS),
    "escrow": Bytes(max_len=MAX_TX),
}))
ACK = Schema({"accepted": Bool(), "reason": Str(max_len=200)})
register(MSG_BID_ACK, ACK)
register(MSG_BUNDLE_ACK, ACK)
BUNDLE = register(MSG_BUNDLE, Schema({
    "values": List(Num(), max_len=MAX_BUNDLES),
    "bids": List(Bytes(max_len=MAX_BID_WIRE), max_len=MAX_MINERS),
    "escrow": Optional(Bytes(max_len=MAX_TX)),
}))
UPPER = register(MSG_UPPER, Schema({
    "offers": List(Bytes(max_len=MAX_BUNDLE_WIRE), max_len=MAX_MESPS),
    "bundles": List(Num(low=0), max_len=MAX_MESPS),
    "ccsp_of": List(Int(low=-1, high=MAX_MESPS), max_len=MAX_MESPS),
    "payments": List(Num(low=0), max_len=MAX_MESPS),
    "upper_welfare": Num(),
    "upper_bound": Optional(Num()),
}))
LOWER = register(MSG_LOWER, Schema({
    "served": Map(_KEY, Num(low=0), max_len=MAX_MINERS),
    "surplus": Num(),
}))
