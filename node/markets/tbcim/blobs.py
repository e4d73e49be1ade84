"""Content-addressed weights (global models and ED updates) kept in memory and served to peers by hash over
:data:`~bazaar.protocol.markets.tbcim.BLOB_PROTOCOL`; only hashes and sizes go on chain."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from bazaar.protocol import ProtocolError, codec
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.markets import tbcim as msg
from bazaar.protocol.transport import RejectRequest

from ...reasons import NodeReason
from ..context import RequestFailed, RoleContext

KEEP = 512
"""Blobs kept in memory (least recently used go first; a node fetches again what it lost)."""


def to_bytes(w: np.ndarray) -> bytes:
    """Canonical bytes (little-endian float64)."""
    return np.ascontiguousarray(w, dtype="<f8").tobytes()


def blob_hash(w: np.ndarray) -> bytes:
    """SHA-256 of the canonical bytes."""
    return hashlib.sha256(to_bytes(w)).digest()


class BlobStore:
    """Weights by hash, served to peers and fetched from them (verified against the hash)."""

    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self._blobs: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.fetched = 0
        self.fetched_bytes = 0
        ctx.set_protocol(msg.BLOB_PROTOCOL, self.serve)

    def put(self, w: np.ndarray) -> bytes:
        """Keep ``w``; returns its hash."""
        arr = np.array(w, dtype=np.float64)
        h = blob_hash(arr)
        self._blobs[h] = arr
        self._blobs.move_to_end(h)
        while len(self._blobs) > KEEP:
            self._blobs.popitem(last=False)
        return h

    def get(self, h: bytes) -> np.ndarray | None:
        """The weights with hash ``h`` if held."""
        w = self._blobs.get(h)
        if w is not None:
            self._blobs.move_to_end(h)
        return w

    def need(self, h: bytes) -> np.ndarray:
        """The weights with hash ``h``; ``KeyError`` when not held."""
        w = self.get(h)
        if w is None:
            raise KeyError(h)
        return w

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        """``{hash}`` -> ``{data}``."""
        try:
            req = codec.decode(request, max_size=256)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if not isinstance(req, dict) or set(req) != {"hash"} or not isinstance(req["hash"], bytes) \
                or len(req["hash"]) != 32:
            raise RejectRequest(ProtocolReason.MALFORMED)  # want {hash: 32 bytes}
        w = self.get(req["hash"])
        if w is None:
            raise RejectRequest(NodeReason.UNKNOWN_CONTENT)
        return codec.encode({"data": to_bytes(w)})

    async def fetch(self, h: bytes, holders: Sequence[bytes], *, size: int | None, timeout: float) -> np.ndarray:
        """The weights with hash ``h``: held, or from the first holder that has them (checked against ``h`` and
        ``size``).

        Raises:
            RequestFailed: no holder answered with the right bytes.
        """
        w = self.get(h)
        if w is not None:
            return w
        last = RequestFailed("unavailable", "no holder to ask")
        for peer in holders:
            if peer == self.ctx.key.public:
                continue
            try:
                raw = await self.ctx.request_raw(peer, msg.BLOB_PROTOCOL, codec.encode({"hash": h}), timeout=timeout)
                answer = codec.decode(raw, max_size=msg.MAX_BLOB + 64)
            except RequestFailed as err:
                last = err
                continue
            except Exception as err:  # a malformed answer: try the next holder
                last = RequestFailed("bad-answer", str(err)[:200])
                continue
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, bytes) or hashlib.sha256(data).digest() != h or len(data) % 8 \
                    or (size is not None and len(data) != 8 * size):
                last = RequestFailed("bad-answer", "blob does not match its hash or size")
                continue
            arr = np.frombuffer(data, dtype="<f8").astype(np.float64)
            if not np.all(np.isfinite(arr)):
                last = RequestFailed("bad-answer", "blob holds non-finite values")
                continue
            self.fetched += 1
            self.fetched_bytes += len(data)
            self.put(arr)
            return arr
        raise last
