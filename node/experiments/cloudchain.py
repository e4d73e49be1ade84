"""Figures of seed 004 (market ``cloudchain``) from a run of the real network: ``cloudchain-30d`` starts the
scenario's node processes, plays every simulated day, and writes ``results.json`` and the figures — tokens per
provider (paper Fig. 4), throughput versus requesters (Fig. 3), Jain's index versus group size, SLA compliance,
storage latency peer to peer versus through the chain (Fig. 2), and the privacy overhead.

``--quick`` runs a small network (3 oracles, 6 providers, 2 requester processes of 10 agents ramping 4 → 20,
3 days, 11 processes) with the same keys. :func:`analyse` makes the same document from any cloudchain run folder
(``python -m bazaar.node.experiments.cloudchain RUN_DIR`` re-draws the figures of a run).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bazaar.node.cli_registry import Experiment

from .repro import Run, write_table
from .stats import summarise

QUICK_EDITS = (
    ("provider = 28", "provider = 6"), ("agents = 150", "agents = 10"), ("agents_start = 10", "agents_start = 4"),
    ("agents_end = 300", "agents_end = 20"), ("rounds = 30", "rounds = 3"), ("window_s = 30.0", "window_s = 10.0"),
    ("deadline_s = 15.0", "deadline_s = 4.0"),
)
_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \w (\S+) (\S+)(.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)")


def scenario_text(seed: int, quick: bool) -> str:
    """The 30-day scenario (or its quick variant) with ``seed`` as the market's seed."""
    from bazaar.deploy import scenario_file

    text = scenario_file("cloudchain-30d").read_text(encoding="utf-8")
    if quick:
        for old, new in QUICK_EDITS:
            if old not in text:
                raise RuntimeError(f"cloudchain-30d.toml no longer holds {old!r}")
            text = text.replace(old, new)
        text = text.replace('name = "cloudchain-30d"', 'name = "cloudchain-30d-quick"')
    return re.sub(r"^seed = \d+", f"seed = {seed}", text, flags=re.M)


def events(root: Path, name: str) -> list[tuple[float, str, dict[str, str]]]:
    """``(seconds of the day, event, fields)`` of one node's log."""
    out: list[tuple[float, str, dict[str, str]]] = []
    log = root / "nodes" / name / "node.log"
    if not log.exists():
        return out
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        t = datetime.strptime(m.group(1), "%H:%M:%S.%f")
        secs = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
        out.append((secs, m.group(3), dict(_FIELD.findall(m.group(4)))))
    return out


