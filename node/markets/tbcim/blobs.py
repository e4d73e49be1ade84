"""Content-addressed weights (global models and ED updates) kept in memory and served to peers by hash over
:data:`~bazaar.protocol.markets.tbcim.BLOB_PROTOCOL`; only hashes and sizes go on chain.

Two requests on the stream: ``{hash}`` -> ``{data}`` (a fetch) and ``{put: [data, ...], note?}`` ->
``{held, accepted, reason}`` (a push of weights the receiver will need, from a roster peer that hands them out,
with an optional signed message they come with: an ES's verdicts to the requester with its updates' weights; the
requester's push of an epoch's update weights to the edge servers before its block; docs/adr/0162)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from bazaar.protocol import ProtocolError, codec
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.markets import tbcim as msg
from bazaar.protocol.transport import RejectRequest

from ...reasons import NodeReason
from ..context import Refuse, RequestFailed, RoleContext

KEEP = 512
"""Blobs kept in memory (least recently used go first; a node fetches again what it lost)."""
MAX_PUT = 64
"""Most blobs in one push (which is at most ``MAX_BLOB`` bytes in all)."""


async def _no_note(peer: bytes, note: bytes, blobs: list[bytes]) -> dict[str, Any]:
    raise Refuse("unexpected-type", "this node takes no message with pushed weights")


Note = Callable[[bytes, bytes, list[bytes]], Awaitable[dict[str, Any]]]
"""A role's handler of a signed note pushed with weights: ``(peer, note, blobs) -> answer fields`` (raises
``Refuse``); it keeps the blobs the note vouches for."""


def to_bytes(w: np.ndarray) -> bytes:
    """Canonical bytes (little-endian float64)."""
    return np.ascontiguousarray(w, dtype="<f8").tobytes()


def blob_hash(w: np.ndarray) -> bytes:
    """SHA-256 of the canonical bytes."""
    return hashlib.sha256(to_bytes(w)).digest()


class BlobStore:
    """Weights by hash, served to peers and fetched from them (verified against the hash)."""

    def __init__(self, ctx: RoleContext, pushers: Callable[[], Sequence[bytes]] = tuple,
                 on_note: Note | None = None) -> None:
        self.ctx = ctx
        self._blobs: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._pushers = pushers
        self._on_note = on_note or _no_note
        self.fetched = 0
        self.bytes_in = 0
        """Bytes of weights taken from peers: fetched, pushed to us, or carried by a message."""
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
        """``{hash}`` -> ``{data}``; ``{put: [data, ...]}`` -> ``{held}`` from a peer allowed to push;
        ``{put, note}`` -> ``{accepted, reason, ...}``: the role's ``on_note`` checks the signed note and keeps the
        weights it vouches for."""
        try:
            req = codec.decode(request, max_size=msg.MAX_BLOB + 64 * MAX_PUT + msg.MAX_VERDICT_WIRE)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if isinstance(req, dict) and "put" in req and set(req) <= {"put", "note"}:
            blobs = req["put"]
            if not isinstance(blobs, list) or len(blobs) > MAX_PUT or \
                    not all(isinstance(b, bytes) and 0 < len(b) <= msg.MAX_BLOB and len(b) % 8 == 0 for b in blobs):
                raise RejectRequest(ProtocolReason.MALFORMED)
            if "note" not in req:
                return codec.encode({"held": self.take(peer, blobs)})
            if not isinstance(req["note"], bytes) or len(req["note"]) > msg.MAX_VERDICT_WIRE:
                raise RejectRequest(ProtocolReason.MALFORMED)
            try:
                answer = {"accepted": True, "reason": "", **await self._on_note(peer, req["note"], blobs)}
            except Refuse as err:
                answer = {"accepted": False, "reason": err.reason}
            return codec.encode(answer)
        if not isinstance(req, dict) or set(req) != {"hash"} or not isinstance(req["hash"], bytes) \
                or len(req["hash"]) != 32:
            raise RejectRequest(ProtocolReason.MALFORMED)  # want {hash: 32 bytes}
        w = self.get(req["hash"])
        if w is None:
            raise RejectRequest(NodeReason.UNKNOWN_CONTENT)
        return codec.encode({"data": to_bytes(w)})

    def take(self, peer: bytes, blobs: list[bytes]) -> int:
        """Keep the blobs a trusted peer pushed (each under its own hash); returns how many.

        Raises:
            RejectRequest: the peer may not push, or a blob holds non-finite values.
        """
        if peer not in self._pushers():
            raise RejectRequest(NodeReason.NOT_AUTHORISED)  # only the roster peers that hand out weights push
        arrays = [np.frombuffer(data, dtype="<f8").astype(np.float64) for data in blobs]
        if not all(np.all(np.isfinite(arr)) for arr in arrays):
            raise RejectRequest(ProtocolReason.MALFORMED)
        for arr in arrays:
            self.put(arr)
        self.bytes_in += sum(map(len, blobs))
        return len(arrays)

    async def push(self, peer: bytes, hashes: Sequence[bytes], *, timeout: float,
                   note: bytes | None = None) -> dict[str, Any]:
        """Hand ``peer`` the held blobs of ``hashes`` in one request, with a signed ``note`` for its role (blobs
        too many or too large for one request are left for the peer to fetch); returns the answer (with a note:
        ``accepted``, ``reason`` and the role's fields).

        Raises:
            RequestFailed: no answer, or a malformed one.
        """
        data = [to_bytes(w) for w in (self.get(h) for h in dict.fromkeys(hashes)) if w is not None]
        if len(data) > MAX_PUT or sum(map(len, data)) > msg.MAX_BLOB:
            data = []
        if not data and note is None:
            return {"held": 0}
        req: dict[str, Any] = {"put": data} if note is None else {"put": data, "note": note}
        raw = await self.ctx.request_raw(peer, msg.BLOB_PROTOCOL, codec.encode(req), timeout=timeout)
        try:
            answer = codec.decode(raw, max_size=1024)
        except Exception as err:
            raise RequestFailed("bad-answer", str(err)[:200]) from err
        if not isinstance(answer, dict) or (note is not None and not isinstance(answer.get("accepted"), bool)):
            raise RequestFailed("bad-answer", "not a push answer")
        return answer

    def take_inline(self, h: bytes, data: bytes, *, size: int | None) -> bool:
        """Keep weights a signed message carried, if they are ``size`` finite values with hash ``h``."""
        if self.get(h) is not None:
            return True
        if (size is not None and len(data) != 8 * size) or len(data) % 8 or hashlib.sha256(data).digest() != h:
            return False
        arr = np.frombuffer(data, dtype="<f8").astype(np.float64)
        if not np.all(np.isfinite(arr)):
            return False
        self.put(arr)
        self.bytes_in += len(data)
        return True

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
            self.bytes_in += len(data)
            self.put(arr)
            return arr
        raise last
