"""Experiments of market ``ai-bazaar`` (seed 000): PB-MARL convergence (Fig. 6) and profits (Fig. 7–9).

``bazaar experiment ai-bazaar-convergence`` and ``bazaar experiment ai-bazaar-profits`` write CSV + JSON + PNG.
Both use the calibrated parameter set ``deploy/scenarios/params/ai-bazaar-calibrated.toml`` (with the paper's
Table 1 every learner trivially ends at the corner p = p_max, F = F_max).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bazaar.deploy import shipped_file
from bazaar.node.cli_registry import Experiment
from bazaar.node.params import read_toml

from . import plots
from .repro import Run, write_csv, write_table
from .stats import mean_ci, median_ci, median_ci_coverage, summarise


def _calibrated() -> Any:
    from bazaar.mechanisms.ai_bazaar import Params

    return Params.from_mapping(read_toml(shipped_file("params", "ai-bazaar-calibrated")))


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


CONVERGENCE_LEARNERS = ("pb-marl", "pga-app", "giga-wolf", "minimax-q")


def _convergence_rep(params: Any, learner: str, episodes: int, levels: int, window: int, seed: int,
                     p_disc: float, step: float, every: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One learner, one seed: its convergence record and its moving averages sampled every ``every`` episodes."""
    import numpy as np

    from bazaar.mechanisms.ai_bazaar import episodes_to_converge, run_learning

    tr = run_learning(params, learner, episodes=episodes, price_levels=levels, seed=seed)
    kernel = np.ones(window) / window
    ma_p = np.convolve(tr.price, kernel, mode="valid")
    ma_u = np.convolve(tr.cpp_profit, kernel, mode="valid")
    reach = episodes_to_converge(ma_p, p_disc, step)
    tail = slice(-max(window, len(tr.price) // 10), None)
    rec = {"learner": learner, "seed": seed, "episodes": len(tr.price),
           "episodes_to_within_one_price_step": None if reach is None else reach + window - 1,
           "final_mean_price": float(tr.price[tail].mean()),
           "final_mean_cpp_profit": float(tr.cpp_profit[tail].mean()),
           "final_mean_consumer_profit": float(tr.consumer_profit[tail].sum(axis=1).mean())}
    curve = [{"learner": learner, "seed": seed, "episode": int(t + window - 1), "price_ma": float(ma_p[t]),
              "cpp_profit_ma": float(ma_u[t])} for t in range(0, len(ma_p), every)]
    return rec, curve


def run_convergence(ctx: Run) -> dict[str, Any]:
    """Price and CPP profit per episode for PB-MARL, PGA-APP, GIGA-WoLF and Minimax-Q over seeds (Fig. 6).

    Every learner runs once per seed; the figure draws the mean moving-average price and CPP profit with 95 %
    bands, and the episodes each run needs to stay within one price step of the discretised equilibrium (one dot
    per seed, the median with its order-statistic interval).
    """
    import numpy as np

    from bazaar.mechanisms.ai_bazaar import discrete_equilibrium_price, solve_stackelberg

    params = _calibrated()
    levels = 11
    step = (params.p_max - params.p_min) / (levels - 1)
    eq = solve_stackelberg(params)
    p_disc = discrete_equilibrium_price(params, levels)
    ctx.default_reps(quick=2, default=3, paper=10)
    full = 20000
    episodes = ctx.pick(quick=dict.fromkeys(CONVERGENCE_LEARNERS, 300),
                        default={**dict.fromkeys(CONVERGENCE_LEARNERS, full), "minimax-q": 8000},
                        paper=dict.fromkeys(CONVERGENCE_LEARNERS, full))
    window = ctx.pick(quick=20, default=200)
    every = max(1, window // 4)
    ctx.record(price_levels=levels, episodes=episodes, moving_average_window=window, curve_sample_every=every,
               convergence="moving-average price within one price step of the discretised equilibrium price "
                           "from that episode to the end of the run")
    if episodes["minimax-q"] < episodes["pb-marl"]:
        ctx.differs(f"Minimax-Q runs {episodes['minimax-q']} episodes (its LP costs ~10 ms/episode), the others "
                    f"{episodes['pb-marl']}; --paper gives it {full}")
    if ctx.quick:
        ctx.differs("300 episodes per learner instead of 20000")
    records: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    with ctx.progress(len(CONVERGENCE_LEARNERS) * len(ctx.seeds), "learner x seed") as advance:
        for seed in ctx.seeds:
            for learner in CONVERGENCE_LEARNERS:
                rec, curve = _convergence_rep(params, learner, episodes[learner], levels, window, seed, p_disc,
                                              step, every)
                records.append(rec)
                curves.extend(curve)
                advance()
    curve_summary = summarise(curves, ("learner", "episode"), ("price_ma", "cpp_profit_ma"))
    conv: dict[str, Any] = {}
    for learner in CONVERGENCE_LEARNERS:
        reach = [r["episodes_to_within_one_price_step"] for r in records if r["learner"] == learner]
        med, lo, hi = median_ci(reach)
        finals = [r["final_mean_price"] for r in records if r["learner"] == learner]
        conv[learner] = {"episodes_run": episodes[learner], "episodes_to_converge_per_seed": reach,
                         "converged_runs": sum(x is not None for x in reach), "runs": len(reach),
                         "median_episodes_to_converge": med, "median_ci_lo": lo, "median_ci_hi": hi,
                         "median_ci_coverage": median_ci_coverage(len(reach)),
                         "final_mean_price": dict(zip(("mean", "lo", "hi"), mean_ci(finals), strict=True))}
    ranking = sorted(CONVERGENCE_LEARNERS, key=lambda m: (conv[m]["median_episodes_to_converge"], m))
    summary = {"stackelberg_price": eq.price, "stackelberg_cpp_profit": eq.cpp_profit,
               "discrete_equilibrium_price": p_disc, "price_step": step, "window": window, "reps": ctx.reps,
               "ranking_by_median_episodes": ranking, "learners": conv,
               "median_ci": "distribution-free order-statistic interval; a run that never converges counts "
                            "as +inf (null in JSON)"}
    write_table(ctx.out, "convergence", curves, curve_summary, runs=records, convergence=summary)
    write_csv(ctx.out / "convergence_runs.csv", records)

    fig, axes = plots.figure(ctx, ncols=3, size=(5.4, 4.2))
    ax_p, ax_u, ax_c = axes[0]
    for learner in CONVERGENCE_LEARNERS:
        rows = [r for r in curve_summary if r["learner"] == learner]
        plots.band(ax_p, rows, "episode", "price_ma", label=learner, lw=1)
        plots.band(ax_u, rows, "episode", "cpp_profit_ma", label=learner, lw=1)
    plots.reference(ax_p, eq.price, "Stackelberg p* (continuous)")
    plots.reference(ax_p, p_disc, "discretised p* (grid of 11)", linestyle=":", color="grey")
    plots.reference(ax_u, eq.cpp_profit, "Stackelberg U_cpp")
    ax_p.set(xlabel="episode", ylabel=f"price, token/unit ({window}-episode moving mean)", title="Price")
    ax_u.set(xlabel="episode", ylabel=f"CPP profit, token/episode ({window}-episode mean)", title="CPP profit")
    cap = max(episodes.values())
    for i, learner in enumerate(CONVERGENCE_LEARNERS):
        c = conv[learner]
        ys = [cap * 1.08 if x is None else x for x in c["episodes_to_converge_per_seed"]]
        ax_c.scatter(np.full(len(ys), i) + np.linspace(-0.15, 0.15, len(ys)), ys, s=14, alpha=0.7)
        if np.isfinite(c["median_episodes_to_converge"]):
            lo = c["median_ci_lo"]
            hi = min(c["median_ci_hi"], cap * 1.08)
            ax_c.errorbar([i + 0.3], [c["median_episodes_to_converge"]],
                          yerr=[[c["median_episodes_to_converge"] - lo], [hi - c["median_episodes_to_converge"]]],
                          fmt="D", color="black", capsize=3, label="median, order-stat. interval" if i == 0 else None)
    ax_c.axhline(cap * 1.08, color="grey", ls=":", lw=1, label="never within one step (plotted here)")
    ax_c.set_xticks(range(len(CONVERGENCE_LEARNERS)), [f"{m}\n({episodes[m]} ep.)" for m in CONVERGENCE_LEARNERS],
                    fontsize=8)
    ax_c.set(ylabel="episodes until within one price step", title="Episodes to converge, one dot per seed")
    for ax in (ax_p, ax_u, ax_c):
        ax.legend(fontsize=7)
    plots.save(fig, ctx, "convergence.png", "AI-Bazaar Fig. 6: learners against the Stackelberg price")
    return {k: summary[k] for k in ("stackelberg_price", "discrete_equilibrium_price", "reps",
                                    "ranking_by_median_episodes")} | {
        "median_episodes_to_converge": {m: conv[m]["median_episodes_to_converge"] for m in CONVERGENCE_LEARNERS}}


def _tiled(params: Any, n: int) -> Any:
    d = params.to_mapping()
    idx = [i % params.n for i in range(n)]
    d["n"] = n
    for key in ("delta", "u", "m", "beta"):
        d[key] = [d[key][i] for i in idx]
    return type(params).from_mapping(d)


def run_profits(out_dir: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Profits versus β_i, N, λ, B and the block reward (Fig. 7–9), and the GA / PB-MARL comparison (Fig. 8a)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bazaar.mechanisms.ai_bazaar import leader_profit, one_sided_ga, run_learning, solve_stackelberg

    base = _calibrated()
    k = 3 if quick else 9
    focus = 4  # consumer i of Fig. 9: the first "miner" of the calibrated set
    rows: list[list[Any]] = []
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))

    # Fig. 7: the CPP's profit against its price, followers in equilibrium
    ps = np.linspace(base.p_min, base.p_max, 41 if quick else 201)
    ucpp = [leader_profit(base, float(q)) for q in ps]
    eq = solve_stackelberg(base)
    axes[0, 0].plot(ps, ucpp)
    axes[0, 0].axvline(eq.price, color="red", ls="--")
    axes[0, 0].set(xlabel="price p", ylabel="U_cpp(p, F*(p))", title="Fig. 7: CPP profit vs price")
    rows += [["fig7", "price", float(q), float(v), ""] for q, v in zip(ps, ucpp, strict=True)]

    # Fig. 8a: one-sided GA (P1, P2), Stackelberg, PB-MARL
    gens = 20 if quick else 80
    p1 = one_sided_ga(base, "P1", seed=seed, generations=gens)
    p2 = one_sided_ga(base, "P2", seed=seed, generations=gens)
    tr = run_learning(base, "pb-marl", episodes=300 if quick else 20000, seed=seed)
    tail = slice(-max(20, len(tr.price) // 10), None)
    bars = {
        "GA on P1": (p1["cpp_profit"], float(np.sum(p1["consumer_profit"]))),
        "GA on P2": (p2["cpp_profit"], float(np.sum(p2["consumer_profit"]))),
        "Stackelberg": (eq.cpp_profit, float(np.sum(eq.consumer_profit))),
        "PB-MARL": (float(tr.cpp_profit[tail].mean()), float(tr.consumer_profit[tail].sum(axis=1).mean())),
    }
    names = list(bars)
    xs = np.arange(len(names))
    axes[0, 1].bar(xs - 0.2, [bars[n][0] for n in names], 0.4, label="CPP")
    axes[0, 1].bar(xs + 0.2, [bars[n][1] for n in names], 0.4, label="consumers (total)")
    axes[0, 1].set_xticks(xs, names, fontsize=8)
    axes[0, 1].set(title="Fig. 8a: profit balance", ylabel="profit")
    axes[0, 1].legend(fontsize=7)
    rows += [["fig8a", n, 0.0, bars[n][0], bars[n][1]] for n in names]

    # Fig. 8b / 9b: profits versus the number of consumers (calibrated consumers tiled)
    ns = [2, 8, 16] if quick else [2, 4, 6, 8, 10, 12, 16, 20]
    cpp_n, con_n = [], []
    for n in ns:
        e = solve_stackelberg(_tiled(base, n))
        cpp_n.append(e.cpp_profit)
        con_n.append(float(e.consumer_profit[min(focus, n - 1)]))
        rows.append(["fig8b", "N", n, e.cpp_profit, con_n[-1]])
    ax = axes[0, 2]
    ax.plot(ns, cpp_n, "o-", label="CPP")
    ax.plot(ns, con_n, "s-", label=f"consumer {focus}")
    ax.set(xlabel="N", ylabel="profit", title="Fig. 8b/9b: profits vs N")
    ax.legend(fontsize=7)

    # Fig. 9a: consumer i's profit versus its beta_i for three block rewards
    betas = np.linspace(0.05, 0.95, k)
    for R in (2000.0, 4000.0, 8000.0):
        vals = []
        for b in betas:
            beta = base.beta.copy()
            beta[focus] = b
            e = solve_stackelberg(base.with_values(beta=beta, R=R))
            vals.append(float(e.consumer_profit[focus]))
            rows.append(["fig9a", f"R={R:g}", float(b), vals[-1], e.cpp_profit])
        axes[1, 0].plot(betas, vals, "o-", label=f"R={R:g}")
    axes[1, 0].set(xlabel="β_i", ylabel=f"U_{focus}", title="Fig. 9a: consumer profit vs β_i")
    axes[1, 0].legend(fontsize=7)

    # Fig. 9c: CPP profit versus lambda for three block rewards
    lams = np.linspace(0.0, 20.0, k)
    for R in (2000.0, 4000.0, 8000.0):
        vals = []
        for lam in lams:
            e = solve_stackelberg(base.with_values(lam=float(lam), R=R))
            vals.append(e.cpp_profit)
            rows.append(["fig9c", f"R={R:g}", float(lam), e.cpp_profit, float(e.consumer_profit[focus])])
        axes[1, 1].plot(lams, vals, "o-", label=f"R={R:g}")
    axes[1, 1].set(xlabel="λ", ylabel="U_cpp", title="Fig. 9c: CPP profit vs λ")
    axes[1, 1].legend(fontsize=7)

    # Fig. 9d: consumer i's profit versus the block size for three ratios beta_i / beta_others
    sizes = np.linspace(20.0, 1000.0, k)
    for ratio in (0.5, 1.0, 2.0):
        beta = np.full(base.n, 0.3)
        beta[focus] = min(1.0, 0.3 * ratio)
        vals = []
        for size in sizes:
            e = solve_stackelberg(base.with_values(B=float(size), beta=beta))
            vals.append(float(e.consumer_profit[focus]))
            rows.append(["fig9d", f"ratio={ratio:g}", float(size), vals[-1], e.cpp_profit])
        axes[1, 2].plot(sizes, vals, "o-", label=f"β_i/β_-i={ratio:g}")
    axes[1, 2].set(xlabel="block size B", ylabel=f"U_{focus}", title="Fig. 9d: consumer profit vs B")
    axes[1, 2].legend(fontsize=7)

    fig.tight_layout()
    fig.savefig(out_dir / "profits.png", dpi=120)
    plt.close(fig)
    _write_csv(out_dir / "profits.csv", ["figure", "series", "x", "y", "y2"], rows)
    summary = {"stackelberg_price": eq.price, "stackelberg_cpp_profit": eq.cpp_profit,
               "profit_balance": {n: {"cpp": bars[n][0], "consumers": bars[n][1]} for n in names},
               "cpp_profit_vs_N": dict(zip(ns, cpp_n, strict=True))}
    (out_dir / "profits.json").write_text(json.dumps(summary, indent=2))
    return summary


EXPERIMENTS = {
    "ai-bazaar-convergence": Experiment(
        title="AI-Bazaar Fig. 6: PB-MARL vs PGA-APP, Minimax-Q, GIGA-WoLF against the Stackelberg price",
        run=run_convergence,
    ),
    "ai-bazaar-profits": Experiment(
        title="AI-Bazaar Fig. 7-9: profits vs price, beta_i, N, lambda, B; GA on P1/P2 vs PB-MARL",
        run=run_profits,
    ),
}
