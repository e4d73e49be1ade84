"""Figures of the hierarchical-auction paper (seed 002, Fig. 6–11), each with the MILP optimum drawn in.

* ``hierarchical-welfare``: social welfare and utilisation of DP / greedy / fixed / random sharing versus the
  number of miners (Fig. 6–8), with the joint MILP optimum;
* ``hierarchical-satisfaction``: share of miners served, edge + cloud versus edge-only (Fig. 9);
* ``hierarchical-multi-ccsp``: greedy versus Lagrangian upper level with several CCSPs — utilisation (Fig. 10)
  and total ex-post utility (Fig. 11) — with the joint MILP optimum and the Lagrangian duality gap.

Every point averages ``--reps`` seeded trials (mean with a 95 % t-interval band); the MILP reference runs
under a per-solve time limit (5 s quick, 30 s default, 600 s ``--paper``), every trial records whether it was
proven optimal, and a point with an unproven solve is circled in red and counted in the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bazaar.node.cli_registry import Experiment
from bazaar.node.stdio import quiet_stdout

from . import plots
from .repro import Run, write_table
from .stats import summarise

MILP_SECONDS = {"quick": 5.0, "default": 30.0, "paper": 600.0}
"""Per-solve HiGHS time limit of the MILP reference; a solve it stops is marked "not proven optimal"."""


def _milp_limit(ctx: Run) -> float:
    limit = MILP_SECONDS[ctx.mode]
    ctx.record(milp_time_limit_s=limit)
    return limit


def _trials(ctx: Run) -> list[int]:
    sizes = ctx.pick(quick=[6, 12], default=[10, 20, 30, 40, 50, 60])
    ctx.default_reps(quick=2, default=8, paper=20)
    ctx.record(n_miners=sizes, trials_per_size=ctx.reps,
               trial_seed="numpy default_rng([seed + rep, n_miners, 0])")
    return sizes


Series = dict[str, list[dict[str, Any]]]


def _plot(ctx: Run, name: str, panels: list[tuple[str, str, Series]], title: str, note: str = "") -> None:
    fig, axes = plots.figure(ctx, ncols=len(panels), size=(5.4, 4.2))
    axes = axes if len(panels) > 1 else [[axes]]
    for ax, (ylabel, metric, series) in zip(axes[0], panels, strict=True):
        for label, pts in series.items():
            style: dict[str, Any] = ({"color": "black", "linestyle": "--"} if label.startswith("MILP")
                                     else {"marker": "o", "ms": 3})
            plots.band(ax, pts, "n_miners", metric, label=label, **style)
            bad = [r for r in pts if r.get("unproven", 0)]
            if bad:
                ax.scatter([r["n_miners"] for r in bad], [r[f"{metric}_mean"] for r in bad], s=70,
                           facecolors="none", edgecolors="red", zorder=5,
                           label="MILP not proven optimal (time limit): best found")
        ax.set(xlabel="number of miners", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if note:
        axes[0][0].text(0.01, 0.01, note, transform=axes[0][0].transAxes, fontsize=6, va="bottom")
    plots.save(fig, ctx, f"{name}.png", title)


def _series(agg: list[dict[str, Any]], names: dict[str, str]) -> Series:
    return {label: sorted((r for r in agg if r["method"] == m), key=lambda r: r["n_miners"])
            for m, label in names.items()}


def _mark_unproven(agg: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    for r in agg:
        r["unproven"] = sum(1 for t in rows if t["method"] == r["method"] and t["n_miners"] == r["n_miners"]
                            and not t.get("proven", True))


def _milp_label(rows: list[dict[str, Any]]) -> str:
    milp = [r for r in rows if r["method"] == "milp"]
    bad = sum(1 for r in milp if not r["proven"])
    return "MILP optimum (all proven)" if bad == 0 else f"MILP reference ({bad}/{len(milp)} not proven optimal)"


def run_welfare(ctx: Run) -> dict[str, Any]:
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

    sizes, limit = _trials(ctx), _milp_limit(ctx)
    rows: list[dict[str, Any]] = []
    with ctx.progress(len(sizes) * len(ctx.seeds), "miners x trials") as advance:
        for rep, seed in enumerate(ctx.seeds):
            for n in sizes:
                rng = np.random.default_rng([seed, n, 0])
                inst, _ = paper_instance(n, rng)
                with quiet_stdout():
                    opt = joint_milp(inst, time_limit=limit)
                    outs = {
                        "dp": solve_hierarchical(inst, "dp", "greedy", reference=False),
                        "greedy": solve_hierarchical(inst, "greedy", "greedy", reference=False),
                        "fixed": solve_with_bundles(inst, fixed_bundles(inst), name="fixed"),
                        "random": solve_with_bundles(inst, random_bundles(inst, rng), name="random"),
                    }
                served = float(inst.demand[opt.assignment >= 0].sum())
                tag = {"n_miners": n, "rep": rep, "seed": seed}
                rows.append({**tag, "method": "milp", "welfare": opt.welfare,
                             "utilization": served / inst.ccsp_capacity, "proven": opt.proven,
                             "milp_bound": opt.bound})
                for name, o in outs.items():
                    rows.append({**tag, "method": name, "welfare": o.welfare, "utilization": o.utilization,
                                 "proven": True, "milp_bound": None})
                advance()
    agg = summarise(rows, ("n_miners", "method"), ("welfare", "utilization"))
    _mark_unproven(agg, rows)
    names = {"dp": "DP (Alg. 2)", "greedy": "greedy (Alg. 3)", "fixed": "fixed sharing",
             "random": "random sharing", "milp": _milp_label(rows)}
    unproven = sum(1 for r in rows if r["method"] == "milp" and not r["proven"])
    summary = {
        "unproven_milp": unproven, "milp_solves": sum(1 for r in rows if r["method"] == "milp"),
        "milp_time_limit_s": limit,
        "mean_ratio_to_reference": {
            m: float(np.mean([r["welfare"] / o["welfare"] for r in rows if r["method"] == m
                              for o in rows if o["method"] == "milp" and o["n_miners"] == r["n_miners"]
                              and o["rep"] == r["rep"] and o["welfare"] > 0]))
            for m in ("dp", "greedy", "fixed", "random")
        },
        "reference_is_optimum": unproven == 0,
    }
    write_table(ctx.out, "hierarchical_welfare", rows, agg, result=summary)
    _plot(ctx, "hierarchical_welfare",
          [("social welfare (token)", "welfare", _series(agg, names)),
           ("resource utilisation (share of CCSP capacity)", "utilization", _series(agg, names))],
          "Hierarchical auction: welfare and utilisation (paper Fig. 6-8)",
          "methods with equal values at a size are drawn over each other")
    return summary


def run_satisfaction(ctx: Run) -> dict[str, Any]:
    """Fig. 9: share of miners served, edge + cloud (DP upper level) versus edge-only."""
    import numpy as np

    from bazaar.mechanisms.hierarchical import edge_only, joint_milp, solve_hierarchical
    from bazaar.mechanisms.hierarchical.scenarios import paper_instance

    sizes, limit = _trials(ctx), _milp_limit(ctx)
    rows: list[dict[str, Any]] = []
    with ctx.progress(len(sizes) * len(ctx.seeds), "miners x trials") as advance:
        for rep, seed in enumerate(ctx.seeds):
            for n in sizes:
                inst, _ = paper_instance(n, np.random.default_rng([seed, n, 0]))
                with quiet_stdout():
                    opt = joint_milp(inst, time_limit=limit)
                    outs = {"edge+cloud": (solve_hierarchical(inst, "dp", "greedy", reference=False).assignment,
                                           True),
                            "edge-only": (edge_only(inst).assignment, True),
                            "milp": (opt.assignment, opt.proven)}
                for name, (a, proven) in outs.items():
                    rows.append({"n_miners": n, "rep": rep, "seed": seed, "method": name,
                                 "satisfaction": float(np.mean(a >= 0)), "proven": proven})
                advance()
    agg = summarise(rows, ("n_miners", "method"), ("satisfaction",))
    _mark_unproven(agg, rows)
    names = {"edge+cloud": "edge + cloud (DP)", "edge-only": "edge only",
             "milp": _milp_label(rows).replace("optimum", "welfare optimum")}
    summary = {m: {r["n_miners"]: [r["satisfaction_mean"], r["satisfaction_lo"], r["satisfaction_hi"]]
                   for r in sorted(agg, key=lambda r: r["n_miners"]) if r["method"] == m} for m in names}
    write_table(ctx.out, "hierarchical_satisfaction", rows, agg, result=summary)
    _plot(ctx, "hierarchical_satisfaction",
          [("satisfaction ratio (share of miners served)", "satisfaction", _series(agg, names))],
          "Satisfaction ratio (paper Fig. 9)", "the MILP maximises welfare, not the number served")
    return {"satisfaction": summary, "n_miners": sizes}


def run_multi_ccsp(ctx: Run) -> dict[str, Any]:
    """Fig. 10–11: greedy versus Lagrangian upper level with several CCSPs, against the joint MILP."""
    import numpy as np

    from bazaar.mechanisms.hierarchical import SShapedEffect, ex_post_valuation, exact_clear, solve_multi_ccsp
    from bazaar.mechanisms.hierarchical.levels import bundle_bids
    from bazaar.mechanisms.hierarchical.multi_ccsp import multi_joint_milp_status, multi_upper_market
    from bazaar.mechanisms.hierarchical.scenarios import multi_ccsp_instance

    sizes, limit = _trials(ctx), _milp_limit(ctx)
    ctx.differs("the Lagrangian upper level (LA) runs a 1-opt improvement and a repair step that the greedy "
                "(GA) lacks; a third curve gives GA the same 1-opt search (GA + 1-opt), separating the two effects")
    rows: list[dict[str, Any]] = []
    with ctx.progress(len(sizes) * len(ctx.seeds), "miners x trials") as advance:
        for rep, seed in enumerate(ctx.seeds):
            for n in sizes:
                inst, pop = multi_ccsp_instance(n, np.random.default_rng([seed, n, 0]))
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
                    res = {u: solve_multi_ccsp(inst, u, "greedy", reference=False)
                           for u in ("greedy", "greedy-1opt", "lagrangian")}
                    a, b, k, w, proven = multi_joint_milp_status(inst, limit)
                    up_opt = exact_clear(multi_upper_market(inst, bundle_bids(inst.single(), "greedy").values),
                                         "milp").welfare
                tag = {"n_miners": n, "rep": rep, "seed": seed}
                for name, o in res.items():
                    rows.append({**tag, "method": name, "utilization": o.utilization,
                                 "utility": utility(o.assignment, o.bundles, o.ccsp_of), "welfare": o.welfare,
                                 "upper_welfare": o.upper_welfare, "upper_optimum": up_opt,
                                 "dual_bound": o.upper_bound, "proven": True})
                rows.append({**tag, "method": "milp", "utilization": float(inst.demand[a >= 0].sum()) / total,
                             "utility": utility(a, b, k), "welfare": w, "upper_welfare": None,
                             "upper_optimum": up_opt, "dual_bound": None, "proven": proven})
                advance()
    agg = summarise(rows, ("n_miners", "method"), ("utilization", "utility", "welfare"))
    _mark_unproven(agg, rows)
    names = {"greedy": "greedy (GA, no local search)", "greedy-1opt": "GA + the same 1-opt search",
             "lagrangian": "Lagrangian (LA, with 1-opt + repair)",
             "milp": _milp_label(rows)}
    lag = [r for r in rows if r["method"] == "lagrangian"]
    summary = {
        "lagrangian_duality_gap_mean": float(np.mean([(r["dual_bound"] - r["upper_welfare"]) / r["dual_bound"]
                                                      for r in lag if r["dual_bound"] > 0])),
        "upper_gap_to_milp": {m: float(np.mean([(r["upper_optimum"] - r["upper_welfare"]) / r["upper_optimum"]
                                                for r in rows if r["method"] == m and r["upper_optimum"] > 0]))
                              for m in ("greedy", "greedy-1opt", "lagrangian")},
        "unproven_milp": sum(1 for r in rows if r["method"] == "milp" and not r["proven"]),
        "milp_time_limit_s": limit,
    }
    write_table(ctx.out, "hierarchical_multi_ccsp", rows, agg, result=summary)
    _plot(ctx, "hierarchical_multi_ccsp",
          [("resource utilisation (share of MESP + CCSP capacity)", "utilization", _series(agg, names)),
           ("total ex-post utility (token)", "utility", _series(agg, names))],
          "Several CCSPs: greedy vs Lagrangian (paper Fig. 10-11)",
          "where LA reaches the MILP's value the two lines coincide (MILP dashed on top)")
    return summary


def _experiment(title: str, fn: Callable[[Run], dict[str, Any]]) -> Experiment:
    return Experiment(title=title, run=fn)


EXPERIMENTS: dict[str, Experiment] = {
    "hierarchical-welfare": _experiment("hierarchical auction: welfare and utilisation vs miners (Fig. 6-8)",
                                        run_welfare),
    "hierarchical-satisfaction": _experiment("hierarchical auction: satisfaction edge+cloud vs edge-only (Fig. 9)",
                                             run_satisfaction),
    "hierarchical-multi-ccsp": _experiment("hierarchical auction: greedy vs Lagrangian, several CCSPs (Fig. 10-11)",
                                           run_multi_ccsp),
}
