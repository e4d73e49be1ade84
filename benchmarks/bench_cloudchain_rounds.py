"""Where a cloudchain round's time goes, phase by phase, read from the nodes' own JSON-line logs.

    python benchmarks/bench_cloudchain_rounds.py [--scenario cloudchain] [--rounds 3] [--json] [--keep DIR]

Starts the scenario's network with JSON logs (`bazaar net up --log-json`), runs one warm-up round and
``--rounds`` timed rounds (the driver of `bazaar round`), stops it, and splits every timed round at the events
the nodes logged, on the round leader's clock unless named:

* ``tasks``     — the day call to the last planned task on chain (``oracle.window``, leader);
* ``alloc``     — window record to the first task examined (the allocation imported, leader; since ADR 0187 it
  rides in the block of the last task, so this is the leader's examine starting);
* ``results``   — allocation to the last result on chain (leader's ``oracle.result_seen``; the providers' jobs,
  the participants' work, are inside: ``work_s`` is the largest ``job.done`` time);
* ``attest``    — last result to the last attestation (any oracle: probes, blob fetches, spot checks; a slow
  oracle's attestation after its task's quorum counts too, so this phase can outlast what gates settlement);
* ``quorum``    — last attestation to the last quorum record posted (any oracle, duplicates included);
* ``settle``    — last quorum to every task of the round settled on the leader's chain (``oracle.settled``);
* ``close``     — settled to the round closed (the leader's own head final; no close record since ADR 0184);
* ``final``     — closed to final on every node (the driver's ``latency_all_ms``).

Also per round: the SLA probing window the slow provider imposes (the longest ``oracle.probed``; ADR 0151: the
contract's latency bound, not protocol cost), blocks the leader imported, and per block the mean time from its
proposal to its import and to its finality on the leader, silent proposers and fork rejections. ``overhead_s`` is
latency minus the slowest job (ADR 0116, what bench_network.py reports); ``overhead_beyond_sla_s`` also subtracts
the probing window. ``overhead_net_sla_s`` is the figure the nodes measure themselves (docs/adr/0164): latency
minus the larger of the slowest participant's work (``GET /status`` ``work_s``, as bench_network.py takes it) and
the longest SLA wait an oracle's probes sat out for a provider that did not answer within the bound (oracles'
``sla_wait_s``) — the two run side by side (the probes from the day's call, ADR 0186). Nothing is asserted:
read the figures of one run (and ``uptime`` beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_scale import _wait_synced  # run as a script: benchmarks/ is on the path

from bazaar.node import launcher
from bazaar.node.cli_logs import LogFile, merged
from bazaar.node.rounds.driver import run_rounds

PHASES = ("tasks", "alloc", "results", "attest", "quorum", "settle", "close", "final")


def _events(root: Path) -> list[dict[str, Any]]:
    info = launcher.NetDir(root).load()
    files = [LogFile(n, root / "nodes" / n / "node.log") for n in info["nodes"]]
    return [r.to_json() for r in merged(files) if r.event]


def _statuses(root: Path) -> list[dict[str, Any]]:
    info = launcher.NetDir(root).load()
    return [st for st in (launcher.node_status(node) for node in info["nodes"].values()) if st is not None]


def node_waits(statuses: list[dict[str, Any]], rnd: int) -> tuple[float, float]:
    """``(work, SLA wait)`` of round ``rnd`` as the nodes measured them: the most seconds one node spent on its own
    work, and the longest one oracle's probes of one provider waited out the SLA's bound with no answer."""
    work = max([float(st.get("work_s", {}).get(str(rnd), 0.0)) for st in statuses] or [0.0])
    sla = max([float(st.get("app", {}).get("sla_wait_s", {}).get(str(rnd), 0.0)) for st in statuses] or [0.0])
    return work, sla


def breakdown(events: list[dict[str, Any]], result: dict[str, Any], leader: str,
              statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The phases of one round (seconds) from the merged log events and the driver's round result (and the nodes'
    own work and SLA-wait figures from their ``GET /status``, when given)."""
    rnd = int(result["round"])
    mine = [e for e in events if e["node"] == leader]
    t0 = next(e["ts"] for e in mine if e["event"] == "round.open" and e.get("round") == rnd)
    t_closed = next(e["ts"] for e in mine if e["event"] == "round.closed" and e.get("round") == rnd)
    span = [e for e in events if t0 <= e["ts"] <= t_closed]

    def last(pred: Any, default: float) -> float:
        ts = [e["ts"] for e in span if pred(e)]
        return max(ts) if ts else default

    t_window = next((e["ts"] for e in mine if e["event"] == "oracle.window" and e.get("round") == rnd), t0)
    t_alloc = min([e["ts"] for e in mine if e["event"] == "oracle.examine" and e.get("round") == rnd] or [t_window])
    t_results = last(lambda e: e["node"] == leader and e["event"] == "oracle.result_seen", t_alloc)
    t_attest = last(lambda e: e["event"] == "oracle.attest", t_results)
    t_quorum = last(lambda e: e["event"] == "oracle.quorum", t_attest)
    t_settled = next((e["ts"] for e in mine if e["event"] == "oracle.settled" and e.get("round") == rnd), t_quorum)
    latency_all = result.get("latency_all_ms")
    t_final = t0 + latency_all / 1000 if latency_all is not None else None
    marks = [t0, t_window, t_alloc, t_results, t_attest, t_quorum, t_settled, t_closed]
    for i in range(1, len(marks)):  # a late attestation or a duplicate quorum may come after the settlement
        marks[i] = max(marks[i], marks[i - 1]) if i < len(marks) - 1 else marks[i]
    marks[-2] = min(marks[-2], t_closed)
    phases = {name: round(b - a, 3) for name, a, b in zip(PHASES, marks, marks[1:], strict=False)}
    phases["final"] = round(t_final - t_closed, 3) if t_final is not None else None
    work = max([float(e.get("seconds", 0.0)) for e in span if e["event"] == "job.done"] or [0.0])
    probing = max([float(e.get("ms", 0.0)) / 1000 for e in span if e["event"] == "oracle.probed"] or [0.0])
    proposed = {e["height"]: e["ts"] for e in span if e["event"] == "draw.proposed"}
    imported = {e["height"]: e["ts"] for e in span if e["node"] == leader and e["event"] == "block.imported"}
    final = {e["height"]: e["ts"] for e in span if e["node"] == leader and e["event"] == "block.final"}
    to_import = [imported[h] - proposed[h] for h in imported if h in proposed]
    to_final = [final[h] - proposed[h] for h in final if h in proposed]
    latency = latency_all / 1000 if latency_all is not None else None
    node_work, sla_wait = node_waits(statuses or [], rnd)
    return {
        "round": rnd, "latency_s": latency, "final_everywhere": latency is not None, "phases_s": phases,
        "work_s": round(work, 4), "sla_probing_s": round(probing, 3),
        "overhead_s": round(latency - work, 3) if latency is not None else None,
        "overhead_beyond_sla_s": round(latency - work - probing, 3) if latency is not None else None,
        "node_work_s": round(node_work, 4), "sla_wait_s": round(sla_wait, 4),
        "overhead_net_sla_s": round(latency - max(node_work, sla_wait), 3) if latency is not None else None,
        "blocks": len(imported),
        "block_propose_to_import_s": round(statistics.mean(to_import), 3) if to_import else None,
        "block_propose_to_final_s": round(statistics.mean(to_final), 3) if to_final else None,
        "silent_proposers": sum(1 for e in span if e["node"] == leader and e["event"] == "draw.silent_proposer"),
        "fork_rejections": sum(1 for e in span if e["event"] == "block.rejected" and e.get("reason") == "fork"),
        "verdicts": result.get("metrics", {}).get("verdicts", {}),
    }


