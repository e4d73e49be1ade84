"""Figures of a local network of any market: `bazaar net up` time, end-to-end round latency (round start ->
block final on every node) p50/p95 with the market's by-design waits subtracted, messages and bytes per round
against the minimum the protocol needs, and peak memory per node process.

    python benchmarks/bench_network.py [--scenario NAME] [--rounds K] [--quick] [--json]

Nothing is asserted: this machine is shared and noisy; read the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bazaar.node import launcher
from bazaar.node.markets.registry import get_spec
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def _traffic(root: Path) -> dict[str, int]:
    """Messages and bytes every node originated so far (gossip publishes and direct requests)."""
    info = launcher.NetDir(root).load()
    total = {"messages": 0, "bytes": 0}
    for node in info["nodes"].values():
        st = launcher.node_status(node) or {}
        t = st.get("transport", {})
        total["messages"] += int(t.get("gossip_out", 0)) + int(t.get("requests_sent", 0))
        total["bytes"] += int(t.get("gossip_out_bytes", 0)) + int(t.get("request_bytes", 0))
    return total


def measure(scenario: str, rounds: int) -> dict[str, Any]:
    """Start the scenario's network, run ``rounds`` rounds, stop it; return the figures."""
    sc = load_scenario(scenario)
    spec = get_spec(sc.market_name)
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        info = launcher.net_up(scenario, root)
        up = time.monotonic() - t0
        try:
            list(run_rounds(root, 1))  # warm-up round (first sync, first lottery draw from stakes)
            before = _traffic(root)
            results = list(run_rounds(root, rounds))
            after = _traffic(root)
            status = launcher.net_status(root)
        finally:
            launcher.net_down(root)
    lat = [r["latency_all_ms"] for r in results if r.get("latency_all_ms") is not None]
    floor = sum(sc.deadlines[d] for d in spec.report.floor_deadlines) * 1000
    rss = [row["rss_mb"] for row in status["nodes"] if row["rss_mb"] is not None]
    per_round = {k: (after[k] - before[k]) / max(1, rounds) for k in after}
    out: dict[str, Any] = {
        "scenario": sc.name, "market": sc.market_name, "nodes": len(info["nodes"]), "rounds": rounds,
        "net_up_s": round(up, 1), "final_everywhere": sum(1 for r in results if r.get("final_everywhere")),
        "floor_ms": floor, "messages_per_round": per_round["messages"], "bytes_per_round": per_round["bytes"],
        "min_messages": spec.report.min_messages(sc) if spec.report.min_messages else None,
        "rss_max_mb": max(rss) if rss else None, "rss_median_mb": statistics.median(rss) if rss else None,
    }
    if lat:
        out.update(p50_ms=percentile(lat, 0.5), p95_ms=percentile(lat, 0.95),
                   overhead_p50_ms=percentile(lat, 0.5) - floor, overhead_p95_ms=percentile(lat, 0.95) - floor)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--scenario", default="ai-bazaar")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = measure(args.scenario, 3 if args.quick else args.rounds)
    if args.json:
        print(json.dumps(out))
        return
    print(f"scenario {out['scenario']} ({out['market']}): {out['nodes']} processes, {out['rounds']} rounds")
    print(f"net up: {out['net_up_s']} s")
    if "p50_ms" in out:
        print(f"round latency, start -> final on every node: p50 {out['p50_ms']:.0f} ms, p95 {out['p95_ms']:.0f} ms; "
              f"minus the by-design waits ({out['floor_ms']:.0f} ms): p50 {out['overhead_p50_ms']:.0f} ms, "
              f"p95 {out['overhead_p95_ms']:.0f} ms")
    print(f"rounds final everywhere: {out['final_everywhere']}/{out['rounds']}")
    print(f"messages per round: {out['messages_per_round']:.1f} (minimum the protocol needs: {out['min_messages']}),"
          f" {out['bytes_per_round'] / 1024:.1f} KiB originated")
    if out["rss_max_mb"] is not None:
        print(f"peak RSS per node process (VmHWM): max {out['rss_max_mb']:.0f} MB, "
              f"median {out['rss_median_mb']:.0f} MB")


if __name__ == "__main__":
    main()
