"""Figures of seed 003 (market ``collab``): portfolio solvers (Fig. 4, 8), pricing iterations (Fig. 5–7),
average prices (Fig. 9–10) and total payoff per pricing algorithm (Fig. 11).

Every point runs once per seed (``--reps``) on freshly drawn sellers and publishers and is drawn as the mean
with a 95 % t-interval band. ``--paper`` runs the paper's setting (pricing: 10–60 participants or 30 sellers and
5→50 publishers, 10 repetitions, 500 iterations; portfolio: 10–100 publishers, 10 repetitions); the default
is smaller so that each experiment takes minutes (``run.json`` lists the differences). ``--literal`` runs the
paper's price rules verbatim (no step damping, docs/adr/0031).
"""

from __future__ import annotations

import time
from typing import Any

from bazaar.node.cli_registry import Experiment

from . import plots
from .repro import Run, write_table
from .stats import summarise

PAPER_PRICING = {"equal": [10, 20, 30, 40, 50, 60], "fixed": [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]}
UNITS = {"time_vs_sgsa": "time / SGSA's time, same instance",
         "payoff_vs_newton": "payoff / Newton's payoff, same instance",
         "time_s": "seconds", "total_payoff": "token", "iterations": "iterations", "equilibrium": "share of runs",
         "avg_compute_price": "token/unit", "avg_data_price": "token/unit"}


def _plot(ctx: Run, name: str, agg: list[dict[str, Any]], x: str, xlabel: str, series: str, ys: list[str],
          title: str, notes: str = "") -> None:
    fig, axes = plots.figure(ctx, ncols=len(ys), size=(5.2, 3.9))
    axes = axes if len(ys) > 1 else [[axes]]
    for ax, y in zip(axes[0], ys, strict=True):
        for s in sorted({r[series] for r in agg}):
            plots.band(ax, [r for r in agg if r[series] == s], x, y, label=str(s), marker="o", ms=3)
        ax.set(xlabel=xlabel, ylabel=UNITS[y] if y in ("time_vs_sgsa", "payoff_vs_newton")
               else f"{y.replace('_', ' ')} ({UNITS.get(y, '')})")
        ax.legend(fontsize=7)
    if notes:
        axes[0][-1].text(0.01, 0.99, notes, transform=axes[0][-1].transAxes, fontsize=6, va="top")
    plots.save(fig, ctx, f"{name}.png", title)


