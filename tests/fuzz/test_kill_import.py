"""CI-sized crash-during-import (issue #12): SIGKILLs of a child process at random instants while it imports a
certified chain into a node's data directory; after each, ``bazaar chain verify`` passes, no block the child
had reported final is lost, and a restarted importer resyncs to the prepared head. The full run (100 kills) is
``python benchmarks/kill_import.py``."""

from __future__ import annotations

from pathlib import Path

from .kill_import import run_kills

KILLS = 5


def test_sigkill_during_import_leaves_a_verifying_store_that_resyncs(tmp_path: Path) -> None:
    report = run_kills(KILLS, tmp_path, blocks=30, seed=7)
    assert report.failures == [], report.failures
    assert report.kills == KILLS and report.verified == KILLS and report.resynced == KILLS
    assert report.lost_final == []
