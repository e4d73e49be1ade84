"""``bazaar demo``: the main job on the embedded default scenario (SPEC §5).

Starts a local network (one OS process per node), runs every scripted round of the scenario's phases with
progress on stderr, checks that every node holds the same finalized head and that tokens are conserved,
prints a summary table, writes ``OUT/summary.json`` and plots under ``OUT/plots/``, keeps each node's data dir
under ``OUT/nodes/<name>/``, and stops every process it started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import launcher
from .rounds import run_rounds
from .scenario import load_scenario


def _table(rounds: list[dict[str, Any]]) -> str:
    head = (f"{'round':>5} {'phase':24s} {'price':>8} {'p*':>8} {'|p-p*|':>7} {'demand':>8} {'cpp profit':>11} "
            f"{'consumers':>10} {'winner':12s} {'height':>6} {'final':>5} {'ms':>7}")
    lines = [head, "-" * len(head)]
    for r in rounds:
        eq = r.get("equilibrium", {})
        total = sum(r.get("demand", {}).values())
        cons = sum(r.get("consumer_profit", {}).values())
        lines.append(
            f"{r['round']:>5} {r['phase'][:24]:24s} {r['price']:>8.3f} {eq.get('price', float('nan')):>8.3f} "
            f"{r.get('price_gap', float('nan')):>7.3f} {total:>8.1f} {r.get('cpp_profit', 0.0):>11.1f} "
            f"{cons:>10.1f} {str(r.get('winner'))[:12]:12s} {r.get('height')!s:>6} "
            f"{'yes' if r.get('final_everywhere') else 'no':>5} {r.get('latency_all_ms') or float('nan'):>7.0f}")
    return "\n".join(lines)


def _plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    xs = [r["round"] for r in rounds]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(xs, [r["price"] for r in rounds], "o-", label="posted price")
    axes[0].plot(xs, [r.get("equilibrium", {}).get("price", float("nan")) for r in rounds], "k--",
                 label="Stackelberg price p*")
    axes[0].set_xlabel("round")
    axes[0].set_ylabel("price")
    axes[0].legend()
    axes[1].plot(xs, [r.get("cpp_profit", 0.0) for r in rounds], "o-", label="CPP profit")
    axes[1].plot(xs, [r.get("equilibrium", {}).get("cpp_profit", float("nan")) for r in rounds], "k--",
                 label="equilibrium CPP profit")
    axes[1].set_xlabel("round")
    axes[1].legend()
    for r in rounds:
        axes[0].annotate(r["mode"][0], (r["round"], r["price"]), fontsize=7)
    fig.suptitle("ai-bazaar over the network (e = equilibrium mode, l = WoLF-PHC learning)")
    fig.tight_layout()
    path = out / "prices_profits.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def run_demo(out: Path | None, *, scenario: str = "ai-bazaar",
             progress: Callable[[str], None] = lambda _: None) -> int:
    """Run the demo; returns the exit code (0 when every round settled and every node agrees)."""
    out = out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    if (out / "net.json").exists():
        raise launcher.LaunchError(f"{out} already holds a network; choose another --out")
    sc = load_scenario(scenario)
    progress(f"starting {len(sc.nodes)} node processes of scenario {sc.name} in {out}")
    t0 = time.monotonic()
    rounds: list[dict[str, Any]] = []
    status: dict[str, Any] = {}
    try:
        info = launcher.net_up(scenario, out, progress=progress)
        progress(f"network up in {info['up_seconds']} s; running {sc.total_rounds} rounds")
        rounds = list(run_rounds(out, sc.total_rounds, progress=progress))
        status = launcher.net_status(out)
    finally:
        progress("stopping every node")
        launcher.net_down(out)
    from .chaintools import verify_data_dir

    finals = {row["name"]: (row["finalized"], row["finalized_hash"]) for row in status.get("nodes", [])}
    heads = {v for v in finals.values()}
    verified = {name: verify_data_dir(out / "nodes" / name) for name, _ in sc.nodes}
    summary = {
        "scenario": sc.name, "out": str(out), "seconds": round(time.monotonic() - t0, 1),
        "up_seconds": info["up_seconds"], "rounds": rounds, "nodes": status.get("nodes", []),
        "same_finalized_head": len(heads) == 1, "chain_verified": all(v["ok"] for v in verified.values()),
        "conserved": all(v.get("conserved") for v in verified.values()),
        "plots": _plots(rounds, out / "plots") if rounds else [],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(_table(rounds))
    print(f"\nnodes: {len(finals)}  same finalized head everywhere: {summary['same_finalized_head']}  "
          f"chains verify: {summary['chain_verified']}  tokens conserved: {summary['conserved']}")
    print(f"run folder: {out}  (summary.json, plots/, nodes/<name>/)")
    settled = all(r.get("final_everywhere") for r in rounds)
    return 0 if rounds and settled and summary["same_finalized_head"] and summary["chain_verified"] else 1
