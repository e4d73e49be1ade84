"""``bazaar demo``: the main job on the embedded defaults (README.md).

For each registered market's default scenario, in registration order, it
starts a local network (one OS process per node), runs every scripted round of the scenario's phases with
progress on stderr, checks that every node holds the same finalized head and that tokens are conserved,
prints the market's table (from its spec's report), writes ``OUT/<scenario>/summary.json`` and the market's
plots under ``OUT/plots/``, keeps each node's data dir under ``OUT/<scenario>/nodes/<name>/``, and stops every
process it started. ``OUT/summary.json`` holds every scenario's result. ``--market NAME`` runs only the named
markets' default scenarios. One market's checks run while the next market's network starts (docs/adr/0118).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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


@dataclass
class _Run:
    """One scenario of the demo: its network's folder and what its rounds gave."""

    name: str
    out: Path
    started: float = field(default_factory=time.monotonic)
    info: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def _play(run: _Run, progress: Callable[[str], None]) -> None:
    """Start the scenario's network and run every scripted round; on any failure every process is stopped."""
    sc = load_scenario(run.name)
    progress(f"starting {len(sc.nodes)} node processes of scenario {sc.name} in {run.out}")
    try:
        run.info = launcher.net_up(run.name, run.out, progress=progress)
    except BaseException:
        progress("stopping every node")
        launcher.net_down(run.out)
        raise


def _rounds(run: _Run, progress: Callable[[str], None]) -> None:
    sc = load_scenario(run.name)
    try:
        progress(f"network up in {run.info['up_seconds']} s; running {sc.total_rounds} rounds")
        run.rounds = list(run_rounds(run.out, sc.total_rounds, progress=progress))
        run.status = launcher.net_status(run.out)
    finally:
        progress(f"stopping every node of {sc.name}")
        launcher.net_down(run.out)


def _finish(run: _Run) -> dict[str, Any]:
    """The scenario's checks and figures once its processes are stopped (verify every node's chain, plot)."""
    from .chaintools import verify_data_dir

    sc = load_scenario(run.name)
    spec = get_spec(sc.market_name)
    rounds, status, out = run.rounds, run.status, run.out
    finals = {row["name"]: (row["finalized"], row["finalized_hash"]) for row in status.get("nodes", [])}
    verified = {n: verify_data_dir(out / "nodes" / n) for n, _ in sc.nodes}
    plots = spec.report.plots(rounds, out.parent / "plots") if rounds and spec.report.plots else []
    result = {
        "scenario": sc.name, "market": sc.market_name, "out": str(out),
        "seconds": round(time.monotonic() - run.started, 1),
        "up_seconds": run.info.get("up_seconds"), "rounds": rounds, "nodes": status.get("nodes", []),
        "same_finalized_head": len(set(finals.values())) == 1,
        "chain_verified": all(v["ok"] for v in verified.values()),
        "conserved": all(v.get("conserved") for v in verified.values()), "plots": plots,
    }
    result["ok"] = bool(rounds and all(r.get("final_everywhere") for r in rounds) and result["same_finalized_head"]
                        and result["chain_verified"] and result["conserved"])
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    result["_text"] = (f"{table(spec, rounds)}\n\nnodes: {len(finals)}  same finalized head everywhere: "
                       f"{result['same_finalized_head']}  chains verify: {result['chain_verified']}  "
                       f"tokens conserved: {result['conserved']}\n")
    return result


def _report(result: dict[str, Any]) -> dict[str, Any]:
    print(result.pop("_text"))
    return result


def run_scenarios(scenarios: Sequence[str], out: Path, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every scenario in turn: its network, rounds, checks and figures; every process started is stopped again.

    The checks of one scenario (every node's chain verified, tokens counted, plots drawn — its processes already
    stopped) run in a worker thread while the next scenario's network starts; the next rounds start only once
    they are done, so no round shares the machine with them (docs/adr/0118)."""
    results: list[dict[str, Any]] = []
    pending: Future[dict[str, Any]] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-checks") as checker:
        try:
            for name in scenarios:
                run = _Run(name, out / name)
                try:
                    _play(run, progress)
                finally:
                    if pending is not None:
                        results.append(_report(pending.result()))
                        pending = None
                _rounds(run, progress)
                pending = checker.submit(_finish, run)
        finally:
            if pending is not None:
                results.append(_report(pending.result()))
    return results


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
    results = run_scenarios(scenarios, out, progress)
    summary = {"out": str(out), "scenarios": results, "ok": all(r["ok"] for r in results)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"run folder: {out}  (summary.json, plots/, <scenario>/nodes/<name>/)")
    return 0 if summary["ok"] else 1
