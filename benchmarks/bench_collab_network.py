"""Figures of market collab over real processes, both round protocols in one run (docs/adr/0160): per protocol
the round latency p50/p95 (round start -> block final on every node), the slowest participant's own work as the
nodes measured it, the overhead (latency minus that work) p50/p95, messages and KiB originated per round, CPU
seconds all node processes spent per round (from /proc: less sensitive to a loaded machine than wall time),
whether every round equals the offline solver (``bazaar solve collab-pricing`` on the same file), and the
declared protocol's figures as ratios of the iterative one (the baseline, measured in the same run).

    python benchmarks/bench_collab_network.py [--scenario collab] [--rounds 3] [--protocols declared,iterative]
        [--json]

Each protocol gets its own network (started, one warm-up round, ``--rounds`` rounds, stopped). Nothing is
asserted: this machine is shared and noisy; read the ratios of one run and the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_network import _statuses, _traffic, percentile, work_per_round  # run as a script: benchmarks/ on path

from bazaar.node import launcher
from bazaar.node.markets.registry import get_spec
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.solve import collab as solve_file

PROTOCOLS = ("declared", "iterative")


def variant(scenario: str, protocol: str, folder: Path) -> Path:
    """The scenario with ``[mechanism] protocol`` set (its parameter file is found as the original's)."""
    sc = load_scenario(scenario)
    text = sc.source.read_text()
    params = get_spec("collab").settings(sc).params_path
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith(("protocol", "params"))]
    at = lines.index("[mechanism]") + 1
    lines[at:at] = [f'protocol = "{protocol}"', f'params = "{params}"']
    out = folder / f"{sc.name}-{protocol}.toml"
    out.write_text("\n".join(lines) + "\n")
    return out


def cpu_seconds(root: Path) -> float:
    """User + system CPU seconds of every live node process of the network (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for node in launcher.NetDir(root).load()["nodes"].values():
        try:
            fields = Path(f"/proc/{int(node['pid'])}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(scenario: str, protocol: str, rounds: int, offline: dict[str, Any]) -> dict[str, Any]:
    """One protocol: start its network, one warm-up round, ``rounds`` timed rounds, stop."""
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp:
        ref = variant(scenario, protocol, Path(tmp))
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        launcher.net_up(ref, root)
        up = time.monotonic() - t0
        try:
            list(run_rounds(root, 1))
            before, cpu0 = _traffic(_statuses(root)), cpu_seconds(root)
            results = list(run_rounds(root, rounds))
            statuses, cpu1 = _statuses(root), cpu_seconds(root)
        finally:
            launcher.net_down(root)
    after = _traffic(statuses)
    timed = [r for r in results if r.get("latency_all_ms") is not None]
    work = work_per_round(statuses, [int(r["round"]) for r in timed])
    lat = [r["latency_all_ms"] / 1000 for r in timed]
    over = [r["latency_all_ms"] / 1000 - work[int(r["round"])] for r in timed]
    keys = ("iterations", "price_path", "trades", "payoff", "prices")
    return {
        "protocol": protocol, "rounds": rounds, "net_up_s": round(up, 2), "final_everywhere": len(timed),
        "same_outcome": all(r["outcome"][k] == offline[k] for r in results for k in keys),
        "iterations": [r["outcome"]["iterations"] for r in results],
        "latency_p50_s": round(percentile(lat, 0.5), 3) if lat else None,
        "latency_p95_s": round(percentile(lat, 0.95), 3) if lat else None,
        "work_p50_s": round(percentile(list(work.values()), 0.5), 3) if work else None,
        "overhead_p50_s": round(percentile(over, 0.5), 3) if over else None,
        "overhead_p95_s": round(percentile(over, 0.95), 3) if over else None,
        "messages_per_round": (after["messages"] - before["messages"]) / max(1, rounds),
        "kib_per_round": round((after["bytes"] - before["bytes"]) / 1024 / max(1, rounds), 1),
        "cpu_s_per_round": round((cpu1 - cpu0) / max(1, rounds), 3),
        "load_avg_1m": os.getloadavg()[0],
    }


def run(scenario: str, rounds: int, protocols: list[str]) -> dict[str, Any]:
    """Every protocol's figures, the offline solve's time, and declared/iterative ratios."""
    params = get_spec("collab").settings(load_scenario(scenario)).params
    t0 = time.process_time()
    offline = solve_file.solve_pricing(params)
    out: dict[str, Any] = {"scenario": scenario, "offline_cpu_s": round(time.process_time() - t0, 3),
                           "offline_iterations": offline["iterations"],
                           "protocols": {p: measure(scenario, p, rounds, offline) for p in protocols}}
    got = out["protocols"]
    if "declared" in got and "iterative" in got:
        out["ratio_declared_over_iterative"] = {
            k: (got["declared"][k] / got["iterative"][k] if got["declared"][k] is not None and got["iterative"][k]
                else None)
            for k in ("latency_p50_s", "overhead_p50_s", "overhead_p95_s", "messages_per_round", "cpu_s_per_round")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default="collab", help="a collab scenario with a pool rule (shipped name or path)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated, of: declared, iterative")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        ap.error(f"--protocols: one or more of {', '.join(PROTOCOLS)}")
    out = run(args.scenario, args.rounds, protocols)
    if args.json:
        print(json.dumps(out))
        return
    print(f"scenario {out['scenario']}: offline solve {out['offline_cpu_s']:.3f} CPU s, "
          f"{out['offline_iterations']} iterations")
    cols = ("latency_p50_s", "latency_p95_s", "work_p50_s", "overhead_p50_s", "overhead_p95_s",
            "messages_per_round", "kib_per_round", "cpu_s_per_round", "same_outcome", "load_avg_1m")
    width = max(len(c) for c in cols)
    print(f"{'':<{width}}  " + "  ".join(f"{p:>10}" for p in out["protocols"]))
    for c in cols:
        print(f"{c:<{width}}  " + "  ".join(f"{_cell(out['protocols'][p][c]):>10}" for p in out["protocols"]))
    for k, v in out.get("ratio_declared_over_iterative", {}).items():
        print(f"declared / iterative {k}: {_cell(v)}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} (wall figures are noisy under load)")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    return f"{v:.3f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