def analyse(root: Path, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The results document of a cloudchain run folder and its round summaries."""
    from bazaar.mechanisms.cloudchain.jobs import run_job
    from bazaar.mechanisms.cloudchain.metrics import storage_latency

    from ..markets.cloudchain.config import market_config, provider_profiles
    from ..scenario import load_scenario

    info = json.loads((root / "net.json").read_text())
    scenario = load_scenario(info["scenario"])
    cfg = market_config(scenario)
    names = scenario.names("provider")
    profiles = {p.name: p for p in provider_profiles(cfg, names)}
    jain_by_group: dict[str, float] = {}
    throughput: dict[str, float] = {}
    detail = []
    met = decided = 0
    for r in rounds:
        m = r.get("metrics", {})
        group = str(cfg.active_agents(r["round"]))
        verdicts = m.get("verdicts", {})
        met += verdicts.get("met", 0)
        decided += sum(verdicts.get(k, 0) for k in ("met", "late", "missing", "wrong"))
        jain_by_group[group] = m.get("jain", 1.0)
        throughput[group] = m.get("units_verified", 0.0)
        detail.append({"round": r["round"], "requesters": int(group), "tasks": m.get("tasks"),
                       "served": m.get("served"), "met": verdicts.get("met", 0), "units": m.get("units_verified"),
                       "latency_s": r.get("latency_ms", 0) / 1000, "jain": m.get("jain"),
                       "sla": m.get("sla_compliance")})
    tokens = rounds[-1]["outcome"].get("tokens", {}) if rounds else {}
    jobs: list[dict[str, str]] = []
    fetches: list[tuple[int, float]] = []
    seen: dict[str, list[float]] = {}
    done: dict[str, float] = {}
    for name in [n for n, _ in scenario.nodes]:
        for t, ev, f in events(root, name):
            if ev == "job.done":
                jobs.append(f)
                done[f["task"]] = t
            elif ev == "oracle.fetched":
                fetches.append((int(f["bytes"]), float(f["ms"])))
            elif ev == "oracle.result_seen":
                seen.setdefault(f["task"], []).append(t)
    chain_ms = [1000 * (min(seen[k]) - done[k]) for k in seen if k in done and min(seen[k]) >= done[k]]

    def per_unit(private: bool) -> list[float]:
        return [float(j["seconds"]) / float(j["units"]) for j in jobs
                if j.get("kind") == "training" and (j.get("private") == "True") == private]

    plain, private = per_unit(False), per_unit(True)
    # the accuracy cost of DP on the same jobs: the private network jobs re-run without noise (same seeds are
    # not logged, so the clean quality is measured on fresh seeds of the same sizes)
    priv_quality = [float(j["quality"]) for j in jobs if j.get("kind") == "training" and j.get("private") == "True"]
    clean_quality = [run_job("training", float(j["units"]), 1000 + k).quality
                     for k, j in enumerate(jobs) if j.get("kind") == "training" and j.get("private") == "True"]
    sizes = sorted({b for b, _ in fetches}) or [1 << 16]
    model_rw = {kind: {"read_s": statistics.mean(storage_latency(s, p)[0] for s in sizes),
                       "write_s": statistics.mean(storage_latency(s, p)[1] for s in sizes)}
                for kind in ("enterprise", "community")
                for p in [next(q for q in profiles.values() if q.kind == kind)] if any(
                    q.kind == kind for q in profiles.values())}
    return {
        "scenario": scenario.name, "rounds": len(rounds), "providers": len(names),
        "requesters_max": max((d["requesters"] for d in detail), default=0),
        "jain_by_group": jain_by_group,
        "tokens_by_provider": tokens,
        "provider_kinds": {n: profiles[n].kind for n in names},
        "throughput_by_requesters": throughput,
        "throughput_detail": detail,
        "sla_compliance": met / decided if decided else None,
        "storage": {
            "p2p_read_ms": {"p50": statistics.median([ms for _, ms in fetches]) if fetches else None,
                            "n": len(fetches), "bytes_mean": statistics.mean(sizes)},
            "chain_record_ms": {"p50": statistics.median(chain_ms) if chain_ms else None, "n": len(chain_ms)},
            "model": model_rw,
        },
        "privacy": {
            "epsilon_spent": rounds[-1].get("metrics", {}).get("epsilon_spent_max", 0.0) if rounds else 0.0,
            "time_overhead": (statistics.mean(private) / statistics.mean(plain)) if plain and private else None,
            "accuracy_cost": (statistics.mean(clean_quality) - statistics.mean(priv_quality))
            if priv_quality else None,
            "private_jobs": len(private),
        },
    }


def plot(out: Path, res: dict[str, Any], quick: bool) -> list[str]:
    """The figures of a results document."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stamp = " (--quick)" if quick else ""
    files = []
    fig, ax = plt.subplots(figsize=(10, 4))
    names = sorted(res["tokens_by_provider"], key=lambda n: -res["tokens_by_provider"][n])
    colors = ["tab:blue" if res["provider_kinds"].get(n) == "enterprise" else "tab:orange" for n in names]
    ax.bar(range(len(names)), [res["tokens_by_provider"][n] for n in names], color=colors)
    ax.set_xticks(range(len(names)), names, rotation=70, fontsize=7)
    ax.set_ylabel("tokens earned (verified compute)")
    ax.set_title(f"tokens per provider after {res['rounds']} days: enterprise (blue), community (orange){stamp}")
    fig.tight_layout()
    files.append(out / "tokens_by_provider.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    groups = sorted(res["jain_by_group"], key=int)
    xs = [int(g) for g in groups]
    axes[0].plot(xs, [res["throughput_by_requesters"][g] for g in groups], marker="o")
    axes[0].set_xlabel("active requesters")
    axes[0].set_ylabel("verified compute units per day")
    axes[0].set_title("throughput vs requesters")
    axes[1].plot(xs, [res["jain_by_group"][g] for g in groups], marker="o", label="contract")
    axes[1].axhline(0.89, color="grey", ls="--", label="paper: >= 0.89")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel("active requesters")
    axes[1].set_ylabel("Jain index of normalised allocations")
    axes[1].legend(fontsize=8)
    detail = res["throughput_detail"]
    axes[2].plot([d["round"] for d in detail], [d["sla"] for d in detail], marker="s")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_xlabel("day")
    axes[2].set_ylabel("SLA compliance (met / decided)")
    fig.suptitle(f"cloudchain over the network{stamp}")
    fig.tight_layout()
    files.append(out / "throughput_jain_sla.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    st = res["storage"]
    bars = {"p2p read\n(measured)": st["p2p_read_ms"]["p50"], "chain record\n(measured)": st["chain_record_ms"]["p50"]}
    for kind, m in st["model"].items():
        bars[f"model read\n{kind}"] = 1000 * m["read_s"]
        bars[f"model write\n{kind}"] = 1000 * m["write_s"]
    axes[0].bar(range(len(bars)), [v or 0 for v in bars.values()])
    axes[0].set_xticks(range(len(bars)), list(bars), fontsize=7)
    axes[0].set_ylabel("latency, ms (median)")
    axes[0].set_title("storage: blobs over libp2p vs a record through the chain")
    pv = res["privacy"]
    axes[1].bar(["time overhead\n(private / plain per unit)", "accuracy cost\n(clean - private)"],
                [pv["time_overhead"] or 0, pv["accuracy_cost"] or 0])
    axes[1].set_title(f"privacy: max epsilon spent {pv['epsilon_spent']:.2f}")
    fig.suptitle(f"cloudchain storage and privacy{stamp}")
    fig.tight_layout()
    files.append(out / "storage_privacy.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return [str(f) for f in files]


def run_30d(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Start the network, play every day, analyse, plot."""
    from .. import launcher
    from ..rounds.driver import run_rounds
    from ..scenario import load_scenario

    out.mkdir(parents=True, exist_ok=True)
    path = out / ("cloudchain-30d-quick.toml" if quick else "cloudchain-30d.toml")
    path.write_text(scenario_text(seed, quick), encoding="utf-8")
    root = out / "net"
    sc = load_scenario(path)
    t0 = time.monotonic()
    launcher.net_up(str(path), root, timeout=300 + 10 * len(sc.nodes))
    up_s = time.monotonic() - t0
    rounds: list[dict[str, Any]] = []
    try:
        for summary in run_rounds(root, sc.total_rounds):
            rounds.append(summary)
            print(f"day {summary['round']}: {summary.get('metrics', {}).get('tasks')} tasks, "
                  f"{summary.get('latency_ms', 0) / 1000:.1f} s", file=sys.stderr, flush=True)
    finally:
        launcher.net_down(root)
    (out / "rounds.json").write_text(json.dumps(rounds, indent=1, default=str))
    res = analyse(root, rounds)
    res.update({"quick": quick, "seed": seed, "net_up_s": round(up_s, 2), "processes": len(sc.nodes)})
    (out / "results.json").write_text(json.dumps(res, indent=1))
    plot(out, res, quick)
    return {k: res[k] for k in ("rounds", "processes", "sla_compliance", "jain_by_group", "privacy")}


HEADLINES = ("sla_compliance", "jain_min", "epsilon_spent", "p2p_read_ms_p50", "chain_record_ms_p50")


def _headlines(res: dict[str, Any]) -> dict[str, Any]:
    jain = list(res["jain_by_group"].values())
    st = res["storage"]
    return {"sla_compliance": res["sla_compliance"], "jain_min": min(jain) if jain else None,
            "epsilon_spent": res["privacy"]["epsilon_spent"], "p2p_read_ms_p50": st["p2p_read_ms"]["p50"],
            "chain_record_ms_p50": st["chain_record_ms"]["p50"]}


def run(ctx: Run, one: Callable[[Path, int, bool], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``--reps N`` networks, one after the other (seed S + r in ``ctx.out/seed-S+r``), and their headline figures
    with 95 % intervals (``cloudchain_reps.json``); one repetition writes straight into ``ctx.out``."""
    one = one or run_30d
    ctx.default_reps(quick=1, default=1, paper=1)
    ctx.record(scenario="cloudchain-30d" + ("-quick" if ctx.quick else ""), quick_edits=dict(QUICK_EDITS)
               if ctx.quick else {})
    ctx.differs("one network run per repetition (default 1): a full run is 33 processes for 30 simulated days")
    if ctx.reps == 1:
        return one(ctx.out, ctx.seed, ctx.quick)
    rows = []
    for rep, seed in enumerate(ctx.seeds):
        one(ctx.out / f"seed-{seed}", seed, ctx.quick)
        res = json.loads((ctx.out / f"seed-{seed}" / "results.json").read_text())
        rows.append({"rep": rep, "seed": seed, **_headlines(res)})
    agg = summarise([{**r, "all": 1} for r in rows], ("all",), HEADLINES)
    write_table(ctx.out, "cloudchain_reps", rows, agg)
    return {k: agg[0][f"{k}_mean"] for k in HEADLINES} | {"reps": ctx.reps}


EXPERIMENTS = {
    "cloudchain-30d": Experiment("cloudchain: the 30-day run on the network (Fig. 2-4, Jain, SLA, privacy)", run),
}


def main(argv: list[str]) -> int:
    """``python -m bazaar.node.experiments.cloudchain RUN_DIR``: re-draw the figures of a run folder."""
    if len(argv) != 1:
        print("usage: python -m bazaar.node.experiments.cloudchain RUN_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    rounds = json.loads((out / "rounds.json").read_text())
    res = analyse(out / "net", rounds)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print("\n".join(plot(out, res, "quick" in json.loads((out / "net" / "net.json").read_text())["scenario"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
