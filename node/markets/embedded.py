"""Signed messages carried inside other messages or records (a bid inside an offer, answers inside a record):
open one and check its type and market, refusing with the protocol's own reason when it does not verify."""

from __future__ import annotations

from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.verified import open_checked

from .context import Refuse


def open_embedded(wire: bytes, network_id: str, market: str, *types: str) -> Envelope:
    """Open an embedded signed message of one of ``types`` of ``market`` (its signature and schema checked once
    per process for the same bytes and network: :func:`~bazaar.protocol.verified.open_checked`).

    Raises:
        Refuse: a protocol reason (bad signature, schema) or ``unexpected-type``.
    """
    try:
        env = open_checked(wire, network_id)
    except ProtocolError as err:
        raise Refuse(err.reason, f"embedded {' or '.join(types)}: {err.detail}") from err
    if env.type not in types or env.market != market:
        raise Refuse("unexpected-type", f"expected a {' or '.join(types)}, got {env.type}")
    return env
