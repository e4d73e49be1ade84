"""Figures of the hierarchical-auction paper (seed 002, Fig. 6–11), each with the MILP optimum drawn in.

* ``hierarchical-welfare``: social welfare and utilisation of DP / greedy / fixed / random sharing versus the
  number of miners (Fig. 6–8), with the joint MILP optimum;
* ``hierarchical-satisfaction``: share of miners served, edge + cloud versus edge-only (Fig. 9);
* ``hierarchical-multi-ccsp``: greedy versus Lagrangian upper level with several CCSPs — utilisation (Fig. 10)
  and total ex-post utility (Fig. 11) — with the joint MILP optimum and the Lagrangian duality gap.

Every point averages seeded trials; the MILP reference runs under a per-solve time limit and the CSV records
whether each one was proven optimal.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bazaar.node.cli_registry import Experiment
from bazaar.node.stdio import quiet_stdout

MILP_SECONDS = 5.0


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _aggregate(rows: list[dict[str, Any]], keys: tuple[str, ...], values: tuple[str, ...]) -> list[dict[str, Any]]:
    import numpy as np

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g, rs in groups.items():
        row: dict[str, Any] = dict(zip(keys, g, strict=True))
        for v in values:
            xs = np.array([r[v] for r in rs], float)
            row[f"{v}_mean"] = float(xs.mean())
            row[f"{v}_std"] = float(xs.std())
        row["trials"] = len(rs)
        out.append(row)
    return out


Series = dict[str, tuple[list[float], ...]]


def _plot(path: Path, panels: list[tuple[str, str, Series]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0))
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (ylabel, _, series) in zip(axes, panels, strict=True):
        for name, (xs, ys, es) in ((k, (v[0], v[1], v[2])) for k, v in series.items()):
            style = {"color": "black", "linestyle": "--"} if name.startswith("MILP") else {"marker": "o"}
            ax.errorbar(xs, ys, yerr=es, label=name, capsize=3, **style)  # type: ignore[arg-type]
        ax.set_xlabel("number of miners")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _series(agg: list[dict[str, Any]], metric: str, names: dict[str, str]) -> Series:
    out: Series = {}
    for method, label in names.items():
        rs = sorted((r for r in agg if r["method"] == method), key=lambda r: r["n_miners"])
        out[label] = ([r["n_miners"] for r in rs], [r[f"{metric}_mean"] for r in rs],
                      [r[f"{metric}_std"] for r in rs])
    return out


def _sweep(quick: bool) -> tuple[list[int], int]:
    return ([6, 12], 2) if quick else ([10, 20, 30, 40, 50, 60], 8)


def run_welfare(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 6–8: welfare and utilisation versus the number of miners, with the joint optimum."""
    import numpy as np

    from bazaar.mechanisms.hierarchical import (
        fixed_bundles,
        joint_milp,
        random_bundles,
        solve_hierarchical,
        solve_with_bundles,
    )
    from bazaar.mechanisms.hierarchical.scenarios import paper_instance

    sizes, trials = _sweep(quick)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for t in range(trials):
            rng = np.random.default_rng([seed, n, t])
            inst, _ = paper_instance(n, rng)
            with quiet_stdout():
                opt = joint_milp(inst, time_limit=MILP_SECONDS)
                outs = {
                    "dp": solve_hierarchical(inst, "dp", "greedy", reference=False),
                    "greedy": solve_hierarchical(inst, "greedy", "greedy", reference=False),
                    "fixed": solve_with_bundles(inst, fixed_bundles(inst), name="fixed"),
                    "random": solve_with_bundles(inst, random_bundles(inst, rng), name="random"),
                }
            served = float(inst.demand[opt.assignment >= 0].sum())
            rows.append({"n_miners": n, "trial": t, "method": "milp", "welfare": opt.welfare,
                         "utilization": served / inst.ccsp_capacity, "proven": opt.proven})
            for name, o in outs.items():
                rows.append({"n_miners": n, "trial": t, "method": name, "welfare": o.welfare,
                             "utilization": o.utilization, "proven": True})
    _write_csv(out / "hierarchical_welfare_trials.csv", rows)
    agg = _aggregate(rows, ("n_miners", "method"), ("welfare", "utilization"))
    _write_csv(out / "hierarchical_welfare.csv", agg)
    names = {"dp": "DP (Alg. 2)", "greedy": "greedy (Alg. 3)", "fixed": "fixed sharing",
             "random": "random sharing", "milp": "MILP optimum"}
    _plot(out / "hierarchical_welfare.png",
          [("social welfare", "welfare", _series(agg, "welfare", names)),
           ("resource utilisation", "utilization", _series(agg, "utilization", names))],
          "Hierarchical auction: welfare and utilisation (paper Fig. 6-8)")
    summary = {
        "rows": len(rows),
        "unproven_milp": sum(1 for r in rows if r["method"] == "milp" and not r["proven"]),
        "mean_ratio_to_optimum": {
            m: float(np.mean([r["welfare"] / o["welfare"] for r in rows if r["method"] == m
                              for o in rows if o["method"] == "milp" and o["n_miners"] == r["n_miners"]
                              and o["trial"] == r["trial"] and o["welfare"] > 0]))
            for m in ("dp", "greedy", "fixed", "random")
        },
    }
    (out / "hierarchical_welfare.json").write_text(json.dumps({"summary": summary, "points": agg}, indent=1))
    return summary


