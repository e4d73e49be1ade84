"""The error vocabulary of the wire layer.

Every failure caused by bytes a peer sent is a :class:`ProtocolError` with a short machine-readable
``reason`` (logged, counted, and documented in docs/protocol.md). Nothing here is raised for our own bugs.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A message or frame from a peer is unacceptable.

    Attributes:
        reason: stable short code, e.g. ``"bad-signature"``; part of the documented contract.
        detail: human-readable detail for logs.
    """

    reason = "protocol-error"

    def __init__(self, detail: str = "", *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class DecodeError(ProtocolError):
    """Bytes are not canonical msgpack within our limits."""

    reason = "malformed"


class OversizeError(ProtocolError):
    """A frame or field is larger than the configured cap."""

    reason = "oversize"


class SignatureError(ProtocolError):
    """The signature does not verify against the sender's key."""

    reason = "bad-signature"


class SchemaError(ProtocolError):
    """A field is missing, of the wrong type, or out of range (``validate_basic``)."""

    reason = "schema"


class ReplayError(ProtocolError):
    """The ``(sender, seq)`` pair was already seen, or is stale."""

    reason = "replay"


class StaleError(ProtocolError):
    """Timestamp outside the allowed clock skew, or a round that is not current."""

    reason = "stale"
