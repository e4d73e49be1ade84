"""Offline chain tools for a node's data directory: ``bazaar chain verify|show|export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bazaar.ledger.chain import Chain
from bazaar.ledger.errors import LedgerError
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import SqliteStore

from .params import ParamError


def _genesis(data_dir: Path) -> Genesis:
    path = data_dir / "genesis.json"
    if not path.is_file():
        raise ParamError("--data-dir", f"{data_dir} holds no genesis.json (is it a node's data directory?)")
    try:
        return Genesis.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise ParamError("--data-dir", f"{path} is not a valid genesis: {err}") from err


def _store(data_dir: Path) -> SqliteStore:
    path = data_dir / "chain.sqlite"
    if not path.is_file():
        raise ParamError("--data-dir", f"{data_dir} holds no chain.sqlite")
    return SqliteStore(path)


def verify_data_dir(data_dir: Path) -> dict[str, Any]:
    """Re-check every hash, signature, state root and certificate from genesis.

    Returns:
        ``{"ok", "height", "finalized", "error"}``; ``ok`` is False with the failing height in ``error``.
    """
    genesis = _genesis(data_dir)
    store = _store(data_dir)
    try:
        chain = Chain(store, genesis)
        return {"ok": True, "height": chain.height, "finalized": chain.finalized_height,
                "conserved": chain.state.conserved(), "error": None}
    except LedgerError as err:
        return {"ok": False, "height": None, "finalized": None, "error": f"{type(err).__name__}: {err}"}
    finally:
        store.close()


def export_data_dir(data_dir: Path) -> dict[str, Any]:
    """The finalized chain and its state as JSON-able data (see ``Chain.export``)."""
    store = _store(data_dir)
    try:
        return dict(Chain(store, _genesis(data_dir)).export())
    finally:
        store.close()