def run_satisfaction(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 9: share of miners served, edge + cloud (DP upper level) versus edge-only."""
    import numpy as np

    from bazaar.mechanisms.hierarchical import edge_only, joint_milp, solve_hierarchical
    from bazaar.mechanisms.hierarchical.scenarios import paper_instance

    sizes, trials = _sweep(quick)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for t in range(trials):
            inst, _ = paper_instance(n, np.random.default_rng([seed, n, t]))
            with quiet_stdout():
                outs = {"edge+cloud": solve_hierarchical(inst, "dp", "greedy", reference=False).assignment,
                        "edge-only": edge_only(inst).assignment,
                        "milp": joint_milp(inst, time_limit=MILP_SECONDS).assignment}
            for name, a in outs.items():
                rows.append({"n_miners": n, "trial": t, "method": name, "satisfaction": float(np.mean(a >= 0))})
    _write_csv(out / "hierarchical_satisfaction_trials.csv", rows)
    agg = _aggregate(rows, ("n_miners", "method"), ("satisfaction",))
    _write_csv(out / "hierarchical_satisfaction.csv", agg)
    names = {"edge+cloud": "edge + cloud (DP)", "edge-only": "edge only", "milp": "MILP optimum"}
    _plot(out / "hierarchical_satisfaction.png",
          [("satisfaction ratio", "satisfaction", _series(agg, "satisfaction", names))],
          "Satisfaction ratio (paper Fig. 9)")
    summary = {m: [round(r["satisfaction_mean"], 4) for r in sorted(agg, key=lambda r: r["n_miners"])
                   if r["method"] == m] for m in names}
    (out / "hierarchical_satisfaction.json").write_text(json.dumps({"summary": summary, "points": agg},
                                                                   indent=1))
    return {"satisfaction": summary, "n_miners": sizes}


def run_multi_ccsp(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Fig. 10–11: greedy versus Lagrangian upper level with several CCSPs, against the joint MILP."""
    import numpy as np

    from bazaar.mechanisms.hierarchical import SShapedEffect, ex_post_valuation, solve_multi_ccsp
    from bazaar.mechanisms.hierarchical.multi_ccsp import multi_joint_milp
    from bazaar.mechanisms.hierarchical.scenarios import multi_ccsp_instance

    sizes, trials = _sweep(quick)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for t in range(trials):
            inst, pop = multi_ccsp_instance(n, np.random.default_rng([seed, n, t]))
            total = float(inst.mesp_capacity.sum() + inst.ccsp_capacity.sum())
            effect = SShapedEffect(reference=total / 4.0)

            def utility(assign: Any, bundles: Any, ccsp_of: Any, inst: Any = inst, pop: Any = pop,
                        effect: Any = effect) -> float:
                served = assign >= 0
                v_post = ex_post_valuation(pop, served, effect)
                asks = sum(float(inst.mesp_ask[j] * inst.demand[i]) for i, j in enumerate(assign) if j >= 0)
                cloud = sum(float(inst.ccsp_ask[k] * bundles[j]) for j, k in enumerate(ccsp_of) if k >= 0)
                return float(v_post.sum()) - asks - cloud

            with quiet_stdout():
                res = {u: solve_multi_ccsp(inst, u, "greedy", reference=False) for u in ("greedy", "lagrangian")}
                opt = multi_joint_milp(inst, MILP_SECONDS)
                from bazaar.mechanisms.hierarchical import exact_clear
                from bazaar.mechanisms.hierarchical.levels import bundle_bids
                from bazaar.mechanisms.hierarchical.multi_ccsp import multi_upper_market

                up_opt = exact_clear(multi_upper_market(inst, bundle_bids(inst.single(), "greedy").values),
                                     "milp").welfare
            for name, o in res.items():
                rows.append({"n_miners": n, "trial": t, "method": name, "utilization": o.utilization,
                             "utility": utility(o.assignment, o.bundles, o.ccsp_of), "welfare": o.welfare,
                             "upper_welfare": o.upper_welfare, "upper_optimum": up_opt,
                             "dual_bound": o.upper_bound})
            a, b, k, w = opt
            rows.append({"n_miners": n, "trial": t, "method": "milp",
                         "utilization": float(inst.demand[a >= 0].sum()) / total, "utility": utility(a, b, k),
                         "welfare": w, "upper_welfare": float("nan"), "upper_optimum": up_opt,
                         "dual_bound": float("nan")})
    _write_csv(out / "hierarchical_multi_ccsp_trials.csv", rows)
    agg = _aggregate(rows, ("n_miners", "method"), ("utilization", "utility", "welfare"))
    _write_csv(out / "hierarchical_multi_ccsp.csv", agg)
    names = {"greedy": "greedy (GA)", "lagrangian": "Lagrangian (LA)", "milp": "MILP optimum"}
    _plot(out / "hierarchical_multi_ccsp.png",
          [("resource utilisation", "utilization", _series(agg, "utilization", names)),
           ("total ex-post utility", "utility", _series(agg, "utility", names))],
          "Several CCSPs: greedy vs Lagrangian (paper Fig. 10-11)")
    lag = [r for r in rows if r["method"] == "lagrangian"]
    summary = {
        "lagrangian_duality_gap_mean": float(np.mean([(r["dual_bound"] - r["upper_welfare"]) / r["dual_bound"]
                                                      for r in lag if r["dual_bound"] > 0])),
        "upper_gap_to_milp": {m: float(np.mean([(r["upper_optimum"] - r["upper_welfare"]) / r["upper_optimum"]
                                                for r in rows if r["method"] == m and r["upper_optimum"] > 0]))
                              for m in ("greedy", "lagrangian")},
    }
    (out / "hierarchical_multi_ccsp.json").write_text(json.dumps({"summary": summary, "points": agg}, indent=1))
    return summary


def _experiment(title: str, fn: Callable[[Path, int, bool], dict[str, Any]]) -> Experiment:
    return Experiment(title=title, run=fn)


EXPERIMENTS: dict[str, Experiment] = {
    "hierarchical-welfare": _experiment("hierarchical auction: welfare and utilisation vs miners (Fig. 6-8)",
                                        run_welfare),
    "hierarchical-satisfaction": _experiment("hierarchical auction: satisfaction edge+cloud vs edge-only (Fig. 9)",
                                             run_satisfaction),
    "hierarchical-multi-ccsp": _experiment("hierarchical auction: greedy vs Lagrangian, several CCSPs (Fig. 10-11)",
                                           run_multi_ccsp),
}
