"""``bazaar experiment tbcim-chain``: TBCIM Fig. 9 (ES revenue versus the gas price) and Fig. 10 (accuracy versus
the chain cost), from the whole TBCIM pipeline (``mechanisms.tbcim.market.run_task``; docs/models/tbcim.md).

For every seed one ED layout and data split is drawn (S ESs with 3–10 EDs each, Dirichlet α = 0.1) and the same
task is run at every gas price ``p_g``: 0 ("no blockchain cost") and three prices in the paper's 1 : 2 : 4
ratio. The paper's own prices (1e-2 … 4e-2) make the chain cost of one worker (a6·g_e·p_g ≈ 27 tokens at 1e-2)
forty times the largest data utility, so nobody would ever be hired; ours are scaled to this market's units
(5e-7 … 2e-6: one worker's chain cost 1.3e-3 … 5.3e-3 tokens, the size of an ED's own costs).

Per run: every ES's expected auction revenue ``p_s − z_s b_s`` (RANet's expected payment minus its expected
cost), the number of winning ESs, the workers the winners' ES–ED games hire, the requester's utility and the
held-out accuracy per global epoch. Means over seeds with 95 % t-intervals.
"""

from __future__ import annotations

from typing import Any

from bazaar.node.cli_registry import Experiment

from . import plots
from .repro import Run, write_csv, write_table
from .stats import summarise

GAS_PRICES = (0.0, 5e-7, 1e-6, 2e-6)


def _layout(seed: int, n_es: int, eds: tuple[int, int]) -> tuple[int, ...]:
    import numpy as np

    sizes = np.random.default_rng([seed, 91]).integers(eds[0], eds[1] + 1, size=n_es)
    return tuple(int(s) for s in np.repeat(np.arange(n_es), sizes))


