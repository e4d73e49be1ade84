"""Many node processes on one machine: start-up time, round latency and memory per process (docs/adr/0123).

    python benchmarks/bench_scale.py [--scenario NAME|FILE] [--nodes N[,M...]] [--rounds R] [--exec-baseline] [--json]
                                     [--plot PNG [--add RUNS.json ...] [--plot-only]]

Starts the scenario's network (``--nodes N`` with an ai-bazaar scenario: the CPP and N − 1 consumers, from
:func:`scaled_ai_bazaar`; with another market the role with the most members grows to make N processes,
``node/scenario_scale.py``), runs ``R`` rounds (default 5), checks that every node holds one finalized head,
stops it, and prints ``bazaar net up`` time, round latency (start → final on every node) p50/p95, and peak RSS
(VmHWM) per process, max and mean, overall and per role. ``--exec-baseline`` first starts and stops the same
network with every node exec'ing its own interpreter (the launcher before docs/adr/0120) and prints the ratio.
``--json`` prints one JSON object. Nothing is asserted: the machine is shared and noisy; read one run's figures
side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from bazaar.node import launcher
from bazaar.node.params import ParamError
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.scenario_scale import scale_scenario

# The calibrated 8-consumer set (deploy/scenarios/params/ai-bazaar-calibrated.toml), repeated to any size.
_PATTERN = {"delta": [0.6, 0.5, 0.7, 0.4, 0.2, 0.3, 0.25, 0.35], "u": [1.0, 1.05, 0.95, 1.1, 1.2, 1.3, 1.15, 1.25],
            "m": [1.0, 0.9, 1.1, 1.0, 1.2, 1.6, 1.3, 1.8], "beta": [0.2, 0.15, 0.25, 0.2, 0.5, 0.45, 0.55, 0.4]}


def scaled_params(consumers: int) -> str:
    """An ai-bazaar parameter file with ``consumers`` consumers: the calibrated set's eight profiles repeated."""
    def column(key: str) -> str:
        return "[" + ", ".join(str(_PATTERN[key][i % 8]) for i in range(consumers)) + "]"

    return textwrap.dedent(f"""\
        # The calibrated set's 8 consumer profiles (ai-bazaar-calibrated.toml) repeated to {consumers} consumers
        # (benchmarks/bench_scale.py scaled_params): many processes on one machine, not a new economy.
        n = {consumers}
        epsilon = 1.0
        tau = 0.01
        delta = {column("delta")}
        C_b = 20.0
        u = {column("u")}
        m = {column("m")}
        R = 4000.0
        B = 200.0
        lambda = 5.0
        beta = {column("beta")}
        C = 5.0
        F_min = 10.0
        F_max = 100.0
        p_min = 10.0
        p_max = 20.0
        """)


def scaled_ai_bazaar(consumers: int, params_ref: str, rounds: int = 5, name: str | None = None) -> str:
    """An ai-bazaar scenario with one CPP and ``consumers`` consumers, equilibrium rounds only (no PB-MARL
    pre-training), short training budgets: what fits 50 processes on 2 cores."""
    name = name or f"ai-bazaar-{consumers + 1}"
    return textwrap.dedent(f"""\
        # ai-bazaar at scale: the CPP and {consumers} consumers, {consumers + 1} processes
        # (benchmarks/bench_scale.py; docs/adr/0123). Equilibrium rounds, short PoL training.
        name = "{name}"
        market = "ai-bazaar"
        network_id = "bazaar-scale"
        consensus = "pol"
        description = "CPP + {consumers} consumers: {consumers + 1} node processes on one machine"

        [roles]
        cpp = 1
        consumer = {consumers}

        [economy]
        initial_balance = 1000000.0
        stake = 1000.0
        block_reward = 4000.0
        reward_per_tx = 5.0

        [deadlines]
        demand_s = 10.0
        mining_s = 10.0
        block_s = 20.0
        final_s = 20.0

        [mechanism]
        steps_per_unit = 0.25
        max_steps = 40

        [mechanism.param_sets]
        scaled = "{params_ref}"

        [[phases]]
        name = "scaled-equilibrium"
        params = "scaled"
        mode = "equilibrium"
        rounds = {rounds}
        """)


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "Threads"):
                out[key] = int(rest.split()[0])
    with contextlib.suppress(OSError):
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def _wait_synced(info: dict[str, Any], deadline: float) -> bool:
    """Wait until every node reports ``synced`` (a peer answered its first chain sync): the leader refuses to
    start a round before. Polls ``/status`` (a benchmark's wait, with a deadline); False when time ran out."""
    while time.monotonic() < deadline:
        st = [launcher.node_status(v, timeout=10) for v in info["nodes"].values()]
        if all(s is not None and s.get("synced", True) for s in st):
            return True
        time.sleep(0.5)
    return False


def _up_down(scenario: str, spawn: str) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        try:
            info = launcher.net_up(scenario, root, timeout=600, spawn=spawn)
            return time.monotonic() - t0, info["up_phases_s"]
        finally:
            launcher.net_down(root)


