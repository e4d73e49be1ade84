"""Figures of the demo network (issue #2): `bazaar net up` time, end-to-end round latency (price out -> block
final on every node) p50/p95, and peak memory per node process.

    python benchmarks/bench_network.py [--rounds K] [--quick]

Latency is shown next to its floor, the scenario's mining deadline that every round waits out by design, so
the protocol overhead (latency - floor) can be read off the same run. Nothing is asserted: this machine is
shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bazaar.node import launcher
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--scenario", default="ai-bazaar")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    sc = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        info = launcher.net_up(args.scenario, root)
        up = time.monotonic() - t0
        try:
            results = list(run_rounds(root, rounds))
            status = launcher.net_status(root)
        finally:
            launcher.net_down(root)
    lat = [r["latency_all_ms"] for r in results if r.get("latency_all_ms") is not None]
    leader = [r["latency_ms"] for r in results]
    floor = sc.deadlines["mining_s"] * 1000
    rss = [row["rss_mb"] for row in status["nodes"] if row["rss_mb"] is not None]
    print(f"nodes: {len(info['nodes'])} processes, scenario {sc.name}, {rounds} rounds")
    print(f"net up: {up:.1f} s wall ({info['up_seconds']} s inside net_up)")
    if lat:
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        print(f"round latency, price out -> final on every node: p50 {p50:.0f} ms, p95 {p95:.0f} ms "
              f"(floor: mining deadline {floor:.0f} ms; overhead p50 {p50 - floor:.0f} ms, ratio {p50 / floor:.2f}x)")
        print(f"round latency at the leader (final there): p50 {statistics.median(leader):.0f} ms")
    print(f"rounds final everywhere: {sum(1 for r in results if r.get('final_everywhere'))}/{len(results)}")
    if rss:
        print(f"peak RSS per node process (VmHWM): max {max(rss):.0f} MB, median {statistics.median(rss):.0f} MB")


if __name__ == "__main__":
    main()
