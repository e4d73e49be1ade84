"""Figures of seed 003 (market ``collab``): portfolio solvers (Fig. 4, 8), pricing iterations (Fig. 5–7),
average prices (Fig. 9–10) and total payoff per pricing algorithm (Fig. 11)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from bazaar.node.cli_registry import Experiment


def _write(out: Path, name: str, rows: list[dict[str, Any]]) -> None:
    with (out / f"{name}.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1))


def _plot(out: Path, name: str, rows: list[dict[str, Any]], x: str, series: str, ys: list[str],
          title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ys), figsize=(5 * len(ys), 3.6))
    for ax, y in zip(axes if len(ys) > 1 else [axes], ys, strict=True):
        for s in sorted({r[series] for r in rows}):
            pts = [(r[x], r[y]) for r in rows if r[series] == s]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=str(s))
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=110)
    plt.close(fig)


def run_portfolio(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 4/8: time and total payoff of SGSA, Newton and greedy versus the number of publishers."""
    import numpy as np

    from bazaar.mechanisms.collab import Book, optimize_portfolio
    from bazaar.mechanisms.collab.instances import random_publishers, random_sellers

    sizes = [10, 20] if quick else list(range(10, 101, 10))
    reps = 1 if quick else 5
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(seed)
    book = Book.from_sellers(random_sellers(rng, 10))  # resource providers kept fixed (paper)
    for j in sizes:
        acc: dict[str, list[float]] = {m: [0.0, 0.0] for m in ("sgsa", "newton", "greedy")}
        for r in range(reps):
            pubs = random_publishers(np.random.default_rng([seed, j, r]), j)
            for m in acc:
                t0 = time.perf_counter()
                pay = sum(optimize_portfolio(p, book, m).payoff for p in pubs)
                acc[m][0] += (time.perf_counter() - t0) / reps
                acc[m][1] += pay / reps
        for m, (t, pay) in acc.items():
            rows.append({"publishers": j, "method": m, "time_s": t, "total_payoff": pay})
    _write(out, "collab_portfolio", rows)
    _plot(out, "collab_portfolio", rows, "publishers", "method", ["time_s", "total_payoff"],
          "Portfolio solvers (paper Fig. 4, 8)")
    last: dict[str, dict[str, Any]] = {r["method"]: r for r in rows if r["publishers"] == sizes[-1]}
    speedup = last["newton"]["time_s"] / last["sgsa"]["time_s"]
    return {"publishers": sizes[-1], "speedup_sgsa_vs_newton": speedup,
            "payoff_ratio_sgsa_vs_newton": last["sgsa"]["total_payoff"] / last["newton"]["total_payoff"]}


def _pricing_rows(seed: int, quick: bool, mode: str) -> list[dict[str, Any]]:
    import numpy as np

    from bazaar.mechanisms.collab import ALGORITHMS, PricingConfig, run_pricing
    from bazaar.mechanisms.collab.instances import random_publishers, random_sellers

    # Full sweeps are shrunk from the paper's (10-60 participants, 10 repetitions, 500 iterations in the
    # comparison) so that each experiment finishes in about three minutes on a shared 2-core machine: one
    # pricing run of 10 x 10 costs 2-22 s per algorithm (every iteration re-solves every publisher's portfolio)
    # and grows with sellers x publishers (docs/models/collab.md).
    # Fig. 5/7: sellers = publishers = n; Fig. 6, 9–11: fixed sellers (10), growing publishers
    full = [6, 10, 14] if mode == "equal" else [5, 10, 15]
    sizes = ([4, 6] if mode == "equal" else [4, 8]) if quick else full
    reps = 1
    max_iter = 20 if quick else 200
    rows = []
    for n in sizes:
        for alg in ALGORITHMS:
            acc = {"iterations": 0.0, "equilibrium": 0.0, "avg_compute_price": 0.0, "avg_data_price": 0.0,
                   "total_payoff": 0.0, "time_s": 0.0}
            for r in range(reps):
                rng = np.random.default_rng([seed, n, r])
                sellers = random_sellers(rng, n if mode == "equal" else (4 if quick else 10))
                pubs = random_publishers(rng, n)
                t0 = time.perf_counter()
                res = run_pricing(sellers, pubs, alg, PricingConfig(max_iter=max_iter, seed=seed + r,
                                                                     evo_population=3))
                acc["time_s"] += time.perf_counter() - t0
                acc["iterations"] += res.iterations
                acc["equilibrium"] += float(res.equilibrium)
                acc["avg_compute_price"] += float(np.mean(res.compute_prices))
                acc["avg_data_price"] += float(np.mean(res.data_prices))
                acc["total_payoff"] += res.total_payoff
            rows.append({"size": n, "algorithm": alg, "max_iter": max_iter,
                         **{k: v / reps for k, v in acc.items()}})
    return rows


def run_pricing_iters(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 5–7: iterations to equilibrium per algorithm versus market size (sellers = publishers)."""
    rows = _pricing_rows(seed, quick, "equal")
    _write(out, "collab_pricing", rows)
    _plot(out, "collab_pricing", rows, "size", "algorithm", ["iterations", "equilibrium"],
          "Iterations to equilibrium (paper Fig. 5-7); cap = max_iter")
    return {"rows": len(rows), "equilibrium_share": sum(r["equilibrium"] for r in rows) / len(rows)}


def run_prices(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 9–10: average compute and data prices versus publishers (fixed sellers)."""
    rows = _pricing_rows(seed, quick, "fixed")
    _write(out, "collab_prices", rows)
    _plot(out, "collab_prices", rows, "size", "algorithm", ["avg_compute_price", "avg_data_price"],
          "Average prices vs publishers (paper Fig. 9-10)")
    return {"rows": len(rows)}


def run_payoff(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 11: total publisher payoff per pricing algorithm versus publishers (fixed sellers)."""
    rows = _pricing_rows(seed + 1, quick, "fixed")
    _write(out, "collab_payoff", rows)
    _plot(out, "collab_payoff", rows, "size", "algorithm", ["total_payoff", "iterations"],
          "Total payoff per pricing algorithm (paper Fig. 11)")
    return {"rows": len(rows)}


EXPERIMENTS = {
    "collab-portfolio": Experiment("collab: SGSA / Newton / greedy time and payoff vs publishers (Fig. 4, 8)",
                                   run_portfolio),
    "collab-pricing": Experiment("collab: iterations to equilibrium per pricing algorithm (Fig. 5-7)",
                                 run_pricing_iters),
    "collab-prices": Experiment("collab: average prices vs publishers (Fig. 9-10)", run_prices),
    "collab-payoff": Experiment("collab: total payoff per pricing algorithm (Fig. 11)", run_payoff),
}
