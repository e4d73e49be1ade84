"""Full structural fuzz run (issue #12): ≥ 100,000 inputs drawn by hypothesis from every registered schema,
plus byte mutations of valid signed envelopes and blocks, through the router, ``decode_tx``, the ChainService
submit path, ``Block.decode``/``Chain.import_block``, and inside running in-memory nodes of every market (gossip
handlers while rounds run, the market's request handlers, chain sync, model and blob protocols).

Prints inputs, crashes (must be 0), refusals by reason, wall time per campaign; ``--json`` prints one object.
The CI-sized version is tests/fuzz/test_structural.py.

    python benchmarks/fuzz_structural.py                       # 75,000 ledger inputs + 5,000 per market
    python benchmarks/fuzz_structural.py --ledger 2000 --per-market 200 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fuzzers live in the test tree

from bazaar.node.markets.registry import market_names
from tests.fuzz.campaign import Report, fuzz_ledger, fuzz_market, uncoded


def main(argv: list[str] | None = None) -> int:
    """Run the campaigns; exit 1 when anything crashed or refused without a code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ledger", type=int, default=75_000, help="inputs for the ledger/router targets")
    ap.add_argument("--per-market", type=int, default=5_000, help="inputs for the nodes of each market")
    ap.add_argument("--markets", nargs="*", default=None, help="markets (default: every registered one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    quiet = args.json
    start = time.monotonic()
    reports: list[Report] = []

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    if args.ledger:
        say(f"ledger/router: {args.ledger} inputs")
        reports.append(fuzz_ledger(args.ledger, at=args.seed,
                                   progress=lambda d: say(f"  {d} done, {time.monotonic() - start:.0f} s")))
    for market in args.markets if args.markets is not None else market_names():
        if not args.per_market:
            break
        say(f"{market}: {args.per_market} inputs into running nodes")
        with tempfile.TemporaryDirectory() as tmp:
            reports.append(trio.run(fuzz_market, market, args.per_market, Path(tmp) / "net", args.seed,
                                    lambda d: say(f"  {d} done, {time.monotonic() - start:.0f} s")))
    inputs = sum(r.inputs for r in reports)
    deliveries = sum(r.tally.total for r in reports)
    crashes = sum(r.crashes for r in reports)
    bad_codes = {k: v for r in reports for k, v in uncoded(r.tally).items()}
    reasons: Counter[str] = Counter()
    for r in reports:
        reasons.update(r.tally.by_reason())
    summary = {"inputs": inputs, "deliveries": deliveries, "crashes": crashes, "uncoded_refusals": bad_codes,
               "refused_by_reason": dict(reasons.most_common()), "wall_s": round(time.monotonic() - start, 1),
               "campaigns": [r.to_json() for r in reports]}
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(f"\n{'campaign':<14} {'inputs':>8} {'deliveries':>10} {'crashes':>8} {'wall s':>8}  checks")
        for r in reports:
            print(f"{r.name:<14} {r.inputs:>8} {r.tally.total:>10} {r.crashes:>8} {r.wall_s:>8.1f}  {r.checks}")
        print(f"{'total':<14} {inputs:>8} {deliveries:>10} {crashes:>8} {summary['wall_s']:>8.1f}")
        print("refusals by reason:")
        for reason, n in reasons.most_common():
            print(f"  {reason:<24} {n:>8}")
        for r in reports:
            for c in r.tally.crashes[:10]:
                print("CRASH", c.line())
            for e in r.errors[:10]:
                print("ERROR EVENT", r.name, e)
        if bad_codes:
            print("UNCODED", bad_codes)
    return 1 if crashes or bad_codes else 0


if __name__ == "__main__":
    sys.exit(main())
