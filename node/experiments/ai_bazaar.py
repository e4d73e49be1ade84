"""Experiments of market ``ai-bazaar`` (seed 000): PB-MARL convergence (Fig. 6) and profits (Fig. 7–9).

``bazaar experiment ai-bazaar-convergence`` and ``bazaar experiment ai-bazaar-profits`` write CSV + JSON + PNG.
Both use the calibrated parameter set ``deploy/scenarios/params/ai-bazaar-calibrated.toml`` (with the paper's
Table 1 every learner trivially ends at the corner p = p_max, F = F_max).
"""

from __future__ import annotations

import csv
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


FOCUS = 4  # "consumer i" of Fig. 9: consumer 4 of the calibrated set, its first "miner"


def _tiled(params: Any, n: int, first: int = FOCUS) -> Any:
    """``n`` consumers tiled from the calibrated ones, starting at consumer ``first`` (so it is consumer 0)."""
    d = params.to_mapping()
    idx = [(first + i) % params.n for i in range(n)]
    d["n"] = n
    for key in ("delta", "u", "m", "beta"):
        d[key] = [d[key][i] for i in idx]
    return type(params).from_mapping(d)


def _learned(params: Any, learner: str, episodes: int, seed: int) -> tuple[float, float, float]:
    """``(price, CPP profit, consumers' total profit)`` averaged over the last tenth of one learning run."""
    from bazaar.mechanisms.ai_bazaar import run_learning

    tr = run_learning(params, learner, episodes=episodes, seed=seed)
    tail = slice(-max(20, len(tr.price) // 10), None)
    return (float(tr.price[tail].mean()), float(tr.cpp_profit[tail].mean()),
            float(tr.consumer_profit[tail].sum(axis=1).mean()))


def run_profits(ctx: Run) -> dict[str, Any]:
    """Profits versus price, β_i, N, λ, B and the block reward (Fig. 7–9), GA / PB-MARL balance (Fig. 8a).

    Stackelberg curves are deterministic (one solve per point); the GA baselines and the learners are
    stochastic and run once per seed, drawn as means with 95 % bands.
    """
    import numpy as np

    from bazaar.mechanisms.ai_bazaar import (
        LEARNERS,
        consumer_profit,
        follower_equilibrium,
        leader_profit,
        one_sided_ga,
        solve_stackelberg,
    )

    base = _calibrated()
    ctx.default_reps(quick=2, default=3, paper=10)
    k = ctx.pick(quick=3, default=9, paper=21)
    gens = ctx.pick(quick=20, default=80, paper=200)
    ep_8a = ctx.pick(quick=300, default=20000)
    ep_8b = ctx.pick(quick=150, default=2000, paper=20000)
    ns = ctx.pick(quick=[2, 4], default=[2, 4, 8, 16], paper=[2, 4, 6, 8, 10, 12, 16, 20])
    betas_9b = (0.2, 0.45, 0.7)
    ctx.record(sweep_points=k, ga_generations=gens, ga_population=40, pb_marl_episodes_fig8a=ep_8a,
               learner_episodes_fig8b=ep_8b, consumers_fig8b=ns, focus_consumer=FOCUS, betas_fig9b=betas_9b,
               fig9d_beta_rule="beta_i = ratio x mean(beta of the others), others keep their calibrated beta")
    if not ctx.paper:
        ctx.differs(f"Fig. 8b learners run {ep_8b} episodes per N (paper setting: 20000) and N in {ns}")
    rows: list[dict[str, Any]] = []  # deterministic curves
    reps: list[dict[str, Any]] = []  # one row per seed of every stochastic point
    eq = solve_stackelberg(base)
    fig, axes = plots.figure(ctx, ncols=4, nrows=2, size=(4.6, 3.9))

    # Fig. 7: CPP profit (left panel of the paper: consumers' profit) against the price, followers in equilibrium
    ps = np.linspace(base.p_min, base.p_max, ctx.pick(quick=41, default=201))
    ucpp, ucons = [], []
    for q in ps:
        F = follower_equilibrium(base, float(q))
        ucpp.append(leader_profit(base, float(q)))
        ucons.append(consumer_profit(base, float(q), F))
        rows.append({"figure": "fig7", "series": "equilibrium", "x": float(q), "cpp": ucpp[-1],
                     **{f"consumer_{i}": float(v) for i, v in enumerate(ucons[-1])}})
    ucons_a = np.asarray(ucons)
    ax = axes[0, 0]
    for i in range(base.n):
        ax.plot(ps, ucons_a[:, i], lw=1, label=f"consumer {i}" + (" (business)" if i < 4 else " (miner)"))
    plots.reference(ax, eq.price, "Stackelberg p*", vertical=True, color="red")
    ax.set(xlabel="price p, token/unit", ylabel="U_i(p, F*(p)), token", title="Fig. 7 left: consumers' profit")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[0, 1]
    ax.plot(ps, ucpp, label="U_cpp(p, F*(p))")
    plots.reference(ax, eq.price, "Stackelberg p*", vertical=True, color="red")
    ax.set(xlabel="price p, token/unit", ylabel="U_cpp, token", title="Fig. 7 right: CPP profit")
    ax.legend(fontsize=7)

    # Fig. 8a: one-sided GA (P1, P2), Stackelberg, PB-MARL — stochastic ones once per seed
    with ctx.progress(len(ctx.seeds) * (3 + len(ns) * len(LEARNERS)), "GA, PB-MARL, learners per N") as advance:
        for rep, seed in enumerate(ctx.seeds):
            for side in ("P1", "P2"):
                g = one_sided_ga(base, side, seed=seed, generations=gens)
                reps.append({"figure": "fig8a", "series": f"GA on {side}", "x": 0, "rep": rep, "seed": seed,
                             "cpp": g["cpp_profit"], "consumers": float(np.sum(g["consumer_profit"]))})
                advance()
            _, u_cpp, u_con = _learned(base, "pb-marl", ep_8a, seed)
            reps.append({"figure": "fig8a", "series": "PB-MARL", "x": 0, "rep": rep, "seed": seed, "cpp": u_cpp,
                         "consumers": u_con})
            advance()
            # Fig. 8b: every learner at every N
            for n in ns:
                params_n = _tiled(base, n)
                for learner in LEARNERS:
                    price, u_cpp, u_con = _learned(params_n, learner, ep_8b, seed)
                    reps.append({"figure": "fig8b", "series": learner, "x": n, "rep": rep, "seed": seed,
                                 "cpp": u_cpp, "consumers": u_con, "price": price})
                    advance()
    agg = summarise(reps, ("figure", "series", "x"), ("cpp", "consumers"))
    bars = {r["series"]: r for r in agg if r["figure"] == "fig8a"}
    bars["Stackelberg"] = {"cpp_mean": eq.cpp_profit, "consumers_mean": float(np.sum(eq.consumer_profit)),
                           "cpp_lo": np.nan, "cpp_hi": np.nan, "consumers_lo": np.nan, "consumers_hi": np.nan}
    names = ["GA on P1", "GA on P2", "Stackelberg", "PB-MARL"]
    xs = np.arange(len(names))
    ax = axes[0, 2]
    for off, key, label in ((-0.2, "cpp", "CPP"), (0.2, "consumers", "consumers (total)")):
        mean = np.array([bars[n][f"{key}_mean"] for n in names])
        lo = np.array([bars[n][f"{key}_lo"] for n in names])
        hi = np.array([bars[n][f"{key}_hi"] for n in names])
        err = np.where(np.isnan(lo), 0.0, np.vstack([mean - lo, hi - mean]))
        ax.bar(xs + off, mean, 0.4, yerr=err, capsize=3, label=label)
    ax.set_xticks(xs, names, fontsize=7)
    ax.set(ylabel="profit, token/episode", title=f"Fig. 8a: profit balance (PB-MARL {ep_8a} ep.)")
    ax.legend(fontsize=7)

    # Fig. 8b: CPP profit vs N, every learner and the Stackelberg solution
    ax = axes[0, 3]
    stack_n = {}
    for n in ns:
        e = solve_stackelberg(_tiled(base, n))
        stack_n[n] = e
        rows.append({"figure": "fig8b", "series": "Stackelberg", "x": n, "cpp": e.cpp_profit,
                     "consumer_0": float(e.consumer_profit[0])})
    ax.plot(ns, [stack_n[n].cpp_profit for n in ns], "k--o", label="Stackelberg (analytic)")
    for learner in LEARNERS:
        plots.band(ax, [r for r in agg if r["figure"] == "fig8b" and r["series"] == learner], "x", "cpp",
                   label=f"{learner} (last 10 % of {ep_8b} ep.)", marker="o", ms=3)
    ax.set(xlabel="number of consumers N", ylabel="U_cpp, token/episode", title="Fig. 8b: CPP profit vs N")
    ax.legend(fontsize=6)

    # Fig. 9b: consumer i's profit vs N for three values of its beta_i (analytic)
    ax = axes[1, 0]
    for b in betas_9b:
        vals = []
        for n in ns:
            p_n = _tiled(base, n)
            beta = p_n.beta.copy()
            beta[0] = b
            e = solve_stackelberg(p_n.with_values(beta=beta))
            vals.append(float(e.consumer_profit[0]))
            rows.append({"figure": "fig9b", "series": f"beta_i={b:g}", "x": n, "consumer_0": vals[-1],
                         "cpp": e.cpp_profit})
        ax.plot(ns, vals, "o-", label=f"β_i = {b:g}")
    ax.set(xlabel="number of consumers N", ylabel=f"U_i of consumer i (= calibrated consumer {FOCUS}), token",
           title="Fig. 9b: consumer i's profit vs N")
    ax.legend(fontsize=7)

    # Fig. 9a: consumer i's profit versus its beta_i for three block rewards
    betas = np.linspace(0.05, 0.95, k)
    ax = axes[1, 1]
    for R in (2000.0, 4000.0, 8000.0):
        vals = []
        for b in betas:
            beta = base.beta.copy()
            beta[FOCUS] = b
            e = solve_stackelberg(base.with_values(beta=beta, R=R))
            vals.append(float(e.consumer_profit[FOCUS]))
            rows.append({"figure": "fig9a", "series": f"R={R:g}", "x": float(b), "consumer_focus": vals[-1],
                         "cpp": e.cpp_profit})
        ax.plot(betas, vals, "o-", label=f"block reward R = {R:g}")
    ax.set(xlabel="β_i (share of demand that mines)", ylabel=f"U_{FOCUS}, token",
           title="Fig. 9a: consumer i's profit vs β_i")
    ax.legend(fontsize=7)

    # Fig. 9c: CPP profit versus lambda for three block rewards
    lams = np.linspace(0.0, 20.0, k)
    ax = axes[1, 2]
    for R in (2000.0, 4000.0, 8000.0):
        vals = []
        for lam in lams:
            e = solve_stackelberg(base.with_values(lam=float(lam), R=R))
            vals.append(e.cpp_profit)
            rows.append({"figure": "fig9c", "series": f"R={R:g}", "x": float(lam), "cpp": e.cpp_profit})
        ax.plot(lams, vals, "o-", label=f"block reward R = {R:g}")
    ax.set(xlabel="λ, token per unit of block size", ylabel="U_cpp, token", title="Fig. 9c: CPP profit vs λ")
    ax.legend(fontsize=7)

    # Fig. 9d: consumer i's profit versus the block size for three ratios beta_i / mean(beta_-i)
    sizes = np.linspace(20.0, 1000.0, k)
    others = float(np.mean(np.delete(base.beta, FOCUS)))
    ax = axes[1, 3]
    for ratio in (0.5, 1.0, 2.0):
        beta = base.beta.copy()
        beta[FOCUS] = min(1.0, others * ratio)
        vals = []
        for size in sizes:
            e = solve_stackelberg(base.with_values(B=float(size), beta=beta))
            vals.append(float(e.consumer_profit[FOCUS]))
            rows.append({"figure": "fig9d", "series": f"ratio={ratio:g}", "x": float(size),
                         "consumer_focus": vals[-1], "cpp": e.cpp_profit})
        ax.plot(sizes, vals, "o-", label=f"β_i / mean β_-i = {ratio:g} (β_i = {beta[FOCUS]:.2f})")
    ax.set(xlabel="block size B", ylabel=f"U_{FOCUS}, token", title="Fig. 9d: consumer i's profit vs B")
    ax.legend(fontsize=7)

    plots.save(fig, ctx, "profits.png", f"AI-Bazaar Fig. 7-9 (consumer i = calibrated consumer {FOCUS})")
    write_csv(ctx.out / "profits_curves.csv", rows)
    write_table(ctx.out, "profits", reps, agg, curves=rows)
    summary = {"stackelberg_price": eq.price, "stackelberg_cpp_profit": eq.cpp_profit, "reps": ctx.reps,
               "profit_balance": {n: {"cpp": bars[n]["cpp_mean"], "cpp_ci": [bars[n]["cpp_lo"], bars[n]["cpp_hi"]],
                                      "consumers": bars[n]["consumers_mean"]} for n in names},
               "cpp_profit_vs_N": {
                   "stackelberg": {n: stack_n[n].cpp_profit for n in ns},
                   **{m: {r["x"]: [r["cpp_mean"], r["cpp_lo"], r["cpp_hi"]] for r in agg
                          if r["figure"] == "fig8b" and r["series"] == m} for m in LEARNERS}}}
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