def measure(scenario: str, rounds: int, exec_baseline: bool = False, spawn: str = "fork") -> dict[str, Any]:
    """Start ``scenario``'s network (``spawn``: "exec" or "fork", docs/adr/0120), run ``rounds`` rounds, check one
    finalized head, stop; the figures. ``exec_baseline`` first times net up and down with the other spawn mode."""
    sc = load_scenario(scenario)
    other = "fork" if spawn == "exec" else "exec"
    baseline, baseline_phases = _up_down(scenario, other) if exec_baseline else (None, None)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        info = launcher.net_up(scenario, root, timeout=600, spawn=spawn)
        up = time.monotonic() - t0
        try:
            t1 = time.monotonic()
            synced = _wait_synced(info, deadline=t1 + 300)
            sync_s = time.monotonic() - t1
            results: list[dict[str, Any]] = []
            error = None
            try:
                for r in run_rounds(root, rounds):
                    results.append(r)
            except launcher.LaunchError as err:  # a round the leader could not finish: report what was done
                error = str(err)[:300]
            status = launcher.net_status(root)
            procs = {name: _proc_status(v["pid"]) for name, v in info["nodes"].items()}
        finally:
            t1 = time.monotonic()
            launcher.net_down(root)
            down = time.monotonic() - t1
    lat = [r["latency_all_ms"] / 1000 for r in results if r.get("latency_all_ms") is not None]
    rows = status["nodes"]
    finals = {(r["finalized"], r["finalized_hash"]) for r in rows}
    rss = {r["name"]: r["rss_mb"] for r in rows if r["rss_mb"] is not None}
    by_role: dict[str, list[float]] = {}
    for r in rows:
        if r["rss_mb"] is not None:
            by_role.setdefault(r["role"], []).append(r["rss_mb"])
    out: dict[str, Any] = {
        "scenario": sc.name, "market": sc.market_name, "nodes": len(info["nodes"]), "rounds": len(results),
        "spawn": spawn, "baseline_spawn": other if exec_baseline else None,
        "rounds_asked": rounds, "error": error,
        "net_up_s": round(up, 2), "net_up_exec_s": round(baseline, 2) if baseline is not None else None,
        "net_up_phases_s": info["up_phases_s"], "net_up_exec_phases_s": baseline_phases,
        "net_down_s": round(down, 2), "all_synced": synced, "sync_wait_s": round(sync_s, 2),
        "final_everywhere": sum(1 for r in results if r.get("final_everywhere")),
        "one_finalized_head": len(finals) == 1 and all(r["alive"] for r in rows)
        and next(iter(finals))[0] not in (None, 0),  # genesis alone does not count
        "finalized_height": max((h for h, _ in finals if h is not None), default=None),
        "latency_p50_s": round(percentile(lat, 0.5), 3) if lat else None,
        "latency_p95_s": round(percentile(lat, 0.95), 3) if lat else None,
        "rss_max_mb": max(rss.values()) if rss else None,
        "rss_mean_mb": round(statistics.mean(rss.values()), 1) if rss else None,
        "rss_by_role_mb": {role: {"max": max(v), "mean": round(statistics.mean(v), 1), "count": len(v)}
                           for role, v in by_role.items()},
        "threads_max": max((p.get("Threads", 0) for p in procs.values()), default=None),
        "fds_max": max((p.get("fds", 0) for p in procs.values()), default=None),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    return out


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Nodes against round latency p50/p95 and peak RSS (max, mean) per process, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(results, key=lambda r: r["nodes"])
    xs = [r["nodes"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(xs, [r["latency_p50_s"] for r in rows], "o-", label="p50")
    ax1.plot(xs, [r["latency_p95_s"] for r in rows], "s--", label="p95")
    ax1.set_xlabel("node processes")
    ax1.set_ylabel("round latency, start -> final everywhere (s)")
    ax1.legend()
    ax2.plot(xs, [r["rss_max_mb"] for r in rows], "o-", label="max")
    ax2.plot(xs, [r["rss_mean_mb"] for r in rows], "s--", label="mean")
    ax2.axhline(110, color="k", lw=0.8, ls=":", label="110 MB target")
    ax2.set_xlabel("node processes")
    ax2.set_ylabel("peak RSS per process (MB)")
    ax2.set_ylim(0, max(130, *(r["rss_max_mb"] or 0 for r in rows)) * 1.05)
    ax2.legend()
    loads = ", ".join(f"{r['nodes']}: {r['load_avg_1m']}" for r in rows)
    fig.suptitle(f"ai-bazaar processes on {rows[0]['cpus']} cores (load average at the end of each run: {loads})",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _report(out: dict[str, Any]) -> None:
    print(f"scenario {out['scenario']} ({out['market']}): {out['nodes']} node processes on {out['cpus']} cores "
          f"(load average {out['load_avg_1m']})")
    line = f"net up: {out['net_up_s']} s (spawn {out['spawn']})"
    if out["net_up_exec_s"] is not None:
        ratio = out["net_up_exec_s"] / out["net_up_s"]
        line += f"; spawn {out['baseline_spawn']}: {out['net_up_exec_s']} s ({ratio:.2f}x)"
    print(line + f"; net down {out['net_down_s']} s")
    print(f"  net up phases (s): {out['net_up_phases_s']}" + (
        f"; spawn {out['baseline_spawn']}: {out['net_up_exec_phases_s']}" if out["net_up_exec_phases_s"] else ""))
    print(f"every node synced to the network's head {out['sync_wait_s']} s after net up: {out['all_synced']}")
    if out["error"]:
        print(f"stopped after {out['rounds']} of {out['rounds_asked']} rounds: {out['error']}")
    print(f"rounds: {out['rounds']}, final on every node: {out['final_everywhere']}; one finalized head on every "
          f"node: {out['one_finalized_head']} (height {out['finalized_height']})")
    if out["latency_p50_s"] is not None:
        print(f"round latency, start -> final on every node: p50 {out['latency_p50_s']} s, "
              f"p95 {out['latency_p95_s']} s")
    print(f"peak RSS per process (VmHWM): max {out['rss_max_mb']} MB, mean {out['rss_mean_mb']} MB")
    for role, v in out["rss_by_role_mb"].items():
        print(f"  {role:12s} x{v['count']:<3d} max {v['max']} MB, mean {v['mean']} MB")
    print(f"per process: threads max {out['threads_max']}, open fds max {out['fds_max']} (limit {out['fd_limit']})")


def _scaled(nodes: int, rounds: int, folder: Path) -> str:
    (folder / f"scaled{nodes}.toml").write_text(scaled_params(nodes - 1))
    path = folder / f"ai-bazaar-{nodes}.toml"
    path.write_text(scaled_ai_bazaar(nodes - 1, f"scaled{nodes}.toml", rounds=rounds))
    return str(path)


def _read_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every run object (a JSON line with ``nodes``) of earlier ``--json`` outputs; a bad file is one line, exit 2."""
    runs = []
    for path in paths:
        try:
            for line in path.read_text().splitlines():
                if line.strip().startswith("{"):
                    row = json.loads(line)
                    if isinstance(row, dict) and "nodes" in row and row.get("latency_p50_s") is not None:
                        runs.append(row)
        except (OSError, ValueError) as err:
            print(f"error: {path}: {err}", file=sys.stderr)
            sys.exit(2)
    if not runs:
        print("error: no run with a round latency in the --add files", file=sys.stderr)
        sys.exit(2)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default="ai-bazaar-50", help="a shipped scenario name or a TOML file")
    ap.add_argument("--nodes", help="grow the scenario to NODES processes (ai-bazaar: the CPP and NODES - 1 "
                    "consumers with short training; other markets: the role with the most members grows, "
                    "node/scenario_scale.py); a comma-separated list runs each size in turn")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spawn", choices=("exec", "fork"), default="fork",
                    help="fork: from one fork server (default, docs/adr/0120); exec: one interpreter per node")
    ap.add_argument("--exec-baseline", action="store_true",
                    help="also time net up and down with the other spawn mode, in the same run")
    ap.add_argument("--plot", type=Path, help="write nodes vs latency and RSS as a PNG (with --nodes or --add)")
    ap.add_argument("--add", type=Path, nargs="*", default=[],
                    help="JSON outputs of earlier runs (--json: one object per line) to include in the plot")
    ap.add_argument("--plot-only", action="store_true",
                    help="run nothing: plot the --add files alone (with --plot)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")
    results: list[dict[str, Any]] = []
    if args.plot_only:
        if not args.plot or not args.add:
            sys.exit("error: --plot-only needs --plot and --add")
        plot(_read_runs(args.add), args.plot)
        print(f"plot: {args.plot}")
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-sc-") as tmp:
        scenarios = [args.scenario]
        if args.nodes is not None:
            try:
                sizes = [int(n) for n in str(args.nodes).split(",")]
                market = load_scenario(args.scenario).market_name
            except Exception as err:  # a bad number, name or file: one line, exit 2
                print(f"error: {err}", file=sys.stderr)
                sys.exit(2)
            if min(sizes) < 2:
                sys.exit("error: --nodes must be at least 2")
            if market == "ai-bazaar":
                scenarios = [_scaled(n, args.rounds, Path(tmp)) for n in sizes]
            else:  # the role with the most members grows (node/scenario_scale.py)
                try:
                    scenarios = [str(scale_scenario(args.scenario, n, Path(tmp) / f"n{n}")) for n in sizes]
                except ParamError as err:
                    print(f"error: {err}", file=sys.stderr)
                    sys.exit(2)
        for scenario in scenarios:
            out = measure(scenario, args.rounds, args.exec_baseline, args.spawn)
            results.append(out)
            if args.json:
                print(json.dumps(out), flush=True)
            else:
                _report(out)
    if args.plot:
        plot(results + _read_runs(args.add), args.plot)
        if not args.json:
            print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
