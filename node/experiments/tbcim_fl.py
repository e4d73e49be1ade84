"""``bazaar experiment tbcim-fl``: the BCFL accuracy figures of the TBCIM paper (docs/models/tbcim.md).

* Fig. 5  — IID versus non-IID (Dirichlet) data, EDs picked at random at rate 0.5.
* Fig. 11 — No-IM (random half of the EDs), greedy (cheapest half), **ours = the TBCIM pipeline**
  (``mechanisms.tbcim.market.run_task``: per-ES EMD client selection, RANet picks the winning ESs, each
  winner's ES–ED Stackelberg game decides its participants and their compute, which sets their local epochs),
  "EMD + greedy" (the EMD selection with a quality-per-bid greedy and no auction or game, the earlier "ours"),
  and the two effects of the paper's "ideal" apart: all EDs on the non-IID split, a random half on an IID
  split, and both together (ideal).
* Fig. 12 — ours with 20 % of the ESs down in global epochs 15-30 (scaled to the run length in quick mode).
* Poisoning — 0/10/20/30 % of the EDs send sign-flipped, scaled updates, with and without the cosine filter.

Every curve runs once per seed (``--reps``) on the same data split and ED layout for every curve of that seed;
the figure draws the mean accuracy with 95 % bands. Writes ``tbcim_fl.json`` / ``tbcim_fl.csv`` (per epoch: mean
and interval), ``tbcim_fl_reps.csv`` (every repetition), ``tbcim_fl.png`` and ``run.json``.
"""

from __future__ import annotations

import math
from typing import Any

from bazaar.node.cli_registry import Experiment

from . import plots
from .repro import Run, write_table
from .stats import mean_ci, summarise

N_TRAIN = 1438  # 80 % of the digits; the quality curve sees the whole training set as 1e5 paper samples


def _base(ctx: Run, seed: int) -> dict[str, Any]:
    from bazaar.mechanisms.tbcim import TbcimConstants

    base: dict[str, Any] = {"alpha": 0.1, "lr": 0.05, "seed": seed,
                            "consts": TbcimConstants(d_unit=1e5 / N_TRAIN)}
    base.update(ctx.pick(quick={"n_es": 3, "eds_per_es": (3, 5), "rounds": 8, "local_epochs": 1, "attack_start": 2},
                         default={"n_es": 5, "eds_per_es": (3, 10), "rounds": 60, "local_epochs": 5,
                                  "attack_start": 3}))
    return base


