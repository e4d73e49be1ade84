"""Signed peer records in pubsub RPCs, checked once per record instead of once per RPC (docs/adr/0145).

py-libp2p 0.8.1 attaches the sender's signed peer record (a libp2p ``Envelope`` around its addresses) to every
pubsub RPC it writes, and the receiver parses it, verifies its Ed25519 signature and re-stores it in the
peerstore on every RPC it reads; the sender rebuilds the record's address set (``host.get_addrs()``) for every
RPC too. Profiled on the 9-process ai-bazaar network, the two took ≈ 9 % of the nodes' CPU, more than the
verification of our own signed envelopes.

The wrappers below keep the library's semantics and cache the work:

* **receive**: a record whose bytes equal the last record this process accepted *from the same peer* is
  accepted again without re-parsing or re-verifying it (the same bytes from the same sender verify the same;
  its peerstore entry is still there, with a 2-hour TTL refreshed at most once a minute). Any other bytes take
  the library's full path, so a changed, expired or forged record is checked exactly as before.
* **send**: the host's own record bytes are reused for ``RECORD_REFRESH_S`` before the library is asked again
  (it rebuilds the record when the host's listen addresses changed; ours do not change after start-up).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import libp2p.pubsub.gossipsub as _gossipsub_mod
import libp2p.pubsub.pubsub as _pubsub_mod

RECORD_REFRESH_S = 10.0
"""How long a host reuses its own record bytes before asking the library (which checks its addresses)."""
REVERIFY_S = 60.0
"""How long an accepted record is taken on trust before the library's path runs (and refreshes its TTL) again."""
PEERS_KEPT = 4096
"""Accepted records remembered (least recently used dropped first)."""

_MARK = "_bazaar_record_cache"


def _cached_consume(original: Callable[..., bool]) -> Callable[..., bool]:
    seen: OrderedDict[Any, tuple[bytes, float]] = OrderedDict()

    def consume(msg: Any, host: Any, peer_id: Any) -> bool:
        if not msg.HasField("senderRecord"):
            return True
        record = msg.senderRecord
        now = time.monotonic()
        hit = seen.get(peer_id)
        if hit is not None and hit[0] == record and now - hit[1] < REVERIFY_S:
            seen.move_to_end(peer_id)
            return True
        ok = bool(original(msg, host, peer_id))
        if ok:
            seen[peer_id] = (bytes(record), now)
            seen.move_to_end(peer_id)
            while len(seen) > PEERS_KEPT:
                seen.popitem(last=False)
        else:
            seen.pop(peer_id, None)
        return ok

    setattr(consume, _MARK, True)
    return consume


def _cached_record(original: Callable[..., tuple[bytes, bool]]) -> Callable[..., tuple[bytes, bool]]:
    mine: dict[int, tuple[Any, bytes, float]] = {}

    def record(host: Any) -> tuple[bytes, bool]:
        now = time.monotonic()
        hit = mine.get(id(host))
        if hit is not None and hit[0] is host and now - hit[2] < RECORD_REFRESH_S:
            return hit[1], False
        envelope, fresh = original(host)
        mine[id(host)] = (host, envelope, now)
        for key in [k for k, v in mine.items() if now - v[2] >= RECORD_REFRESH_S]:
            del mine[key]
        return envelope, fresh

    setattr(record, _MARK, True)
    return record


def cache_peer_records() -> None:
    """Install the caches in py-libp2p's pubsub and gossipsub modules (idempotent; process-wide; one cache of
    each kind shared by both modules, which import the library's functions by name)."""
    if getattr(_pubsub_mod.maybe_consume_signed_record, _MARK, False):
        return
    consume = _cached_consume(_pubsub_mod.maybe_consume_signed_record)
    send = _cached_record(_pubsub_mod.env_to_send_in_RPC)
    for mod in (_pubsub_mod, _gossipsub_mod):
        mod.maybe_consume_signed_record = consume  # type: ignore[attr-defined]
        mod.env_to_send_in_RPC = send  # type: ignore[attr-defined]
