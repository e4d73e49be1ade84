"""Fuzz live node processes over libp2p (issue #12): four ai-bazaar node processes on 127.0.0.1 (the CPP and
three consumers), a hostile libp2p peer sending fuzzed gossip on the chain and market topics (structural
messages of every registered type, byte mutations of valid envelopes), fuzzed direct requests on every
protocol the nodes serve and raw streams whose frame headers lie; then every node must be alive, answer
``GET /status``, have logged no error-level event or handler bug, and a round must settle on every node.

Prints frames sent by channel, the nodes' refusals by reason, request outcomes, liveness and the round after;
``--json``: one object. The CI-sized version is tests/fuzz/test_live.py.

    python benchmarks/fuzz_live.py                     # 5,000 hostile frames
    python benchmarks/fuzz_live.py --frames 500 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fuzzers live in the test tree

from bazaar.node import launcher
from tests.fuzz.campaign import CODES
from tests.fuzz.live import fuzz_live, write_scenario


def main(argv: list[str] | None = None) -> int:
    """Start the network, fuzz it, check it, stop it; exit 1 when a check failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pace-s", type=float, default=0.002, help="pause between hostile frames")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        launcher.net_up(write_scenario(root), root / "net", timeout=180)
        try:
            report = trio.run(lambda: fuzz_live(root / "net", args.frames, seed=args.seed, pace_s=args.pace_s))
        finally:
            launcher.net_down(root / "net")
    row = report.to_json()
    after = report.round_after
    ok = (report.alive and report.status_answers and not report.error_events and bool(after.get("final"))
          and bool(after.get("final_everywhere")) and set(report.remote_rejected) <= CODES
          and set(report.rejected_by_nodes) <= CODES)
    if args.json:
        print(json.dumps({"ok": ok, **row}))
    else:
        for key, value in row.items():
            print(f"{key:<30} {value}")
        print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