def measure(scenario: str, rounds: int, keep: Path | None = None) -> dict[str, Any]:
    """Run the network, return the per-round breakdown and the load average before and after."""
    with tempfile.TemporaryDirectory(prefix="bench-cc-rounds-") as tmp:
        root = (keep or Path(tmp)) / "net"
        load0 = os.getloadavg()
        t0 = time.monotonic()
        info = launcher.net_up(scenario, root, log_json=True)
        up = time.monotonic() - t0
        try:
            _wait_synced(info, time.monotonic() + 300)
            list(run_rounds(root, 1))  # warm-up: bonds, registrations, the agents' funds
            results = list(run_rounds(root, rounds))
            statuses = _statuses(root)
        finally:
            launcher.net_down(root)
        events = _events(root)
    leader = next(e["node"] for e in events if e["event"] == "round.open")
    per_round = [breakdown(events, r, leader, statuses) for r in results]
    lat = [r["latency_s"] for r in per_round if r["latency_s"] is not None]
    over = [r["overhead_s"] for r in per_round if r["overhead_s"] is not None]
    beyond = [r["overhead_beyond_sla_s"] for r in per_round if r["overhead_beyond_sla_s"] is not None]
    net = [r["overhead_net_sla_s"] for r in per_round if r["overhead_net_sla_s"] is not None]
    return {
        "scenario": scenario, "rounds": rounds, "net_up_s": round(up, 2), "final_everywhere": len(lat),
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "overhead_p50_s": round(statistics.median(over), 3) if over else None,
        "overhead_max_s": round(max(over), 3) if over else None,
        "overhead_beyond_sla_p50_s": round(statistics.median(beyond), 3) if beyond else None,
        "overhead_net_sla_p50_s": round(statistics.median(net), 3) if net else None,
        "overhead_net_sla_max_s": round(max(net), 3) if net else None,
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "per_round": per_round,
    }


def table(out: dict[str, Any]) -> str:
    """The figures for people: one row per timed round."""
    head = ["round", "latency", *PHASES, "work", "sla", "blocks", "prop>imp", "prop>fin", "silent", "forks"]
    lines = [f"{out['scenario']}: net up {out['net_up_s']} s, final everywhere {out['final_everywhere']}/"
             f"{out['rounds']}, load average {out['loadavg_before']} -> {out['loadavg_after']}",
             " ".join(f"{h:>8}" for h in head)]

    def f(v: Any) -> str:
        return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    for r in out["per_round"]:
        cells = [r["round"], r["latency_s"], *[r["phases_s"][p] for p in PHASES], r["work_s"], r["sla_probing_s"],
                 r["blocks"], r["block_propose_to_import_s"], r["block_propose_to_final_s"], r["silent_proposers"],
                 r["fork_rejections"]]
        lines.append(" ".join(f"{f(c):>8}" for c in cells))
    lines.append(f"overhead p50 {f(out['overhead_p50_s'])} s (max {f(out['overhead_max_s'])} s); beyond the SLA's "
                 f"probing window p50 {f(out['overhead_beyond_sla_p50_s'])} s; net of the nodes' SLA wait "
                 f"p50 {f(out['overhead_net_sla_p50_s'])} s (max {f(out['overhead_net_sla_max_s'])} s)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default="cloudchain")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="keep the network folder (and its logs) under this directory")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    out = measure(args.scenario, args.rounds, args.keep)
    print(json.dumps(out) if args.json else table(out))


if __name__ == "__main__":
    main()