def run_portfolio(ctx: Run) -> dict[str, Any]:
    """Fig. 4/8: time and total payoff of SGSA, Newton and greedy versus the number of publishers."""
    import numpy as np

    from bazaar.mechanisms.collab import Book, optimize_portfolio
    from bazaar.mechanisms.collab.instances import random_publishers, random_sellers
    from bazaar.mechanisms.collab.sgsa import SgsaConfig

    sizes = ctx.pick(quick=[10, 20], default=list(range(10, 101, 30)), paper=list(range(10, 101, 10)))
    ctx.default_reps(quick=2, default=3, paper=10)
    methods = ["sgsa", "newton", "greedy", *(["sgsa-plain"] if ctx.literal else [])]
    ctx.record(publishers=sizes, sellers=10, methods=methods)
    plain = SgsaConfig(restarts=False)  # --literal: the paper's SGSA, one ascent without our restarts
    if not ctx.paper:
        ctx.differs(f"publishers {sizes} (paper: 10..100 by 10), {ctx.reps} repetitions")
    rows: list[dict[str, Any]] = []
    with ctx.progress(len(sizes) * len(ctx.seeds), "publishers x seeds") as advance:
        for rep, seed in enumerate(ctx.seeds):
            book = Book.from_sellers(random_sellers(np.random.default_rng(seed), 10))  # providers fixed per seed
            for j in sizes:
                pubs = random_publishers(np.random.default_rng([seed, j]), j)
                for m in methods:
                    t0 = time.perf_counter()
                    if m == "sgsa-plain":
                        pay = sum(optimize_portfolio(p, book, "sgsa", sgsa=plain).payoff for p in pubs)
                    else:
                        pay = sum(optimize_portfolio(p, book, m).payoff for p in pubs)
                    rows.append({"publishers": j, "method": m, "rep": rep, "seed": seed,
                                 "time_s": time.perf_counter() - t0, "total_payoff": pay})
                advance()
    for r in rows:  # paired with the same seed and size: payoff relative to Newton, time relative to SGSA
        same = {o["method"]: o for o in rows if o["seed"] == r["seed"] and o["publishers"] == r["publishers"]}
        r["payoff_vs_newton"] = r["total_payoff"] / same["newton"]["total_payoff"]
        r["time_vs_sgsa"] = r["time_s"] / same["sgsa"]["time_s"]
    agg = summarise(rows, ("publishers", "method"), ("time_s", "total_payoff", "payoff_vs_newton", "time_vs_sgsa"))
    write_table(ctx.out, "collab_portfolio", rows, agg)
    _plot(ctx, "collab_portfolio", agg, "publishers", "publishers", "method",
          ["time_s", "time_vs_sgsa", "payoff_vs_newton"], "Portfolio solvers (paper Fig. 4, 8)",
          "time: wall clock on this shared machine; ratios are paired per instance\n"
          "SGSA and Newton reach the same payoff: their ratio lines coincide at 1")
    last = {r["method"]: r for r in agg if r["publishers"] == sizes[-1]}
    return {"publishers": sizes[-1],
            "time_ratio_newton_over_sgsa": last["newton"]["time_vs_sgsa_mean"],
            "time_ratio_newton_over_sgsa_ci": [last["newton"]["time_vs_sgsa_lo"], last["newton"]["time_vs_sgsa_hi"]],
            "payoff_ratio_sgsa_vs_newton": last["sgsa"]["total_payoff_mean"] / last["newton"]["total_payoff_mean"]}


def _pricing_rows(ctx: Run, mode: str, seed_offset: int = 0) -> list[dict[str, Any]]:
    import numpy as np

    from bazaar.mechanisms.collab import ALGORITHMS, PricingConfig, run_pricing
    from bazaar.mechanisms.collab.instances import random_publishers, random_sellers

    # Fig. 5/7: sellers = publishers = n; Fig. 6, 9–11: fixed sellers, growing publishers. One pricing run of
    # 10 x 10 costs 2-22 s per algorithm (every iteration re-solves every publisher's portfolio).
    default = [6, 10, 14] if mode == "equal" else [5, 10, 15]
    sizes = ctx.pick(quick=[4, 6] if mode == "equal" else [4, 8], default=default, paper=PAPER_PRICING[mode])
    sellers_fixed = ctx.pick(quick=4, default=10, paper=30)
    max_iter = ctx.pick(quick=20, default=200, paper=500)
    ctx.default_reps(quick=2, default=3, paper=10)
    defaults = PricingConfig()
    damping = 1.0 if ctx.literal else defaults.damping
    ctx.record(sizes=sizes, mode=mode, sellers=("= publishers" if mode == "equal" else sellers_fixed),
               max_iter=max_iter, evo_population=defaults.evo_population, damping=damping,
               tapa_step_limits=[defaults.step_min, defaults.step_max], tol=defaults.tol)
    if not ctx.paper:
        ctx.differs(f"sizes {sizes} (paper: {PAPER_PRICING[mode]}), {ctx.reps} repetitions, {max_iter} iterations "
                    f"(paper: 500), {sellers_fixed if mode == 'fixed' else 'n'} sellers")
    rows = []
    with ctx.progress(len(sizes) * len(ALGORITHMS) * len(ctx.seeds), f"{mode}: size x algorithm x seed") as advance:
        for rep, seed in enumerate(ctx.seeds):
            for n in sizes:
                rng = np.random.default_rng([seed + seed_offset, n])
                sellers = random_sellers(rng, n if mode == "equal" else sellers_fixed)
                pubs = random_publishers(rng, n)
                for alg in ALGORITHMS:
                    t0 = time.perf_counter()
                    res = run_pricing(sellers, pubs, alg, PricingConfig(max_iter=max_iter, seed=seed, damping=damping))
                    rows.append({"size": n, "algorithm": alg, "rep": rep, "seed": seed, "max_iter": max_iter,
                                 "iterations": res.iterations, "equilibrium": float(res.equilibrium),
                                 "avg_compute_price": float(np.mean(res.compute_prices)),
                                 "avg_data_price": float(np.mean(res.data_prices)),
                                 "total_payoff": res.total_payoff, "time_s": time.perf_counter() - t0})
                    advance()
    return rows


