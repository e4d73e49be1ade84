"""Per-round telemetry of a simulation: prices, welfare, fairness (Jain's index) and the gap to the offline
solver's outcome on the same input, as JSON rows and plots (docs/sim.md, "Telemetry").

A market's ``SimHooks.extract`` turns the round engine's summary into its fields; the generic ones come first::

    {round, wall_s, virtual_s, height, final, participants, left_out, price, welfare, jain,
     offline_welfare, equilibrium_gap, ...market fields}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..markets.registry import get_spec
from .hooks import sim_hooks
from .world import RoundRecord, SimResult


def _generic(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """Markets without an extractor: their own metrics, as the round engine reports them."""
    return {"metrics": summary.get("metrics", {})}


def round_row(market: str, record: RoundRecord, scenario: Path) -> dict[str, Any]:
    """The telemetry row of one round."""
    s = record.summary
    row: dict[str, Any] = {"round": s.get("round"), "wall_s": round(record.wall_s, 4),
                           "cpu_s": round(record.cpu_s, 4), "load_1m": _load(),
                           "virtual_s": round(record.virtual_s, 3), "height": s.get("height"),
                           "final": s.get("final"), "participants": len(s.get("participants", [])),
                           "left_out": len(s.get("left_out", []))}
    row.update((sim_hooks(get_spec(market)).extract or _generic)(s, scenario))
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
            "rss_max_mb": _rss_max_mb(),
            "messages": result.transport, "rejected": result.rejected, "events": result.events, "per_round": rows}


def _load() -> float | None:
    """The machine's 1-minute load average when the round ended (wall seconds mean little without it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _rss_max_mb() -> float | None:
    """This process's peak resident memory so far in MB (``getrusage``; None where it is not available)."""
    try:
        import resource
    except ImportError:
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KB on Linux


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
