"""Figures of market collab over real processes: time per regulation iteration on the network against the
offline iteration (``run_pricing`` on the same file, measured in the same run), iterations network vs offline,
messages and bytes per iteration against the minimum, and peak RSS per process.

    python benchmarks/bench_collab_network.py [--scenario collab] [--rounds 3] [--json]

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

from bench_network import _traffic, percentile  # run as a script: benchmarks/ is on the path

from bazaar.node import launcher
from bazaar.node.markets.registry import get_spec
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.solve import collab as solve_file


def measure(scenario: str, rounds: int) -> dict[str, Any]:
    """The offline regulation of the scenario's file, then ``rounds`` rounds of its network."""
    sc = load_scenario(scenario)
    params = get_spec("collab").settings(sc).params
    t0 = time.perf_counter()
    offline = solve_file.solve_pricing(params)
    offline_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        info = launcher.net_up(scenario, root)
        up = time.monotonic() - t0
        try:
            before = _traffic(root)
            results = list(run_rounds(root, rounds))
            after = _traffic(root)
            status = launcher.net_status(root)
        finally:
            launcher.net_down(root)
    iters = [r["outcome"]["iterations"] for r in results]
    per_iter = [r["latency_all_ms"] / 1000 / max(1, r["outcome"]["iterations"] + 1) for r in results
                if r.get("latency_all_ms") is not None]
    evaluations = sum(i + 1 for i in iters)
    d, j = sc.roles["device"], sc.roles["publisher"]
    rss = [row["rss_mb"] for row in status["nodes"] if row["rss_mb"] is not None]
    off_iter = offline_s / (offline["iterations"] + 1)
    return {
        "scenario": sc.name, "processes": len(info["nodes"]), "rounds": rounds, "net_up_s": round(up, 1),
        "iterations_network": iters, "iterations_offline": offline["iterations"],
        "same_outcome": all(r["outcome"]["price_path"] == offline["price_path"]
                            and r["outcome"]["trades"] == offline["trades"] for r in results),
        "iteration_p50_s": percentile(per_iter, 0.5) if per_iter else None,
        "iteration_p95_s": percentile(per_iter, 0.95) if per_iter else None,
        "offline_iteration_s": off_iter,
        "ratio_network_offline": (percentile(per_iter, 0.5) / off_iter) if per_iter else None,
        "messages_per_iteration": (after["messages"] - before["messages"]) / max(1, evaluations),
        "min_messages_per_iteration": 2 + j + d,
        "bytes_per_iteration": (after["bytes"] - before["bytes"]) / max(1, evaluations),
        "rss_max_mb": max(rss) if rss else None, "rss_median_mb": statistics.median(rss) if rss else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default="collab", help="a collab scenario (shipped name or path)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    out = measure(args.scenario, args.rounds)
    if args.json:
        print(json.dumps(out))
        return
    print(f"scenario {out['scenario']}: {out['processes']} processes, {out['rounds']} rounds; net up "
          f"{out['net_up_s']} s")
    print(f"iterations per round: network {out['iterations_network']}, offline {out['iterations_offline']}; "
          f"same price path and trades: {out['same_outcome']}")
    if out["iteration_p50_s"] is not None:
        print(f"regulation iteration over the network: p50 {out['iteration_p50_s'] * 1000:.0f} ms, p95 "
              f"{out['iteration_p95_s'] * 1000:.0f} ms; offline {out['offline_iteration_s'] * 1000:.1f} ms; ratio "
              f"{out['ratio_network_offline']:.1f}x")
    print(f"messages per iteration: {out['messages_per_iteration']:.1f} (minimum {out['min_messages_per_iteration']}),"
          f" {out['bytes_per_iteration'] / 1024:.1f} KiB originated")
    if out["rss_max_mb"] is not None:
        print(f"peak RSS per process: max {out['rss_max_mb']:.0f} MB, median {out['rss_median_mb']:.0f} MB")


if __name__ == "__main__":
    main()
