"""``bazaar demo``: the main job on the embedded defaults (README.md).

For each registered market's default scenario, in registration order, it
starts a local network (one OS process per node), runs every scripted round of the scenario's phases with
progress on stderr, checks that every node holds the same finalized head and that tokens are conserved,
prints the market's table (from its spec's report), writes ``OUT/<scenario>/summary.json`` and the market's
plots under ``OUT/plots/``, keeps each node's data dir under ``OUT/<scenario>/nodes/<name>/``, and stops every
process it started. ``OUT/summary.json`` holds every scenario's result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import launcher
from .markets.registry import get_spec, market_names
from .markets.spec import MarketSpec
from .params import ParamError
from .rounds.driver import run_rounds
from .scenario import load_scenario


def demo_scenarios() -> list[str]:
    """The scenarios ``bazaar demo`` runs: every registered market's default, in registration order."""
    return [get_spec(m).default_scenario for m in market_names()]


def table(spec: MarketSpec, rounds: list[dict[str, Any]]) -> str:
    """The market's round table: round and phase, its report columns, then height, final and latency."""
    cols = spec.report.columns
    head = f"{'round':>5} {'phase':22s} " + " ".join(c.header[: c.width].rjust(c.width) for c in cols)
    head += f" {'left out':>8} {'height':>6} {'final':>5} {'ms':>7}"
    lines = [spec.report.title, head, "-" * len(head)]
    for r in rounds:
        cells = " ".join(c.render(r) for c in cols)
        ms = r.get("latency_all_ms")
        lines.append(f"{r['round']:>5} {str(r.get('phase'))[:22]:22s} {cells} {len(r.get('left_out', [])):>8} "
                     f"{r.get('height')!s:>6} {'yes' if r.get('final_everywhere') else 'no':>5} "
                     f"{(f'{ms:.0f}' if ms is not None else '-'):>7}")
    return "\n".join(lines)


def run_scenario(name: str, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """One scenario's network, rounds, checks and figures; every process started is stopped again."""
    from .chaintools import verify_data_dir

    sc = load_scenario(name)
    spec = get_spec(sc.market_name)
    progress(f"starting {len(sc.nodes)} node processes of scenario {sc.name} in {out}")
    t0 = time.monotonic()
    rounds: list[dict[str, Any]] = []
    status: dict[str, Any] = {}
    info: dict[str, Any] = {}
    try:
        info = launcher.net_up(name, out, progress=progress)
        progress(f"network up in {info['up_seconds']} s; running {sc.total_rounds} rounds")
        rounds = list(run_rounds(out, sc.total_rounds, progress=progress))
        status = launcher.net_status(out)
    finally:
        progress("stopping every node")
        launcher.net_down(out)
    finals = {row["name"]: (row["finalized"], row["finalized_hash"]) for row in status.get("nodes", [])}
    verified = {n: verify_data_dir(out / "nodes" / n) for n, _ in sc.nodes}
    plots = spec.report.plots(rounds, out.parent / "plots") if rounds and spec.report.plots else []
    result = {
        "scenario": sc.name, "market": sc.market_name, "out": str(out), "seconds": round(time.monotonic() - t0, 1),
        "up_seconds": info.get("up_seconds"), "rounds": rounds, "nodes": status.get("nodes", []),
        "same_finalized_head": len(set(finals.values())) == 1,
        "chain_verified": all(v["ok"] for v in verified.values()),
        "conserved": all(v.get("conserved") for v in verified.values()), "plots": plots,
    }
    result["ok"] = bool(rounds and all(r.get("final_everywhere") for r in rounds) and result["same_finalized_head"]
                        and result["chain_verified"] and result["conserved"])
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    print(table(spec, rounds))
    print(f"\nnodes: {len(finals)}  same finalized head everywhere: {result['same_finalized_head']}  "
          f"chains verify: {result['chain_verified']}  tokens conserved: {result['conserved']}\n")
    return result


def market_scenarios(markets: Sequence[str]) -> list[str]:
    """The default scenarios of the named markets, in the order given.

    Raises:
        ParamError: an unknown market (key ``--market``), naming the registered ones.
    """
    known = market_names()
    for name in markets:
        if name not in known:
            raise ParamError("--market", f"unknown market {name!r} (markets: {', '.join(known)})")
    return [get_spec(m).default_scenario for m in dict.fromkeys(markets)]


def run_demo(out: Path | None, *, scenarios: Sequence[str] | None = None, markets: Sequence[str] | None = None,
             progress: Callable[[str], None] = lambda _: None) -> int:
    """Run the demo (every market's default scenario, or only ``scenarios`` and the defaults of ``markets``);
    returns the exit code (0 when every round of every scenario settled everywhere).

    Raises:
        ParamError: an unknown market.
    """
    chosen = [*(scenarios or []), *market_scenarios(markets or [])]
    out = out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    scenarios = list(dict.fromkeys(chosen)) or demo_scenarios()
    for name in scenarios:
        if (out / name / "net.json").exists():
            raise launcher.LaunchError(f"{out / name} already holds a network; choose another --out")
    results = [run_scenario(name, out / name, progress) for name in scenarios]
    summary = {"out": str(out), "scenarios": results, "ok": all(r["ok"] for r in results)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"run folder: {out}  (summary.json, plots/, <scenario>/nodes/<name>/)")
    return 0 if summary["ok"] else 1
