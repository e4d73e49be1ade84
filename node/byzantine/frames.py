"""``malformed-frames`` and ``oversize-frames``: garbage and over-limit frames over gossip and direct streams.

Every ``PERIOD_S`` the node publishes on the chain and market topics and sends to every peer on the market's
request protocol and the sync protocol:

* malformed: random bytes, a valid envelope of ours cut short, and one with a flipped signature byte — honest
  routers refuse them as ``malformed`` or ``bad-signature``;
* oversize: a direct request past the envelope cap (``codec.MAX_MESSAGE``; the transport carries frames up to
  ``MAX_FRAME``), refused as ``oversize``, and on gossip a signed ``chain/txs`` envelope carrying more entries
  than its schema allows, refused as ``schema``. (A gossip frame past ``MAX_GOSSIP`` never leaves our own
  transport; the router refuses one from other software as ``oversize``.)

The answers (refusals, resets) are ignored; the node itself keeps its honest behaviour otherwise.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import trio

from bazaar.protocol import codec
from bazaar.protocol.chainmsg import MSG_TXS, PROTO_SYNC, market_protocol
from bazaar.protocol.transport import TransportError

from ..logs import Events

if TYPE_CHECKING:
    from ..runtime import Node

PERIOD_S = 0.5
"""Pause between two volleys."""
OVERSIZE_EVERY = 4
"""Volleys between two oversize direct requests (8 MiB each to every peer: bounded work for both sides)."""
REQUEST_TIMEOUT_S = 2.0
OVER_CAP_ENTRIES = 300
"""Entries of an over-cap ``chain/txs`` batch (its schema takes at most 256)."""
_events = Events("byzantine")


def malformed(node: Node) -> list[bytes]:
    """Three kinds of garbage: random bytes, a truncated envelope, an envelope with a broken signature."""
    valid = node.seal(MSG_TXS, {"txs": [os.urandom(32)]}).wire
    broken = bytearray(valid)
    broken[-1] ^= 0xFF
    return [os.urandom(1 + int.from_bytes(os.urandom(2), "big") % 2048), valid[: len(valid) // 2], bytes(broken)]


def oversize_request() -> bytes:
    """A direct-request frame just past the envelope cap (the transport's own frame cap is higher)."""
    return b"\x00" * (codec.MAX_MESSAGE + 1024)


def over_cap_gossip(node: Node) -> bytes:
    """A signed ``chain/txs`` envelope with more entries than its schema allows (within ``MAX_GOSSIP``)."""
    return node.seal(MSG_TXS, {"txs": [b"\x01" * 16] * OVER_CAP_ENTRIES}).wire


async def _request(node: Node, peer: bytes, protocol: str, data: bytes) -> None:
    with contextlib.suppress(TransportError, trio.TooSlowError, ValueError):  # refused, reset, slow: expected
        await node.transport.request(peer, protocol, data, timeout=REQUEST_TIMEOUT_S)


async def send_frames(node: Node, *, garbage: bool, oversize: bool) -> None:
    """Send volleys for the node's lifetime (``garbage``: malformed frames; ``oversize``: over-limit ones)."""
    topics = node.topics
    protocols = [market_protocol(node.market), PROTO_SYNC]
    volleys = 0
    while True:
        await trio.sleep(PERIOD_S)
        gossip: list[bytes] = []
        direct: list[bytes] = []
        if garbage:
            frames = malformed(node)
            gossip += frames
            direct += frames
        big: list[bytes] = []
        if oversize:
            gossip.append(over_cap_gossip(node))
            if volleys % OVERSIZE_EVERY == 0:
                big.append(oversize_request())
        for topic in topics:
            for data in gossip:
                await node.transport.publish(topic, data)
        async with trio.open_nursery() as nursery:
            for peer in node.transport.peers():
                for protocol in protocols:
                    for data in direct:
                        nursery.start_soon(_request, node, peer, protocol, data)
                for data in big:  # the market's request protocol checks the envelope cap (sync reads 1 KiB)
                    nursery.start_soon(_request, node, peer, protocols[0], data)
        volleys += 1
        if volleys % 20 == 1:
            _events.info("byzantine.frames_sent", volleys=volleys, garbage=garbage, oversize=oversize)