def _configs(ctx: Run, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(figure, curve, BcflConfig keywords)``; ``selection="tbcim"`` marks a run of the TBCIM pipeline."""
    base = _base(ctx, seed)
    window = ctx.pick(quick=(3, 6), default=(15, 30))
    shares = ctx.pick(quick=[0.0, 0.3], default=[0.0, 0.1, 0.2, 0.3])
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("fig5", "iid", {"split": "iid", "selection": "random"}),
        ("fig5", "non-iid", {"selection": "random"}),
        ("fig11", "no-im (random half)", {"selection": "random"}),
        ("fig11", "greedy (cheapest half)", {"selection": "greedy"}),
        ("fig11", "ours (TBCIM: EMD + RANet + ES-ED game)", {"selection": "tbcim"}),
        ("fig11", "EMD + greedy (no auction, no game)", {"selection": "ours"}),
        ("fig11", "all EDs, non-IID", {"selection": "all"}),
        ("fig11", "IID split, random half", {"split": "iid", "selection": "random"}),
        ("fig11", "ideal (IID split, all EDs)", {"split": "iid", "selection": "all"}),
        ("fig12", "ours", {"selection": "tbcim"}),
        ("fig12", "ours, 20% ESs down", {"selection": "tbcim", "fail_share": 0.2, "fail_window": window}),
    ]
    for share in shares:
        pct = round(100 * share)
        runs.append(("poison", f"{pct}% no filter", {"selection": "all", "poison_share": share}))
        guarded = {"selection": "all", "poison_share": share, "filter_threshold": 0.0}
        runs.append(("poison", f"{pct}% filter", guarded))
    return [(fig, name, {**base, **kw}) for fig, name, kw in runs]


def run_tbcim_pipeline(kw: dict[str, Any], participation: str = "exact") -> tuple[list[float], dict[str, Any]]:
    """Ours: one task of the TBCIM market (``run_task``) on the BCFL run's data split and ED layout.

    Returns:
        The accuracy per global epoch and what the mechanism decided (winners, workers, compute, price).
    """
    import numpy as np

    from bazaar.mechanisms.fl.data import load_digits, split_train_eval
    from bazaar.mechanisms.fl.rounds import derive_seed
    from bazaar.mechanisms.tbcim.bcfl import BcflConfig, build_population
    from bazaar.mechanisms.tbcim.market import MarketConfig, run_task

    cfg = BcflConfig(**{k: v for k, v in kw.items() if k != "selection"})
    X, y = load_digits()
    _, y_tr, _, y_ev = split_train_eval(X, y, cfg.eval_fraction, derive_seed(cfg.seed, 0))
    pop = build_population(cfg, y_tr, y_ev)  # the same ED layout and Dirichlet split as the other curves
    market = MarketConfig(n_es=cfg.n_es, home=tuple(int(h) for h in pop.es_of), epochs=cfg.rounds, alpha=cfg.alpha,
                          model=cfg.model, local_epochs=cfg.local_epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                          filter_threshold=None, eval_fraction=cfg.eval_fraction, seed=cfg.seed,
                          participation=participation)
    down: list[list[int]] = []
    if cfg.fail_share > 0:
        rng = np.random.default_rng(derive_seed(cfg.seed, 4))
        failed = sorted(rng.choice(cfg.n_es, size=math.ceil(cfg.fail_share * cfg.n_es), replace=False).tolist())
        down = [failed if cfg.fail_window[0] <= r < cfg.fail_window[1] else [] for r in range(cfg.rounds)]
    res = run_task(market, task=1, down=down)
    detail = {"winners": list(res.allocation.winners), "workers": len(res.workers), "eds": market.n_eds,
              "mean_compute": float(np.mean(list(res.workers.values()))) if res.workers else 0.0,
              "prices": {str(s): float(g.price) for s, g in res.games.items()},
              "requester_utility": res.requester_utility}
    return res.accuracy, detail


def run(ctx: Run) -> dict[str, Any]:
    """Run every curve for every seed, write CSV/JSON/PNG into ``ctx.out`` and return the final accuracies."""
    from bazaar.mechanisms.tbcim.bcfl import BcflConfig, run_bcfl

    ctx.default_reps(quick=2, default=3, paper=10)
    sample = _base(ctx, ctx.seed)
    ctx.record(**{k: v for k, v in sample.items() if k not in ("seed", "consts")}, d_unit=1e5 / N_TRAIN,
               batch_size=16, model="softmax", participation_rate=0.5,
               ours="mechanisms.tbcim.market.run_task (RANet weights for S ESs, exact ES-ED participation, "
                    "no update filter)")
    ctx.differs("the digits data set (1 797 images, softmax model) instead of the paper's CIFAR-10 CNN; "
                "lr 0.05 instead of 0.01")
    ctx.record(es_ed_participation="drop (SPEC's literal rule, --literal)" if ctx.literal else "exact equilibrium")
    if ctx.quick:
        ctx.differs("quick: 3 ESs, 3-5 EDs each, 8 epochs of 1 local epoch")
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    configs = _configs(ctx, ctx.seed)
    with ctx.progress(len(configs) * len(ctx.seeds), "curves x seeds") as advance:
        for rep, seed in enumerate(ctx.seeds):
            cache: dict[str, tuple[list[float], dict[str, Any]]] = {}
            for fig, name, kw in _configs(ctx, seed):
                key = repr(sorted(kw.items()))
                if key not in cache:
                    if kw["selection"] == "tbcim":
                        cache[key] = run_tbcim_pipeline(kw, "drop" if ctx.literal else "exact")
                    else:
                        res = run_bcfl(BcflConfig(**kw))
                        cache[key] = (res.accuracy, {"workers": int(res.workers.size),
                                                     "rejected_poisoned": res.rejected_poisoned,
                                                     "accepted_poisoned": res.accepted_poisoned,
                                                     "rejected_honest": res.rejected_honest})
                acc, detail = cache[key]
                details.append({"figure": fig, "curve": name, "rep": rep, "seed": seed,
                                "final_accuracy": acc[-1], **detail})
                rows += [{"figure": fig, "curve": name, "rep": rep, "seed": seed, "round": r + 1, "accuracy": a}
                         for r, a in enumerate(acc)]
                advance()
    agg = summarise(rows, ("figure", "curve", "round"), ("accuracy",))
    final: dict[str, Any] = {}
    for fig, name, _ in configs:
        m, lo, hi = mean_ci(d["final_accuracy"] for d in details if d["figure"] == fig and d["curve"] == name)
        final[f"{fig}/{name}"] = {"mean": m, "lo": lo, "hi": hi}
    ours = [d for d in details if d["figure"] == "fig11" and d["curve"].startswith("ours")]
    write_table(ctx.out, "tbcim_fl", rows, agg, runs=details, final_accuracy=final)

    titles = {"fig5": "Fig. 5: IID vs non-IID (random half)", "fig11": "Fig. 11: incentive mechanisms",
              "fig12": "Fig. 12: 20 % of ESs down", "poison": "Poisoning EDs, with / without filter"}
    fig_, axes = plots.figure(ctx, ncols=2, nrows=2, size=(6.0, 4.4))
    for ax, (key, title) in zip(axes.ravel(), titles.items(), strict=True):
        for name in dict.fromkeys(n for f, n, _ in configs if f == key):
            pts = [r for r in agg if r["figure"] == key and r["curve"] == name]
            dashed = "no filter" in name or name.startswith(("all EDs", "IID split"))
            style: dict[str, Any] = {"linestyle": "--"} if dashed else {}
            if name.startswith("ours"):
                style = {"linewidth": 2.2, "color": "black"} if key == "fig11" else style
            plots.band(ax, pts, "round", "accuracy", label=name, **style)
        ax.set(title=title, xlabel="global epoch", ylabel="held-out accuracy (fraction)", ylim=(0, 1))
        ax.legend(fontsize=7)
    axes[1, 1].text(0.02, 0.02, "0% filter and 0% no filter coincide when the filter rejects nothing",
                    transform=axes[1, 1].transAxes, fontsize=6)
    axes[1, 0].text(0.02, 0.02, "'ours' of Fig. 12 is the same run as 'ours' of Fig. 11",
                    transform=axes[1, 0].transAxes, fontsize=6)
    plots.save(fig_, ctx, "tbcim_fl.png", "TBCIM BCFL accuracy (digits, softmax)")
    return {"final_accuracy": {k: v["mean"] for k, v in final.items()},
            "ours_workers_mean": mean_ci(d["workers"] for d in ours)[0],
            "ours_winners_mean": mean_ci(len(d["winners"]) for d in ours)[0], "reps": ctx.reps}


EXPERIMENTS = {
    "tbcim-fl": Experiment(
        title="TBCIM BCFL accuracy: IID vs non-IID, mechanisms (TBCIM pipeline as ours), ES failures, poisoning "
              "(Fig. 5, 11, 12)",
        run=run,
    ),
}
