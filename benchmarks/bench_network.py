"""Figures of a local network of any market: `bazaar net up` time, round latency (round start -> block final on
every node, by each node's own finality stamp; beside it the latency as `bazaar round` saw it, its polling and the
leader's report work after finality included, docs/adr/0156) p50/p95, the work the round needed (the slowest
participant's own training or solving, as the nodes measured it themselves: ``GET /status`` ``work_s``), the
overhead (latency minus that work) p50/p95 and, beside it, net of the deadlines the contract made a node wait
out for a participant that did not answer in time (``deadline_wait_s``, e.g. cloudchain's SLA latency bound for
a slow provider: latency minus the larger of the work and that wait, docs/adr/0184), messages and bytes per
round against the minimum the protocol needs, the CPU seconds all node processes used per round (``/proc``; the
protocol's cost, which a loaded machine does not inflate the way it inflates wall time) and peak memory per node
process.

    python benchmarks/bench_network.py [--scenario NAME] [--nodes N] [--rounds K] [--quick] [--json]

``--nodes N`` grows (or shrinks) the scenario's largest role so the network has N node processes
(node/scenario_scale.py). ``--json`` prints one JSON object: ``nodes, rounds, latency_p50_s, latency_p95_s,
work_p50_s, overhead_p50_s, overhead_p95_s, rss_max_mb, net_up_s`` and the other figures.

Nothing is asserted: this machine is shared and noisy; read the figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bazaar.node import launcher
from bazaar.node.markets.registry import get_spec
from bazaar.node.params import ParamError
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.scenario_scale import scale_scenario


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def _statuses(root: Path) -> list[dict[str, Any]]:
    info = launcher.NetDir(root).load()
    return [st for st in (launcher.node_status(node) for node in info["nodes"].values()) if st is not None]


def _traffic(statuses: list[dict[str, Any]]) -> dict[str, int]:
    """Messages and bytes every node originated so far (gossip publishes and direct requests)."""
    total = {"messages": 0, "bytes": 0}
    for st in statuses:
        t = st.get("transport", {})
        total["messages"] += int(t.get("gossip_out", 0)) + int(t.get("requests_sent", 0))
        total["bytes"] += int(t.get("gossip_out_bytes", 0)) + int(t.get("request_bytes", 0))
    return total


def _cpu_s(root: Path) -> float | None:
    """CPU seconds (user + system) the node processes have used so far, from ``/proc`` (None off Linux or when a
    node's process cannot be read). A figure of the protocol's cost that a loaded machine does not inflate the way
    it inflates wall time."""
    info = launcher.NetDir(root).load()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for node in info["nodes"].values():
        try:
            fields = Path(f"/proc/{int(node['pid'])}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of stat)
    return total


def work_per_round(statuses: list[dict[str, Any]], rounds: list[int], field: str = "work_s") -> dict[int, float]:
    """Per round, the most seconds one node spent on its own work (0 when no node reported any); with
    ``field="deadline_wait_s"``, the longest one node waited out a contract deadline for a late participant."""
    return {r: max([float(st.get(field, {}).get(str(r), 0.0)) for st in statuses] or [0.0]) for r in rounds}


CHURN = {"mesh_prunes": ("mesh_prune_over_high",),
         "grafts_refused": ("mesh_graft_refused_backoff", "mesh_graft_refused_flood", "mesh_graft_refused_unjoined"),
         "mesh_links_lost": ("mesh_lost_disconnect",), "watchdog_kicks": ("watchdog_kicks",),
         "disconnects_aborted": ("disconnects_aborted",)}
"""What :func:`churn` sums: transport counters of ``GET /status`` that grow when the overlay is unsettled."""


def churn(statuses: list[dict[str, Any]]) -> dict[str, int]:
    """Over all nodes since start-up: mesh links pruned, GRAFTs refused, mesh links lost with a connection,
    watchdog kicks (docs/adr/0203: on a settled network they stay near 0 after start-up), and disconnects whose
    close hung and had its sockets closed under it (docs/adr/0207)."""
    return {name: sum(int(st.get("transport", {}).get(k, 0)) for st in statuses for k in keys)
            for name, keys in CHURN.items()}


def measure(scenario: str, rounds: int, nodes: int | None = None, keep: Path | None = None) -> dict[str, Any]:
    """Start the scenario's network (grown to ``nodes`` processes), run ``rounds`` rounds after one warm-up
    round, stop it; return the figures.

    The run folder (scenario, node logs, chains, each round's result in ``rounds.jsonl`` and every node's last
    ``GET /status`` in ``statuses.json``) goes under ``keep`` when given. Otherwise it is a temporary
    folder, removed after a run whose every round was final everywhere and kept after any other run, its path
    in the figures (``run_dir``) and on stderr, so that a bad run can be read afterwards."""
    tmp = keep if keep is not None else Path(tempfile.mkdtemp(prefix="bench-net-"))
    tmp.mkdir(parents=True, exist_ok=True)
    clean = False
    try:
        out = _measure_in(tmp, scenario, rounds, nodes)
        clean = keep is None and out["final_everywhere"] == rounds
        out["run_dir"] = None if clean else str(tmp)
        return out
    finally:
        if clean:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"bench_network: run folder kept at {tmp}", file=sys.stderr)


def _measure_in(tmp: Path, scenario: str, rounds: int, nodes: int | None) -> dict[str, Any]:
    """:func:`measure` in the run folder ``tmp``."""
    ref: str | Path = scale_scenario(scenario, nodes, tmp / "scenario") if nodes else scenario
    sc = load_scenario(ref)
    spec = get_spec(sc.market_name)
    minimum = spec.report.min_messages(sc) if spec.report.min_messages else None  # reads the scenario's files
    root = tmp / "net"
    t0 = time.monotonic()
    info = launcher.net_up(ref, root)
    up = time.monotonic() - t0
    try:
        list(run_rounds(root, 1))  # warm-up round (first sync, first lottery draw from stakes)
        before = _traffic(_statuses(root))
        cpu_before = _cpu_s(root)
        results = list(run_rounds(root, rounds))
        cpu_after = _cpu_s(root)
        statuses = _statuses(root)
        status = launcher.net_status(root)
    finally:
        launcher.net_down(root)
    # what a kept run folder needs to be read afterwards: each round's result and every node's last status
    (tmp / "rounds.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in results))
    (tmp / "statuses.json").write_text(json.dumps(statuses, default=str, indent=1))
    after = _traffic(statuses)
    timed = [r for r in results if r.get("latency_all_ms") is not None]
    work = work_per_round(statuses, [int(r["round"]) for r in timed])
    waits = work_per_round(statuses, [int(r["round"]) for r in timed], "deadline_wait_s")
    lat = [r["latency_all_ms"] / 1000 for r in timed]
    polled = [r["latency_polled_ms"] / 1000 for r in timed if r.get("latency_polled_ms") is not None]
    over = [r["latency_all_ms"] / 1000 - work[int(r["round"])] for r in timed]
    # net of the deadlines the contract sets for a participant that did not answer (docs/adr/0184): the work and
    # such a wait run side by side, so the larger of the two is the round's floor
    net = [r["latency_all_ms"] / 1000 - max(work[int(r["round"])], waits[int(r["round"])]) for r in timed]
    rss = [row["rss_mb"] for row in status["nodes"] if row["rss_mb"] is not None]
    per_round = {k: (after[k] - before[k]) / max(1, rounds) for k in after}
    out: dict[str, Any] = {
        "scenario": sc.name, "market": sc.market_name, "nodes": len(info["nodes"]), "rounds": rounds,
        "net_up_s": round(up, 2), "final_everywhere": len(timed),
        "latency_p50_s": None, "latency_p95_s": None, "work_p50_s": None, "overhead_p50_s": None,
        "overhead_p95_s": None, "deadline_wait_p50_s": None, "overhead_net_deadline_p50_s": None,
        "overhead_net_deadline_p95_s": None,
        "latency_s": [round(x, 3) for x in lat],
        "latency_polled_p50_s": round(percentile(polled, 0.5), 3) if polled else None,
        "latency_polled_s": [round(x, 3) for x in polled], "work_s": [round(work[int(r["round"])], 3) for r in timed],
        "deadline_wait_s": [round(waits[int(r["round"])], 3) for r in timed],
        "messages_per_round": per_round["messages"], "bytes_per_round": per_round["bytes"],
        "min_messages": minimum,
        "node_cpu_s_per_round": (round((cpu_after - cpu_before) / max(1, rounds), 3)
                                 if cpu_before is not None and cpu_after is not None else None),
        "rss_max_mb": max(rss) if rss else None, "rss_median_mb": statistics.median(rss) if rss else None,
        "churn": churn(statuses),
    }
    if lat:
        out.update(latency_p50_s=round(percentile(lat, 0.5), 3), latency_p95_s=round(percentile(lat, 0.95), 3),
                   work_p50_s=round(percentile(list(work.values()), 0.5), 3),
                   overhead_p50_s=round(percentile(over, 0.5), 3), overhead_p95_s=round(percentile(over, 0.95), 3),
                   deadline_wait_p50_s=round(percentile(list(waits.values()), 0.5), 3),
                   overhead_net_deadline_p50_s=round(percentile(net, 0.5), 3),
                   overhead_net_deadline_p95_s=round(percentile(net, 0.95), 3))
    return out


def table(out: dict[str, Any]) -> str:
    """The figures for people."""
    def s(v: Any) -> str:
        return "-" if v is None else f"{v:.2f} s"

    rows = [
        ("scenario", f"{out['scenario']} ({out['market']})"), ("node processes", str(out["nodes"])),
        ("net up", s(out["net_up_s"])), ("rounds final everywhere", f"{out['final_everywhere']}/{out['rounds']}"),
        ("round latency p50 / p95", f"{s(out['latency_p50_s'])} / {s(out['latency_p95_s'])}"),
        ("latency as `bazaar round` saw it p50", s(out["latency_polled_p50_s"])),
        ("slowest participant's work p50", s(out["work_p50_s"])),
        ("overhead (latency - work) p50 / p95", f"{s(out['overhead_p50_s'])} / {s(out['overhead_p95_s'])}"),
        ("deadline waited out for a late participant p50", s(out["deadline_wait_p50_s"])),
        ("overhead net of that wait p50 / p95",
         f"{s(out['overhead_net_deadline_p50_s'])} / {s(out['overhead_net_deadline_p95_s'])}"),
        ("messages per round", f"{out['messages_per_round']:.1f} (protocol minimum {out['min_messages']})"),
        ("KiB originated per round", f"{out['bytes_per_round'] / 1024:.1f}"),
        ("node CPU per round (all processes)", s(out["node_cpu_s_per_round"])),
        ("overlay churn since start-up", ", ".join(f"{k} {v}" for k, v in out["churn"].items())),
        ("peak RSS per process max / median", "-" if out["rss_max_mb"] is None else
         f"{out['rss_max_mb']:.0f} MB / {out['rss_median_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--scenario", default="ai-bazaar")
    ap.add_argument("--nodes", type=int, default=None, help="grow the scenario to N node processes")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--keep", type=Path, default=None,
                    help="run in this folder and keep it (default: a temporary one, kept only after a bad run)")
    args = ap.parse_args()
    try:
        out = measure(args.scenario, 3 if args.quick else args.rounds, args.nodes, args.keep)
    except (ParamError, launcher.LaunchError) as err:
        raise SystemExit(f"bench_network: {err}") from None
    print(json.dumps(out) if args.json else table(out))


if __name__ == "__main__":
    main()
