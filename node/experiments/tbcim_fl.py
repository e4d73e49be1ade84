"""``bazaar experiment tbcim-fl``: the BCFL accuracy figures of the TBCIM paper (docs/models/tbcim.md).

* Fig. 5  — IID versus non-IID (Dirichlet) data, EDs picked at random at rate 0.5.
* Fig. 11 — No-IM (random EDs), greedy (cheapest bids), ours (EMD client selection + quality-per-bid
  worker choice), ideal (all data, IID).
* Fig. 12 — ours with 20 % of the ESs down in global epochs 15-30 (scaled to the run length in quick mode).
* Poisoning — 0/10/20/30 % of the EDs send sign-flipped, scaled updates, with and without the cosine filter.

Writes ``tbcim_fl.csv`` (figure, curve, round, accuracy, loss), ``summary.json`` and ``tbcim_fl.png``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bazaar.node.cli_registry import Experiment


def _configs(seed: int, quick: bool) -> list[tuple[str, str, dict[str, Any]]]:
    from bazaar.mechanisms.tbcim import TbcimConstants

    n_train = 1438  # 80 % of the digits; the quality curve sees the whole training set as 1e5 paper samples
    base: dict[str, Any] = {
        "alpha": 0.1,
        "lr": 0.05,
        "seed": seed,
        "consts": TbcimConstants(d_unit=1e5 / n_train),
    }
    if quick:
        base.update(n_es=3, eds_per_es=(3, 5), rounds=8, local_epochs=1, attack_start=2)
        window, shares = (3, 6), [0.0, 0.3]
    else:
        base.update(n_es=5, eds_per_es=(3, 10), rounds=60, local_epochs=5, attack_start=3)
        window, shares = (15, 30), [0.0, 0.1, 0.2, 0.3]
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("fig5", "iid", {"split": "iid", "selection": "random"}),
        ("fig5", "non-iid", {"selection": "random"}),
        ("fig11", "no-im", {"selection": "random"}),
        ("fig11", "greedy", {"selection": "greedy"}),
        ("fig11", "ours", {"selection": "ours"}),
        ("fig11", "ideal", {"split": "iid", "selection": "all"}),
        ("fig12", "ours", {"selection": "ours"}),
        ("fig12", "ours, 20% ESs down", {"selection": "ours", "fail_share": 0.2, "fail_window": window}),
    ]
    for share in shares:
        pct = round(100 * share)
        runs.append(("poison", f"{pct}% no filter", {"selection": "all", "poison_share": share}))
        guarded = {"selection": "all", "poison_share": share, "filter_threshold": 0.0}
        runs.append(("poison", f"{pct}% filter", guarded))
    return [(fig, name, {**base, **kw}) for fig, name, kw in runs]


def run(out_dir: Path, seed: int, quick: bool) -> dict[str, Any]:
    """Run every curve, write CSV/JSON/PNG into ``out_dir`` and return the final accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bazaar.mechanisms.tbcim.bcfl import BcflConfig, run_bcfl

    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list[float]]] = {}
    details: dict[str, dict[str, Any]] = {}
    cache: dict[str, Any] = {}
    for fig, name, kw in _configs(seed, quick):
        key = repr(sorted(kw.items()))
        if key not in cache:
            cache[key] = run_bcfl(BcflConfig(**kw))
        res = cache[key]
        curves.setdefault(fig, {})[name] = res.accuracy
        details[f"{fig}/{name}"] = {
            "final_accuracy": res.accuracy[-1],
            "workers": int(res.workers.size),
            "rejected_poisoned": res.rejected_poisoned,
            "accepted_poisoned": res.accepted_poisoned,
            "rejected_honest": res.rejected_honest,
        }
        for r, (a, lo) in enumerate(zip(res.accuracy, res.loss, strict=True)):
            rows.append({"figure": fig, "curve": name, "round": r + 1, "accuracy": a, "loss": lo})
    with (out_dir / "tbcim_fl.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["figure", "curve", "round", "accuracy", "loss"])
        w.writeheader()
        w.writerows(rows)
    titles = {
        "fig5": "Fig. 5: IID vs non-IID",
        "fig11": "Fig. 11: incentive mechanisms",
        "fig12": "Fig. 12: 20% of ESs down",
        "poison": "Poisoning EDs, with / without filter",
    }
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (name, title) in zip(axes.ravel(), titles.items(), strict=True):
        for label, acc in curves.get(name, {}).items():
            ax.plot(range(1, len(acc) + 1), acc, label=label, linestyle="--" if "no filter" in label else "-")
        ax.set_title(title)
        ax.set_xlabel("global epoch")
        ax.set_ylabel("held-out accuracy")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "tbcim_fl.png", dpi=110)
    plt.close(figure)
    summary = {
        "final_accuracy": {
            "iid": curves["fig5"]["iid"][-1],
            "non_iid": curves["fig5"]["non-iid"][-1],
            **{f"fig11_{k}": v[-1] for k, v in curves["fig11"].items()},
            **{f"fig12_{k}": v[-1] for k, v in curves["fig12"].items()},
            **{f"poison_{k}": v[-1] for k, v in curves["poison"].items()},
        },
        "quick": quick,
        "seed": seed,
    }
    (out_dir / "summary.json").write_text(json.dumps({**summary, "runs": details}, indent=2))
    return summary


EXPERIMENTS = {
    "tbcim-fl": Experiment(
        title="TBCIM BCFL accuracy: IID vs non-IID, mechanisms, ES failures, poisoning (Fig. 5, 11, 12)",
        run=run,
    ),
}