_VALUES = ("iterations", "equilibrium", "avg_compute_price", "avg_data_price", "total_payoff", "time_s")


def _rule(ctx: Run) -> str:
    return "paper's rules (no damping)" if ctx.literal else "damped steps (ADR 0031; --literal: paper's rules)"


def run_pricing_iters(ctx: Run) -> dict[str, Any]:
    """Fig. 5–7: iterations to equilibrium per algorithm versus market size (sellers = publishers)."""
    rows = _pricing_rows(ctx, "equal")
    agg = summarise(rows, ("size", "algorithm"), _VALUES)
    write_table(ctx.out, "collab_pricing", rows, agg)
    _plot(ctx, "collab_pricing", agg, "size", "sellers = publishers", "algorithm", ["iterations", "equilibrium"],
          f"Iterations to equilibrium (paper Fig. 5-7); cap = {rows[0]['max_iter']} iterations; {_rule(ctx)}")
    return {"rows": len(rows), "equilibrium_share": sum(r["equilibrium"] for r in rows) / len(rows)}


def run_prices(ctx: Run) -> dict[str, Any]:
    """Fig. 9–10: average compute and data prices versus publishers (fixed sellers)."""
    rows = _pricing_rows(ctx, "fixed")
    agg = summarise(rows, ("size", "algorithm"), _VALUES)
    write_table(ctx.out, "collab_prices", rows, agg)
    _plot(ctx, "collab_prices", agg, "size", "publishers", "algorithm", ["avg_compute_price", "avg_data_price"],
          f"Average prices vs publishers (paper Fig. 9-10); {_rule(ctx)}")
    return {"rows": len(rows)}


def run_payoff(ctx: Run) -> dict[str, Any]:
    """Fig. 11: total publisher payoff per pricing algorithm versus publishers (fixed sellers)."""
    rows = _pricing_rows(ctx, "fixed", seed_offset=1000)
    agg = summarise(rows, ("size", "algorithm"), _VALUES)
    write_table(ctx.out, "collab_payoff", rows, agg)
    _plot(ctx, "collab_payoff", agg, "size", "publishers", "algorithm", ["total_payoff", "iterations"],
          f"Total payoff per pricing algorithm (paper Fig. 11); {_rule(ctx)}")
    best = {}
    for n in sorted({r["size"] for r in agg}):
        pts = [r for r in agg if r["size"] == n]
        top = max(pts, key=lambda r: r["total_payoff_mean"])
        best[n] = {"algorithm": top["algorithm"], "mean": top["total_payoff_mean"],
                   "ci": [top["total_payoff_lo"], top["total_payoff_hi"]]}
    return {"rows": len(rows), "best_by_size": best}


EXPERIMENTS = {
    "collab-portfolio": Experiment("collab: SGSA / Newton / greedy time and payoff vs publishers (Fig. 4, 8)",
                                   run_portfolio),
    "collab-pricing": Experiment("collab: iterations to equilibrium per pricing algorithm (Fig. 5-7)",
                                 run_pricing_iters),
    "collab-prices": Experiment("collab: average prices vs publishers (Fig. 9-10)", run_prices),
    "collab-payoff": Experiment("collab: total payoff per pricing algorithm (Fig. 11)", run_payoff),
}