def run(ctx: Run) -> dict[str, Any]:
    """Run the task at every gas price for every seed; write CSV/JSON/PNG; return the means per gas price."""
    import numpy as np

    from bazaar.mechanisms.tbcim.market import MarketConfig, run_task

    ctx.default_reps(quick=2, default=5, paper=10)
    n_es = ctx.pick(quick=3, default=5, paper=10)
    eds = ctx.pick(quick=(3, 5), default=(3, 10))
    epochs = ctx.pick(quick=4, default=30, paper=60)
    local = ctx.pick(quick=1, default=5)
    ctx.record(gas_prices=list(GAS_PRICES), edge_servers=n_es, eds_per_es=list(eds), epochs=epochs,
               local_epochs=local, es_ed_participation="drop" if ctx.literal else "exact", alpha=0.1, lr=0.05,
               model="softmax", update_filter=None,
               revenue="expected auction revenue of an ES: RANet's expected payment p_s minus z_s times its bid")
    ctx.differs("gas prices scaled to this market's token units (paper: 1e-2, 2e-2, 4e-2, which price every "
                "worker out); digits + softmax instead of CIFAR-10")
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    with ctx.progress(len(GAS_PRICES) * len(ctx.seeds), "gas price x seed") as advance:
        for rep, seed in enumerate(ctx.seeds):
            home = _layout(seed, n_es, eds)
            for pg in GAS_PRICES:
                cfg = MarketConfig(n_es=n_es, home=home, epochs=epochs, alpha=0.1, local_epochs=local, lr=0.05,
                                   gas_price=pg, filter_threshold=None, seed=seed,
                                   participation="drop" if ctx.literal else "exact")
                res = run_task(cfg)
                a = res.allocation
                bids = np.array([res.bids[s].bid for s in range(n_es)])
                revenue = a.expected - a.z * bids
                rows.append({"gas_price": pg, "rep": rep, "seed": seed, "es_revenue_mean": float(revenue.mean()),
                             "es_revenue_winners": float(np.mean([a.paid[s] - bids[s] for s in a.winners]))
                             if a.winners else 0.0,
                             "winners": len(a.winners), "expected_winners": float(a.z.sum()),
                             "workers": len(res.workers), "eds": cfg.n_eds,
                             "requester_utility": res.requester_utility, "final_accuracy": res.accuracy[-1],
                             "mean_bid": float(bids.mean()), "reserve": a.reserve})
                curves += [{"gas_price": pg, "rep": rep, "seed": seed, "epoch": e + 1, "accuracy": acc}
                           for e, acc in enumerate(res.accuracy)]
                advance()
    values = ("es_revenue_mean", "es_revenue_winners", "winners", "expected_winners", "workers",
              "requester_utility", "final_accuracy", "mean_bid")
    agg = summarise(rows, ("gas_price",), values)
    curve_agg = summarise(curves, ("gas_price", "epoch"), ("accuracy",))
    write_table(ctx.out, "tbcim_chain", rows, agg, accuracy_curves=curve_agg)
    write_csv(ctx.out / "tbcim_chain_accuracy.csv", curve_agg)

    fig, axes = plots.figure(ctx, ncols=3, size=(5.2, 4.0))
    ax_r, ax_w, ax_a = axes[0]
    xs = [f"{pg:g}" if pg else "0 (no chain cost)" for pg in GAS_PRICES]
    for ax, key, label in ((ax_r, "es_revenue_mean", "per ES, expected"), (ax_r, "es_revenue_winners",
                                                                          "per winning ES, realised")):
        mean = np.array([r[f"{key}_mean"] for r in agg])
        lo = np.array([r[f"{key}_lo"] for r in agg], dtype=float)
        hi = np.array([r[f"{key}_hi"] for r in agg], dtype=float)
        err = None if np.isnan(lo).all() else np.vstack([mean - lo, hi - mean])
        ax.errorbar(range(len(xs)), mean, yerr=err, marker="o", capsize=3, label=label)
    ax_r.set_xticks(range(len(xs)), xs, fontsize=7)
    ax_r.set(xlabel="gas price p_g (token/gas)", ylabel="ES revenue: payment − cost (token)",
             title="Fig. 9: ES revenue vs gas price")
    ax_r.legend(fontsize=7)
    for key, label in (("expected_winners", "expected winning ESs (sum z)"), ("workers", "workers hired")):
        mean = np.array([r[f"{key}_mean"] for r in agg])
        lo = np.array([r[f"{key}_lo"] for r in agg], dtype=float)
        hi = np.array([r[f"{key}_hi"] for r in agg], dtype=float)
        err = None if np.isnan(lo).all() else np.vstack([mean - lo, hi - mean])
        ax_w.errorbar(range(len(xs)), mean, yerr=err, marker="s", capsize=3, label=label)
    ax_w.set_xticks(range(len(xs)), xs, fontsize=7)
    ax_w.set(xlabel="gas price p_g (token/gas)", ylabel="count", title="Who takes part")
    ax_w.legend(fontsize=7)
    for pg, x in zip(GAS_PRICES, xs, strict=True):
        plots.band(ax_a, [r for r in curve_agg if r["gas_price"] == pg], "epoch", "accuracy", label=f"p_g = {x}")
    ax_a.set(xlabel="global epoch", ylabel="held-out accuracy (fraction)", ylim=(0, 1),
             title="Fig. 10: accuracy vs chain cost")
    ax_a.legend(fontsize=7)
    ax_a.text(0.02, 0.98, "gas prices that hire the same workers give\nidentical curves (drawn over each other)",
              transform=ax_a.transAxes, fontsize=6, va="top")
    plots.save(fig, ctx, "tbcim_chain.png", f"TBCIM with blockchain cost: S = {n_es} ESs, TBCIM pipeline")
    return {"gas_prices": list(GAS_PRICES), "reps": ctx.reps,
            **{k: [r[f"{k}_mean"] for r in agg] for k in ("es_revenue_mean", "workers", "final_accuracy")}}


EXPERIMENTS = {
    "tbcim-chain": Experiment(
        title="TBCIM Fig. 9-10: ES revenue and FL accuracy vs the gas price (blockchain cost), TBCIM pipeline",
        run=run,
    ),
}
