"""Full testnet runs: every shipped testnet (or those named), one row each, as the issue's table.

Run ``python benchmarks/bench_testnets.py [NAME ...] [--rounds N] [--out DIR]``. Each testnet runs on its own
local multi-process network (127.0.0.1) in ``DIR/<name>`` (default a temporary folder); the table gives the
perturbations applied, rounds run and settled, whether every invariant held, tokens lost, honest nodes crashed
and the time a restarted node took to hold the network's finalized head (p50/p95). ``--json`` adds one JSON line
per testnet. The exit code is 1 when an invariant failed in any run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bazaar.deploy import shipped_names
from bazaar.node.testnet import load_testnet, run_testnet


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[int(q) - 1]:.1f}"


def row(result: dict[str, Any]) -> str:
    """One table row."""
    held = sum(result["invariants"].values())
    failed = [n for n, ok in result["invariants"].items() if not ok]
    resync = result["resync_s"]
    applied = sum(1 for p in result["perturbations"] if p["ok"])
    return (f"| {result['testnet']} | {applied} | {result['rounds']} | {result['settled']} | "
            f"{held}/{len(result['invariants'])}{' (failed: ' + ', '.join(failed) + ')' if failed else ''} | "
            f"{result['tokens_lost']} | {len(result['honest_crashed'])} | {_pct(resync, 50)} / {_pct(resync, 95)} "
            f"({len(resync)}) | {result['seconds']:.0f} |")


def main() -> int:
    """Run the testnets and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="testnets to run (default: every shipped one)")
    ap.add_argument("--rounds", type=int, help="override every testnet's rounds")
    ap.add_argument("--out", help="folder for the networks (default: a temporary folder, kept)")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per testnet")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bazaar-testnets-"))
    out.mkdir(parents=True, exist_ok=True)
    names = args.names or shipped_names("testnet")
    print(f"testnets: {', '.join(names)}; folders under {out}", file=sys.stderr)
    lines = ["| testnet | perturbations applied | rounds run | rounds settled | invariants held | tokens lost (µ) | "
             "honest crashed | resync after restart p50 / p95 s (n) | seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    failed = False
    for name in names:
        t0 = time.monotonic()
        result = run_testnet(load_testnet(name), out / f"{name}-{int(time.time())}", rounds=args.rounds,
                             progress=lambda line, n=name: print(f"[{n}] {line}", file=sys.stderr, flush=True))
        failed |= not all(result["invariants"].values())
        lines.append(row(result))
        print(lines[-1], file=sys.stderr, flush=True)
        if args.json:
            print(json.dumps({k: v for k, v in result.items() if k != "round_rows"}, default=str), flush=True)
        print(f"[{name}] done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
