"""Soak (issue #12): many rounds of every networked market on the in-memory network, token conservation
checked at every block of every node (``genesis + Σ header rewards − burned == Σ balances + Σ escrow + Σ stake``,
and the ledger's own ``Supply.minted`` equal to the headers' sum), every store re-verified from genesis at the
end, one head everywhere.

Prints, per market: rounds, settled, blocks checked, conservation checks, wall time, rounds/s, and — when the
time budget stopped it before ``--rounds`` — the projected time of the full count. ``--json``: one object.

    python benchmarks/soak.py                              # 1,000 rounds per market, at most 15 min each
    python benchmarks/soak.py --rounds 50 --budget-s 120 --markets ai-bazaar hierarchical --json

The collection windows of the small scenarios are scaled by ``--scale`` (default 0.15; block and finality
deadlines are kept): the in-memory network answers in milliseconds. The CI-sized version is
tests/fuzz/test_soak.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the soak lives in the test tree

from bazaar.node.markets.registry import market_names
from tests.fuzz.campaign import leaves
from tests.fuzz.soak import SoakReport, soak


def main(argv: list[str] | None = None) -> int:
    """Run the soaks; exit 1 when a conservation check failed or a store did not re-verify."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-time budget per market")
    ap.add_argument("--scale", type=float, default=1.0, help="factor on the scenarios' collection windows")
    ap.add_argument("--markets", nargs="*", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.getLogger("bazaar").addHandler(logging.NullHandler())  # the nodes' events: not on the terminal
    logging.getLogger("bazaar").propagate = False
    rows = []
    for market in args.markets if args.markets is not None else market_names():
        if not args.json:
            print(f"{market}: up to {args.rounds} rounds, budget {args.budget_s:.0f} s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                report = trio.run(lambda m=market, t=tmp: soak(m, args.rounds, Path(t) / "net",
                                                                 budget_s=args.budget_s, scale=args.scale))
            except Exception as err:  # a node died and took the in-memory network down: report it, go on
                report = SoakReport(market, scale=args.scale)
                report.failures = [f"node died: {type(e).__name__}: {e}" for e in leaves(err)]
        row = report.to_json()
        rate = row["rounds_per_s"]
        row["projected_s_for_requested"] = round(args.rounds / rate, 0) if rate and report.rounds < args.rounds \
            else None
        rows.append(row)
        if not args.json:
            print(f"  {json.dumps(row)}", flush=True)
    ok = all(not r["failures"] and r["reverified_from_store"] and r["one_head"] for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "markets": rows}))
    else:
        print(f"\n{'market':<14} {'rounds':>7} {'settled':>8} {'blocks':>8} {'checks':>8} {'wall s':>8} "
              f"{'rounds/s':>9} {'projected s':>12}  ok")
        for r in rows:
            proj = r["projected_s_for_requested"]
            print(f"{r['market']:<14} {r['rounds']:>7} {r['settled']:>8} {r['blocks_checked']:>8} "
                  f"{r['conservation_checks']:>8} {r['wall_s']:>8.1f} {r['rounds_per_s']:>9.3f} "
                  f"{'' if proj is None else f'{proj:.0f}':>12}  "
                  f"{not r['failures'] and r['reverified_from_store'] and r['one_head']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
