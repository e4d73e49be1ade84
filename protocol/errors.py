"""The error vocabulary of the wire layer.

Every failure caused by bytes a peer sent is a :class:`ProtocolError` with a short machine-readable
``reason`` (logged, counted, and documented in docs/protocol.md). Nothing here is raised for our own bugs.
"""

from __future__ import annotations

from enum import StrEnum


class BazaarError(Exception):
    """Base of every error with a stable ``reason`` code (protocol, ledger, node refusals).

    Attributes:
        reason: stable short code, part of the documented contract (docs/protocol.md §5).
        detail: human-readable detail for logs.
    """

    reason: str = "error"
    """The default code of the class; an instance's code is set by the constructor."""

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class ProtocolReason(StrEnum):
    """Why the wire layer refuses a peer's bytes (docs/protocol.md §5)."""

    PROTOCOL_ERROR = "protocol-error"
    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    BAD_SIGNATURE = "bad-signature"
    SCHEMA = "schema"
    UNKNOWN_TYPE = "unknown-type"
    REPLAY = "replay"
    STALE = "stale"
    NOT_SUBSCRIBED = "not-subscribed"


class ProtocolError(BazaarError):
    """A message or frame from a peer is unacceptable.

    Attributes:
        reason: stable short code, e.g. ``"bad-signature"``; part of the documented contract.
        detail: human-readable detail for logs.
    """

    reason = ProtocolReason.PROTOCOL_ERROR

    def __init__(self, detail: str = "", *, reason: str | None = None) -> None:
        super().__init__(reason, detail)


class DecodeError(ProtocolError):
    """Bytes are not canonical msgpack within our limits."""

    reason = ProtocolReason.MALFORMED


class OversizeError(ProtocolError):
    """A frame or field is larger than the configured cap."""

    reason = ProtocolReason.OVERSIZE


class SignatureError(ProtocolError):
    """The signature does not verify against the sender's key."""

    reason = ProtocolReason.BAD_SIGNATURE


class SchemaError(ProtocolError):
    """A field is missing, of the wrong type, or out of range (``validate_basic``)."""

    reason = ProtocolReason.SCHEMA


class ReplayError(ProtocolError):
    """The ``(sender, seq)`` pair was already seen, or is stale."""

    reason = ProtocolReason.REPLAY


class StaleError(ProtocolError):
    """Timestamp outside the allowed clock skew, or a round that is not current."""

    reason = ProtocolReason.STALE
