"""Structured event logs: one line per event, key=value text or JSON (``--log-json``).

Nothing is configured at import; :func:`configure` is called once by the node's entry point.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

_LOGGER = "bazaar"


class _EventFormatter(logging.Formatter):
    def __init__(self, as_json: bool, node: str) -> None:
        super().__init__()
        self.as_json = as_json
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        if self.as_json:
            doc = {"ts": round(record.created, 3), "level": record.levelname.lower(), "node": self.node,
                   "event": record.getMessage(), **fields}
            return json.dumps(doc, default=_plain, separators=(",", ":"))
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        kv = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        return f"{stamp} {record.levelname[0]} {self.node} {record.getMessage()} {kv}".rstrip()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()[:16]
    if isinstance(value, float):
        return round(value, 6)
    return value if isinstance(value, (int, str, bool, type(None))) else str(value)


def configure(node: str, *, as_json: bool = False, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Route Bazaar's events to ``stream`` (stderr by default), one line each."""
    logger = logging.getLogger(_LOGGER)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_EventFormatter(as_json, node))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class Events:
    """A named emitter: ``events.info("block.imported", height=3)``."""

    def __init__(self, component: str) -> None:
        self._log = logging.getLogger(f"{_LOGGER}.{component}")

    def info(self, event: str, **fields: Any) -> None:
        """Log a routine event."""
        self._log.info(event, extra={"fields": fields})

    def warning(self, event: str, **fields: Any) -> None:
        """Log something a peer did wrong or a missed deadline."""
        self._log.warning(event, extra={"fields": fields})

    def error(self, event: str, **fields: Any) -> None:
        """Log a failure of our own."""
        self._log.error(event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        """Log detail."""
        self._log.debug(event, extra={"fields": fields})
