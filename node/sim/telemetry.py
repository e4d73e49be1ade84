"""Per-round telemetry of a simulation: prices, welfare, fairness (Jain's index) and the gap to the offline
solver's outcome on the same input, as JSON rows and plots (docs/sim.md, "Telemetry").

Each market has one extractor turning the round engine's summary into a row; the generic fields come first::

    {round, wall_s, virtual_s, height, final, participants, left_out, price, welfare, jain,
     offline_welfare, equilibrium_gap, ...market fields}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .world import RoundRecord, SimResult

Extractor = Callable[[dict[str, Any], Path], dict[str, Any]]


def jain(values: list[float]) -> float:
    """Jain's fairness index ``(Σx)² / (n·Σx²)``; 1.0 for no values or all zeros."""
    sq = sum(x * x for x in values)
    return 1.0 if not values or sq == 0 else sum(values) ** 2 / (len(values) * sq)


def _cloudchain(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """Mean unit price of the served tasks, welfare Σ value·units of the served tasks (payments are transfers),
    Jain's index over the providers' utilisation; the offline contract on the same round's tasks (every task
    posted in time: ``bazaar solve cloudchain-allocate --scenario S --round R``) gives the reference welfare and
    allocation."""
    from bazaar.mechanisms.cloudchain.contract import allocate

    from ..solve.cloudchain import from_scenario

    providers, tasks = from_scenario(str(scenario), int(summary["round"]))
    by_id = {t.id: t for t in tasks}
    by_name = {p.name: p for p in providers}
    outcome, metrics = summary.get("outcome", {}), summary.get("metrics", {})
    net_alloc: dict[str, str | None] = outcome.get("allocation", {})
    served = [(by_id[t], by_name[p]) for t, p in net_alloc.items() if p and t in by_id and p in by_name]
    welfare = sum(t.value * t.units for t, _ in served)
    units = sum(t.units for t, _ in served)
    price = sum(p.price * t.units for t, p in served) / units if units else None
    alloc = allocate(tasks, providers)
    offline = {t.id: (providers[j].name if j >= 0 else None) for t, j in zip(tasks, alloc.assignment, strict=True)}
    off_welfare = sum(t.value * t.units for t, j in zip(tasks, alloc.assignment, strict=True) if j >= 0)
    agree = sum(1 for tid, p in offline.items() if net_alloc.get(tid) == p)
    return {"price": price, "welfare": welfare, "jain": metrics.get("jain"), "offline_welfare": off_welfare,
            "equilibrium_gap": abs(off_welfare - welfare) / off_welfare if off_welfare else 0.0,
            "allocation_agreement": agree / len(offline) if offline else 1.0,
            "tasks": metrics.get("tasks"), "served": metrics.get("served"),
            "sla_compliance": metrics.get("sla_compliance"), "paid": metrics.get("paid"),
            "penalised": metrics.get("penalised"), "verdicts": metrics.get("verdicts")}


def _ai_bazaar(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """The posted price, welfare = the CPP's plus the consumers' profits, Jain's index over the consumers'
    demands, and the gap to the Stackelberg equilibrium the CPP's offline solver computes for the consumers who
    answered (relative profit gap; the absolute price gap beside it)."""
    eq = summary.get("equilibrium", {})
    consumer = summary.get("consumer_profit", {})
    welfare = float(summary.get("cpp_profit", 0.0)) + sum(consumer.values())
    demands = [float(v) for v in summary.get("demand", {}).values()]
    eq_profit = eq.get("cpp_profit")
    return {"price": summary.get("price"), "welfare": welfare, "jain": jain(demands),
            "offline_price": eq.get("price"), "offline_cpp_profit": eq_profit, "cpp_profit": summary.get("cpp_profit"),
            "equilibrium_gap": (abs(float(summary.get("cpp_profit", 0.0)) - eq_profit) / abs(eq_profit)
                                if eq_profit else None),
            "price_gap": summary.get("price_gap"), "total_demand": sum(demands), "winner": summary.get("winner")}


def _generic(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """Markets without an extractor: their own metrics, as the round engine reports them."""
    return {"metrics": summary.get("metrics", {})}


EXTRACTORS: dict[str, Extractor] = {"cloudchain": _cloudchain, "ai-bazaar": _ai_bazaar}


def round_row(market: str, record: RoundRecord, scenario: Path) -> dict[str, Any]:
    """The telemetry row of one round."""
    s = record.summary
    row: dict[str, Any] = {"round": s.get("round"), "wall_s": round(record.wall_s, 4),
                           "cpu_s": round(record.cpu_s, 4),
                           "virtual_s": round(record.virtual_s, 3), "height": s.get("height"),
                           "final": s.get("final"), "participants": len(s.get("participants", [])),
                           "left_out": len(s.get("left_out", []))}
    row.update(EXTRACTORS.get(market, _generic)(s, scenario))
    return row


def report(result: SimResult, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's JSON document: ``agents``, ``rounds``, ``head_hash``, ``wall_s_per_round`` first."""
    pop = result.population
    walls = [r.wall_s for r in result.rounds]
    cpus = [r.cpu_s for r in result.rounds]
    return {"agents": pop.agents, "rounds": len(result.rounds), "head_hash": result.head_hash,
            "wall_s_per_round": round(sum(walls) / len(walls), 4) if walls else None,
            "cpu_s_per_round": round(sum(cpus) / len(cpus), 4) if cpus else None,
            "market": pop.market, "seed": result.seed, "nodes": pop.nodes, "hosted_agents": pop.hosted,
            "head_height": result.head_height, "one_head": result.one_head,
            "virtual_s": round(result.virtual_s, 3), "start_wall_s": round(result.start_wall_s, 3),
            "messages": result.transport, "rejected": result.rejected, "events": result.events, "per_round": rows}


def write(out: Path, doc: dict[str, Any]) -> list[Path]:
    """``telemetry.json`` and the plots into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "telemetry.json"
    path.write_text(json.dumps(doc, indent=1))
    return [path, *plot(out, doc)]


def plot(out: Path, doc: dict[str, Any]) -> list[Path]:
    """Price, welfare against the offline solver's, Jain's index and the equilibrium gap per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["per_round"]
    xs = [r["round"] for r in rows]

    def col(name: str) -> list[float]:
        return [float("nan") if r.get(name) is None else float(r[name]) for r in rows]

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    axes[0][0].plot(xs, col("price"), marker="o", label="network")
    if any(r.get("offline_price") is not None for r in rows):
        axes[0][0].plot(xs, col("offline_price"), ls="--", label="offline solver")
    axes[0][0].set_title("price")
    axes[0][0].legend(fontsize=8)
    axes[0][1].plot(xs, col("welfare"), marker="o", label="network")
    if any(r.get("offline_welfare") is not None for r in rows):
        axes[0][1].plot(xs, col("offline_welfare"), ls="--", label="offline solver")
    axes[0][1].set_title("welfare")
    axes[0][1].legend(fontsize=8)
    axes[1][0].plot(xs, col("jain"), marker="o")
    axes[1][0].set_ylim(0, 1.05)
    axes[1][0].set_title("fairness (Jain's index)")
    axes[1][1].plot(xs, col("equilibrium_gap"), marker="o")
    axes[1][1].set_title("gap to the offline solver (relative)")
    for ax in axes[1]:
        ax.set_xlabel("round")
    fig.suptitle(f"bazaar sim: {doc['market']}, {doc['agents']} agents, seed {doc['seed']}, "
                 f"{doc['wall_s_per_round']} s wall per round")
    fig.tight_layout()
    file = out / "telemetry.png"
    fig.savefig(file, dpi=100)
    plt.close(fig)
    return [file]
