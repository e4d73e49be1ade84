"""Market-independent messages: blocks, attestations, certificates, transaction batches, sync, models.

Gossip topic ``bazaar/<network>/chain`` carries the first four; the direct protocols serve chain sync and
content-addressed model weights. Formats: docs/protocol.md.
"""

from __future__ import annotations

from .messages import register
from .schema import Bool, Bytes, Int, List, Optional, Schema

MAX_BLOCK = 4 << 20
MAX_TX = 96 << 10

MSG_BLOCK = "chain/block"
MSG_ATTEST = "chain/attest"
MSG_CERT = "chain/cert"
MSG_TXS = "chain/txs"

PROTO_SYNC = "/bazaar/sync/1"
PROTO_MODEL = "/bazaar/model/1"
PROTO_TXS = "/bazaar/txs/1"
"""A sealed ``chain/txs`` batch sent straight to the next block's drawn proposer as well as gossiped
(docs/adr/0159)."""
PROTO_ATTEST = "/bazaar/attest/1"
"""A validator's attestation sent straight to the block's proposer (large networks, docs/adr/0148)."""
PROTO_CERT = "/bazaar/cert/1"
"""The aggregator's certificate pushed to each peer when votes come to it directly (docs/adr/0181): the raw
certificate (≤ ``MAX_CERT`` bytes), answered with an empty body."""
PROTO_BLOCK = "/bazaar/block/1"
"""A new block pushed by its proposer to each peer (docs/adr/0192): the encoded block (≤ ``MAX_BLOCK`` bytes,
self-authenticating by its proposer's signature), answered with an empty body once the peer has offered it to
its chain."""
MAX_CERT = 64 << 10
"""Longest encoded certificate a node reads (the ``chain/cert`` schema's bound)."""


def chain_topic(network_id: str) -> str:
    """The gossip topic for blocks, attestations, certificates and transactions."""
    return f"bazaar/{network_id}/chain"


def market_topic(network_id: str, market: str, audience: tuple[str, ...] = ()) -> str:
    """The gossip topic of one market's announcements; with ``audience``, the topic of its messages that only
    those roles subscribe to (``bazaar/<network>/market/<market>/<role>+<role>``, docs/adr/0188)."""
    base = f"bazaar/{network_id}/market/{market}"
    return f"{base}/{'+'.join(sorted(audience))}" if audience else base


def market_protocol(market: str) -> str:
    """The direct-stream protocol of one market's point-to-point exchanges (bids, demands)."""
    return f"/bazaar/{market}/1"


register(MSG_BLOCK, Schema({"block": Bytes(max_len=MAX_BLOCK)}))
register(MSG_ATTEST, Schema({"height": Int(low=1), "hash": Bytes(size=32), "sig": Bytes(size=96)}))
register(MSG_CERT, Schema({"cert": Bytes(max_len=MAX_CERT)}))
register(MSG_TXS, Schema({"txs": List(Bytes(max_len=MAX_TX), max_len=256, min_len=1), "seal": Optional(Bool()),
                          "fwd": Optional(Bool())}))
"""``seal``: the sender's batch is complete (its last message): a ``pos``/``lottery`` proposer seals its block at
once instead of waiting for a quiet mempool (docs/adr/0155). ``fwd``: a sealed batch on ``/bazaar/txs/1`` that a
node drawn too late passed on to the node drawn after it; not passed on again (docs/adr/0195)."""
