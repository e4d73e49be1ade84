"""``tbcim-fl`` in --quick with two repetitions: ours is the TBCIM pipeline, ideal is split in its two effects."""

from __future__ import annotations

import json
from pathlib import Path

from bazaar.mechanisms.tbcim.market import MarketConfig, run_task

from .conftest import check_table, run_quick


def test_tbcim_fl_quick_two_reps(tmp_path: Path) -> None:
    run_quick("tbcim-fl", tmp_path)
    data = check_table(tmp_path, "tbcim_fl", 2, "accuracy")
    curves = {r["curve"] for r in data["summary"] if r["figure"] == "fig11"}
    assert {"ours (TBCIM: EMD + RANet + ES-ED game)", "all EDs, non-IID", "IID split, random half",
            "ideal (IID split, all EDs)"} <= curves
    ours = [r for r in data["runs"] if r["curve"].startswith("ours (TBCIM")]
    assert len(ours) == 2 and all("winners" in r and r["workers"] <= r["eds"] for r in ours)


def test_ours_is_run_task_on_the_same_layout(tmp_path: Path) -> None:
    from bazaar.node.experiments.repro import Run
    from bazaar.node.experiments.tbcim_fl import _configs, run_tbcim_pipeline

    kw = next(kw for fig, name, kw in _configs(Run("tbcim-fl", tmp_path, mode="quick"), 3) if name.startswith("ours"))
    acc, detail = run_tbcim_pipeline(kw)
    from bazaar.mechanisms.fl.data import load_digits, split_train_eval
    from bazaar.mechanisms.fl.rounds import derive_seed
    from bazaar.mechanisms.tbcim.bcfl import BcflConfig, build_population

    cfg = BcflConfig(**{k: v for k, v in kw.items() if k != "selection"})
    X, y = load_digits()
    _, y_tr, _, y_ev = split_train_eval(X, y, cfg.eval_fraction, derive_seed(cfg.seed, 0))
    home = tuple(int(h) for h in build_population(cfg, y_tr, y_ev).es_of)
    direct = run_task(MarketConfig(n_es=cfg.n_es, home=home, epochs=cfg.rounds, alpha=cfg.alpha, lr=cfg.lr,
                                   local_epochs=cfg.local_epochs, filter_threshold=None, seed=3))
    assert acc == direct.accuracy and detail["winners"] == list(direct.allocation.winners)
    assert json.dumps(detail)  # JSON-able
