"""The simulator's cost per simulated round against the number of agents (issue 13, item 6).

    python benchmarks/bench_sim.py [--agents 10 30 100 300] [--rounds 2] [--scenario cloudchain] [--json]
                                   [--network-json FILE] [--png docs/figures/sim-scaling.png]

For each population it runs ``bazaar sim`` in a fresh process (``--json``) and reads the last round's CPU and
wall seconds (the first round also funds every hosted agent; the last one is the steady state). It fits
``cost = a · agents^k`` by least squares on the logarithms and prints the exponent ``k`` for CPU and wall time:
near 1 is linear. CPU seconds are the figure to read on a shared machine (wall time includes every other
tenant's load). ``--network-json`` takes a ``benchmarks/bench_network.py --json`` result of the multi-process
network on the same scenario (its round latency p50) and prints the ratio beside it; without it the
multi-process baseline is reported as not measured in this run. The PNG plots seconds per round against agents
on log-log axes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_one(scenario: str, agents: int, rounds: int, seed: int, timeout: float) -> dict[str, Any]:
    """One ``bazaar sim --json`` run in its own process; its JSON document."""
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        cmd = [sys.executable, "-m", "bazaar.node.cli", "sim", "--scenario", scenario, "--agents", str(agents),
               "--rounds", str(rounds), "--seed", str(seed), "--json", "--out", str(Path(tmp) / "out")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"bazaar sim --agents {agents} failed ({proc.returncode}): {proc.stderr[-500:]}")
    doc: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return doc


def _earlier_runs(files: list[str], rounds: int, seed: int) -> dict[int, dict[str, Any]]:
    """``--from-json``: population (the run's hosted agents, else its agents) -> an earlier run's document, checked
    against this sweep's rounds and seed."""
    out = {}
    for name in files:
        doc = json.loads(Path(name).read_text().strip().splitlines()[-1])
        if doc.get("rounds") != rounds or doc.get("seed") != seed:
            raise SystemExit(f"{name}: rounds {doc.get('rounds')} / seed {doc.get('seed')}, expected {rounds} / {seed}")
        out[int(doc.get("hosted_agents") or doc["agents"])] = doc
    return out


def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x) (None with fewer than two distinct points)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def plot(rows: list[dict[str, Any]], network_s: float | None, k_cpu: float | None, path: Path) -> None:
    """Seconds per simulated round against agents (log-log), CPU and wall, the process network beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["agents"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.loglog(xs, [r["cpu_s"] for r in rows], marker="o", label=f"simulator, CPU s/round (exponent {k_cpu:.2f})"
              if k_cpu is not None else "simulator, CPU s/round")
    ax.loglog(xs, [r["wall_s"] for r in rows], marker="s", ls=":", label="simulator, wall s/round (shared machine)")
    if network_s is not None:
        ax.axhline(network_s, color="grey", ls="--", label=f"process network round p50 ({network_s:.2f} s)")
    lo, hi = min(xs), max(xs)
    if rows and k_cpu is not None:
        a = rows[0]["cpu_s"] / rows[0]["agents"]
        ax.loglog([lo, hi], [a * lo, a * hi], color="black", lw=0.6, label="linear from the first point")
    ax.set_xlabel("agents")
    ax.set_ylabel("seconds per simulated round")
    ax.set_title(f"bazaar sim: {rows[0]['scenario'] if rows else ''} — cost per round against agents")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; print the table (or one JSON object) and write the PNG."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="cloudchain")
    ap.add_argument("--agents", type=int, nargs="+", default=[10, 30, 100, 300])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds per population")
    ap.add_argument("--network-json", default=None, help="a bench_network.py --json result on the same scenario")
    ap.add_argument("--png", default=str(Path(__file__).resolve().parents[1] / "docs/figures/sim-scaling.png"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--from-json", nargs="+", default=[], metavar="FILE",
                    help="`bazaar sim --json` documents of runs already made (same scenario, rounds and seed): "
                         "their populations are read from them instead of being run again")
    args = ap.parse_args(argv)
    network_s = None
    if args.network_json:
        network_s = float(json.loads(Path(args.network_json).read_text())["latency_p50_s"])
    done = _earlier_runs(args.from_json, args.rounds, args.seed)
    rows = []
    for n in sorted(set(args.agents) | set(done)):
        doc = done[n] if n in done else run_one(args.scenario, n, args.rounds, args.seed, args.timeout)
        last = doc["per_round"][-1]
        rows.append({"scenario": args.scenario, "requested": n, "agents": doc["agents"], "nodes": doc["nodes"],
                     "cpu_s": last["cpu_s"], "wall_s": last["wall_s"], "virtual_s": last["virtual_s"],
                     "first_round_cpu_s": doc["per_round"][0]["cpu_s"], "one_head": doc["one_head"],
                     "final": last["final"], "equilibrium_gap": last.get("equilibrium_gap"),
                     "served": last.get("served"), "head_hash": doc["head_hash"],
                     "rss_max_mb": doc.get("rss_max_mb"), "reused": n in done,
                     "load_avg_1m": last.get("load_1m", round(os.getloadavg()[0], 2))})  # beside its wall time
        if not args.json:
            r = rows[-1]
            print(f"  {r['agents']:>6} agents on {r['nodes']:>3} nodes: {r['cpu_s']:8.2f} CPU s/round, "
                  f"{r['wall_s']:8.2f} wall s/round (load {r['load_avg_1m']}), {r['virtual_s']:6.2f} virtual s, "
                  f"served {r['served']}, one head {r['one_head']}",
                  flush=True)
    xs = [float(r["agents"]) for r in rows]
    k_cpu = fit_exponent(xs, [r["cpu_s"] for r in rows])
    k_wall = fit_exponent(xs, [r["wall_s"] for r in rows])
    plot(rows, network_s, k_cpu, Path(args.png))
    out = {"scenario": args.scenario, "rounds": args.rounds, "rows": rows,
           "exponent_cpu": None if k_cpu is None else round(k_cpu, 3),
           "exponent_wall": None if k_wall is None else round(k_wall, 3),
           "network_round_p50_s": network_s,
           "sim_over_network": (None if network_s is None or not rows
                                else round(rows[-1]["wall_s"] / network_s, 3)),
           "png": args.png}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"\n{'agents':>7} {'nodes':>6} {'CPU s/round':>12} {'wall s/round':>13} {'virtual s':>10} {'gap':>8}")
        for r in rows:
            gap = "-" if r["equilibrium_gap"] is None else f"{r['equilibrium_gap']:.2g}"
            print(f"{r['agents']:>7} {r['nodes']:>6} {r['cpu_s']:>12.2f} {r['wall_s']:>13.2f} {r['virtual_s']:>10.2f} "
                  f"{gap:>8}")
        print(f"fit cost = a·agents^k: k = {out['exponent_cpu']} (CPU), {out['exponent_wall']} (wall)")
        if network_s is None:
            print("multi-process network on the same scenario: not measured in this run (--network-json FILE)")
        else:
            print(f"multi-process network round p50 {network_s:.2f} s; simulator at {rows[-1]['agents']} agents: "
                  f"{out['sim_over_network']}x of it per round")
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
