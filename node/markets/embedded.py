"""Signed messages carried inside other messages or records (a bid inside an offer, answers inside a record):
open one and check its type and market, refusing with the protocol's own reason when it does not verify."""

from __future__ import annotations

from bazaar.protocol import Envelope, ProtocolError, open_envelope
from bazaar.protocol.messages import validate_basic

from .context import Refuse


def open_embedded(wire: bytes, network_id: str, market: str, *types: str) -> Envelope:
    """Open an embedded signed message of one of ``types`` of ``market``.

    Raises:
        Refuse: a protocol reason (bad signature, schema) or ``unexpected-type``.
    """
    try:
        env = open_envelope(wire, network_id)
        validate_basic(env)
    except ProtocolError as err:
        raise Refuse(err.reason, f"embedded {' or '.join(types)}: {err.detail}") from err
    if env.type not in types or env.market != market:
        raise Refuse("unexpected-type", f"expected a {' or '.join(types)}, got {env.type}")
    return env
