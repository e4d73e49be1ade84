"""Offline chain tools for a node's data directory: ``bazaar chain verify|show|export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bazaar.ledger.chain import Chain
from bazaar.ledger.chain import verify_data_dir as _verify
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import CHAIN_DB, SqliteStore

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
    if not (data_dir / CHAIN_DB).is_file():
        raise ParamError("--data-dir", f"{data_dir} holds no {CHAIN_DB} (is it a node's data directory?)")
    return SqliteStore.in_dir(data_dir)


def verify_data_dir(data_dir: Path) -> dict[str, Any]:
    """Re-check every hash, signature, state root and certificate from genesis (``bazaar chain verify``).

    Returns:
        The ledger's report: ``ok`` is False with the first bad ``height`` and the ``error`` otherwise.
    """
    _store(data_dir).close()
    return _verify(data_dir)


def export_data_dir(data_dir: Path) -> dict[str, Any]:
    """The finalized chain and its state as JSON-able data (see ``Chain.export``)."""
    store = _store(data_dir)
    try:
        return dict(Chain(store, _genesis(data_dir)).export())
    finally:
        store.close()
