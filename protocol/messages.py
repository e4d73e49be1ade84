"""Registry of message types and their body schemas; ``validate_basic`` (STYLE §5, stateless validation).

The module that defines a message type registers it at import time::

    from bazaar.protocol.messages import register
    from bazaar.protocol.schema import Num, Schema

    PRICE = register("ai-bazaar/price", Schema({"price": Num(low=0)}))

A receiver calls :func:`validate_basic` on every opened envelope before any stateful check (nonce, balance,
round phase). Registering the same type twice with an equal schema is a no-op (modules may be re-imported);
with a different schema it is an error, so two modules can never silently disagree on a wire format.
"""

from __future__ import annotations

import re

from .envelope import Envelope
from .errors import ProtocolReason, SchemaError
from .schema import Schema

TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)+$")
"""Type names are ``<namespace>/<name>`` in lower case, e.g. ``ai-bazaar/price`` or ``tx/transfer``."""


class Registry:
    """A set of message types and their body schemas."""

    def __init__(self) -> None:
        self._schemas: dict[str, Schema] = {}

    def register(self, type: str, schema: Schema) -> Schema:
        """Register ``type`` with ``schema``; returns ``schema`` for convenient module constants.

        Raises:
            ValueError: bad type name, or ``type`` already registered with a different schema.
            TypeError: ``schema`` is not a :class:`Schema`.
        """
        if not isinstance(schema, Schema):
            raise TypeError(f"schema for {type!r} must be a Schema, got {schema.__class__.__name__}")
        if not TYPE_PATTERN.match(type) or len(type) > 64:
            raise ValueError(f"bad message type name {type!r} (want 'namespace/name', lower case, <= 64)")
        existing = self._schemas.get(type)
        if existing is not None and existing != schema:
            raise ValueError(f"message type {type!r} already registered with a different schema")
        self._schemas[type] = schema
        return schema

    def schema(self, type: str) -> Schema:
        """The schema of ``type``.

        Raises:
            SchemaError: ``type`` is not registered (reason ``unknown-type``).
        """
        try:
            return self._schemas[type]
        except KeyError:
            raise SchemaError(f"unknown message type {type[:64]!r}", reason=ProtocolReason.UNKNOWN_TYPE) from None

    def validate_basic(self, env: Envelope) -> None:
        """Stateless check of an opened envelope's body against its type's schema.

        Raises:
            SchemaError: unknown type (reason ``unknown-type``) or a body that does not match (``schema``).
        """
        self.schema(env.type).check(env.body, "body")

    def registered_types(self) -> list[str]:
        """All registered type names, sorted."""
        return sorted(self._schemas)


REGISTRY = Registry()
"""The process-wide registry that market and ledger modules register into at import."""


def register(type: str, schema: Schema) -> Schema:
    """Register ``type`` in :data:`REGISTRY` (see :meth:`Registry.register`)."""
    return REGISTRY.register(type, schema)


def validate_basic(env: Envelope) -> None:
    """Validate ``env`` against :data:`REGISTRY` (see :meth:`Registry.validate_basic`)."""
    REGISTRY.validate_basic(env)


def registered_types() -> list[str]:
    """Sorted names of every type registered in :data:`REGISTRY`."""
    return REGISTRY.registered_types()
