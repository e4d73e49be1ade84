"""Signed messages embedded in other messages, checked once per process (docs/adr/0177).

A market's signed message often travels inside others: a hierarchical miner's bid reaches a MESP, is forwarded
inside that MESP's offer (and inside the other MESP's), the offers inside the CCSP's settlement record, and the
record inside a block that every node imports. Each of those steps opens the embedded envelopes again; the
Ed25519 check dominates. :func:`open_checked` remembers, per process, the bytes that passed
:func:`~.envelope.open_envelope` and :func:`~.messages.validate_basic` under a network id — keyed by
``sha256(network_id ‖ 0x00 ‖ bytes)``, as the verified-transaction cache of ``ledger/txs.py`` (ADR 0125, 0171)
— and later opens of the same bytes under the same network only decode them again (:func:`reopen_envelope`:
size cap, outer map, canonical payload, header checks). Failures are not remembered; every call returns a fresh
envelope.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from . import codec
from .envelope import Envelope, open_envelope, reopen_envelope
from .messages import validate_basic

CHECKED_CACHE = 8_192
"""Embedded envelopes whose checks are remembered (32-byte digests: well under 1 MB)."""

_CHECKED: OrderedDict[bytes, None] = OrderedDict()
_LOCK = threading.Lock()  # solvers run in worker threads (RoleContext.compute) and may open envelopes too


def checked_key(data: bytes, network_id: str) -> bytes:
    """The cache key of ``data`` opened under ``network_id``: a digest no other bytes or network share."""
    return hashlib.sha256(network_id.encode() + b"\x00" + data).digest()


def open_checked(data: bytes, network_id: str, *, max_size: int = codec.MAX_MESSAGE) -> Envelope:
    """:func:`open_envelope` then :func:`validate_basic`, with the Ed25519 and schema checks skipped for bytes
    that passed both before in this process under the same network id.

    Raises:
        ProtocolError: as :func:`open_envelope` and :func:`validate_basic` (a failure is never remembered).
    """
    key = checked_key(data, network_id)
    with _LOCK:
        hit = key in _CHECKED
        if hit:
            _CHECKED.move_to_end(key)
    if hit:
        return reopen_envelope(data, network_id, max_size=max_size)
    env = open_envelope(data, network_id, max_size=max_size)
    validate_basic(env)
    with _LOCK:
        _CHECKED[key] = None
        while len(_CHECKED) > CHECKED_CACHE:
            _CHECKED.popitem(last=False)
    return env


def forget_checked() -> None:
    """Empty the cache (tests and benchmarks that want a cold process)."""
    with _LOCK:
        _CHECKED.clear()
