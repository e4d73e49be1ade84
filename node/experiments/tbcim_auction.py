"""Paper Fig. 6-9 for the upper level: RANet versus VCG, greedy and random for S = 3, 5, 10, with and
without the blockchain cost, plus the single-uniform check against the Myerson optimum and Fig. 7 (win
probability of one seller against its bid)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bazaar.node.cli_registry import Experiment

KEYS = ("requester_utility", "welfare", "regret", "ir_violation", "winners_mean")


def _rows(record: dict[str, Any], **tags: Any) -> list[dict[str, Any]]:
    rows = [{**tags, "mechanism": "ranet", **{k: record[k] for k in KEYS}}]
    for name, m in record["baselines"].items():
        rows.append({**tags, "mechanism": name, **{k: m[k] for k in KEYS}})
    return rows


def run(out_dir: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Write ``tbcim_auction.csv``, ``fig7_win_probability.csv``, ``summary.json`` and two PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bazaar.mechanisms.ranet import RANet, evaluate_all, myerson_expected_utility

    samples = 200 if quick else 4000
    regret_profiles = 50 if quick else 1000
    sellers = (3,) if quick else (3, 5, 10)
    rows: list[dict[str, Any]] = []
    su = RANet.load(3, "single-uniform")
    rec = evaluate_all(su, samples, seed, regret_profiles=regret_profiles)
    rows += _rows(rec, setting="single-uniform", sellers=3, chain="none")
    optimum = myerson_expected_utility(3)
    gap = rec["requester_utility"] / optimum - 1.0
    paired = rec["requester_utility"] / rec["baselines"]["myerson"]["requester_utility"] - 1.0
    for S in sellers:
        net = RANet.load(S, "tbcim")
        for chain in ("with", "without"):
            rec = evaluate_all(net, samples, seed, chain=chain, regret_profiles=regret_profiles)
            rows += _rows(rec, setting="tbcim", sellers=S, chain=chain)
    with (out_dir / "tbcim_auction.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["setting", "sellers", "chain", "mechanism", *KEYS])
        w.writeheader()
        w.writerows(rows)

    # Fig. 7: win probability and utility of seller 0 against its bid, others truthful, cost fixed
    net = RANet.load(3, "tbcim")
    costs, profiles = net.setting.sample(np.random.default_rng(seed), 1, 3)
    grid = np.linspace(0.0, 4.0 * float(costs[0, 0]) + 1e-3, 41 if quick else 201)
    bids = np.repeat(costs, grid.size, axis=0)
    bids[:, 0] = grid
    assert profiles is not None
    z, p = net.allocate(bids, np.repeat(profiles, grid.size, axis=0))
    util = p[:, 0] - z[:, 0] * costs[0, 0]
    with (out_dir / "fig7_win_probability.csv").open("w", newline="") as fh:
        w2 = csv.writer(fh)
        w2.writerow(["bid", "z", "payment", "utility", "cost"])
        for i in range(grid.size):
            w2.writerow([grid[i], z[i, 0], p[i, 0], util[i], costs[0, 0]])

    # Fig. 6: training curves stored in the shipped weights (meta["log"], one record per checkpoint)
    curves = []
    for S in sellers:
        for rec in RANet.load(S, "tbcim").meta.get("log", []):
            curves.append({"sellers": S, **rec})
    with (out_dir / "fig6_training.csv").open("w", newline="") as fh:
        fields = ["sellers", "iteration", "utility", "regret", "regret_max", "lambda", "rho", "seconds"]
        w3 = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w3.writeheader()
        w3.writerows(curves)

    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    for S in sellers:
        pts = [(i, c["utility"], c["regret"]) for i, c in enumerate(r for r in curves if r["sellers"] == S)]
        if pts:
            steps, util_c, rgt_c = zip(*pts, strict=True)
            axes[4].plot(steps, util_c, label=f"utility S={S}")
            axes[4].plot(steps, np.asarray(rgt_c) * 100, ":", label=f"regret x100 S={S}")
    axes[4].set_xlabel("checkpoint (all training stages)")
    axes[4].set_title("training (Fig. 6)")
    axes[4].legend(fontsize=6)
    mechs = ("ranet", "vcg", "greedy", "random")
    for ax, key in zip(axes[:3], ("requester_utility", "welfare", "winners_mean"), strict=True):
        for mech in mechs:
            for chain, style in (("with", "-o"), ("without", "--s")):
                xy = [(r["sellers"], r[key]) for r in rows
                       if r["setting"] == "tbcim" and r["mechanism"] == mech and r["chain"] == chain]
                if xy:
                    ax.plot(*zip(*xy, strict=True), style, label=f"{mech} ({chain} chain cost)")
        ax.set_xlabel("edge servers S")
        ax.set_title(key.replace("_", " "))
    axes[0].legend(fontsize=6)
    axes[3].plot(grid, z[:, 0], label="win probability z")
    axes[3].plot(grid, util / max(float(np.abs(util).max()), 1e-12), label="utility (scaled)")
    axes[3].axvline(costs[0, 0], color="k", ls=":", label="true cost")
    axes[3].set_xlabel("bid of ES 0")
    axes[3].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "tbcim_auction.png", dpi=110)
    plt.close(fig)

    summary = {
        "single_uniform_gap_to_myerson": gap,
        "single_uniform_gap_to_myerson_same_sample": paired,
        "myerson_optimum": optimum,
        "rows": len(rows),
        "files": ["tbcim_auction.csv", "fig6_training.csv", "fig7_win_probability.csv", "tbcim_auction.png",
                  "summary.json"],
    }
    (out_dir / "summary.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return summary


EXPERIMENTS = {
    "tbcim-auction": Experiment(
        title="TBCIM Fig. 6-9 (upper level): RANet vs VCG / greedy / random, S = 3, 5, 10, +-chain cost",
        run=run,
    )
}
