"""Offline chain tools for a node's data directory: ``bazaar chain verify|audit|show|export``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bazaar.ledger.chain import Chain
from bazaar.ledger.chain import verify_data_dir as _verify
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import CHAIN_DB, SqliteStore

from .params import ParamError

FINALIZED_FILE = "finalized.json"
"""The node's durable note of its finalized height, beside the chain database."""


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


def record_finalized(data_dir: Path, height: int, block_hash: bytes) -> None:
    """Durably note that block ``height`` is final (``finalized.json``, written atomically and fsynced, kept
    apart from the database so a damaged database or write-ahead log cannot take the note with it); a lower
    height than the one noted is ignored."""
    if height <= (recorded_finalized(data_dir) or 0):
        return
    path = data_dir / FINALIZED_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"height": height, "hash": block_hash.hex()}))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recorded_finalized(data_dir: Path) -> int | None:
    """The finalized height noted by :func:`record_finalized`, or None when there is no (readable) note."""
    try:
        height = json.loads((data_dir / FINALIZED_FILE).read_text())["height"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return height if isinstance(height, int) else None


def verify_data_dir(data_dir: Path) -> dict[str, Any]:
    """Re-check every hash, signature, state root and certificate from genesis (``bazaar chain verify``), and
    that no block the node had recorded as final is missing (a regression: e.g. a truncated write-ahead log).

    Returns:
        The ledger's report: ``ok`` is False with the first bad ``height`` and the ``error`` otherwise;
        ``recorded_finalized`` is the height the node noted as final.
    """
    _store(data_dir).close()
    report = dict(_verify(data_dir))
    recorded = recorded_finalized(data_dir)
    if recorded is not None:
        report["recorded_finalized"] = recorded
        held = report.get("finalized_height")
        if report["ok"] and isinstance(held, int) and held < recorded:
            report.update(ok=False, height=held + 1, error=f"finalized height regressed: the node recorded block "
                          f"{recorded} as final, the database holds finalized blocks up to {held} only "
                          f"({recorded - held} lost, e.g. a truncated write-ahead log)")
    return report


def audit_data_dir(data_dir: Path) -> dict[str, Any]:
    """``bazaar chain audit``: tokens conserved at every block and the market's settlement contract re-run on
    every stored block (:func:`bazaar.node.audit.audit_data_dir`)."""
    from .audit import audit_data_dir as _audit

    return _audit(data_dir)


def export_data_dir(data_dir: Path) -> dict[str, Any]:
    """The finalized chain and its state as JSON-able data (see ``Chain.export``)."""
    store = _store(data_dir)
    try:
        return dict(Chain(store, _genesis(data_dir)).export())
    finally:
        store.close()
