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


def test_literal_switch_runs_the_spec_drop_rule() -> None:
    import pytest

    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.tbcim.market import ed_report, even_homes, lower_game, task_data
    from bazaar.mechanisms.tbcim.stackelberg import solve_stackelberg

    cfg = MarketConfig(n_es=3, home=even_homes(3, 12), epochs=1, participation="drop", seed=2)
    data = task_data(cfg)
    reports = [ed_report(cfg, data, i) for i in cfg.members(0)]
    got = lower_game(cfg, reports)
    exact = lower_game(MarketConfig(n_es=3, home=even_homes(3, 12), epochs=1, seed=2), reports)
    from dataclasses import replace

    assert got.participation == "drop" and exact.participation == "exact"
    assert got.price == solve_stackelberg(replace_game(cfg, reports), "drop").price
    assert run_task(cfg).accuracy  # the whole pipeline runs under the switch
    with pytest.raises(MechanismError):
        replace(cfg, participation="literal")


def replace_game(cfg: MarketConfig, reports: list) -> object:
    import numpy as np

    from bazaar.mechanisms.tbcim.stackelberg import StackelbergGame

    return StackelbergGame(d=np.array([r.d for r in reports]), theta=np.array([r.theta for r in reports]),
                           beta=np.array([r.beta for r in reports]), gamma=np.array([r.gamma for r in reports]),
                           c_m=np.array([r.c_m for r in reports]), omega=cfg.omega, kappa=cfg.kappa,
                           p_g=cfg.gas_price, consts=cfg.consts)
