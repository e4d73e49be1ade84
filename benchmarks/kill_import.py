"""SIGKILL during block import (issue #12): a child process imports a prepared certified ``pos`` chain into a
node-shaped data directory (import, certificate, durable finalized note per block, as a syncing node does); it
is SIGKILLed at a random instant of the import; then ``bazaar chain verify`` must pass on the data directory, no
block the child had reported final may be missing, and a restarted importer must resync to the prepared head.

Prints kills, verified restarts, resyncs to head, finalized blocks lost (must be 0), distinct heights the kills
left, resync time p50/p95; ``--json``: one object. The CI-sized version is tests/fuzz/test_kill_import.py.

    python benchmarks/kill_import.py                   # 100 kills, a 60-block chain
    python benchmarks/kill_import.py --kills 10 --blocks 30 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness lives in the test tree

from tests.fuzz.kill_import import run_kills


def main(argv: list[str] | None = None) -> int:
    """Run the kills; exit 1 when a store failed to verify or resync, or a finalized block was lost."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--blocks", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = run_kills(args.kills, Path(tmp), blocks=args.blocks, seed=args.seed)
    row = report.to_json()
    ok = not report.failures and not report.lost_final and report.resynced == report.kills == args.kills
    if args.json:
        print(json.dumps({"ok": ok, **row}))
    else:
        for key, value in row.items():
            print(f"{key:<26} {value}")
        print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
