"""``bazaar solve tbcim-stackelberg``, the BCFL simulation and the ``tbcim-fl`` experiment (quick)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.tbcim.bcfl import BcflConfig, run_bcfl
from bazaar.node.cli import main

PARAMS = """
omega = 5.0
kappa = 0.01
delta_1 = 5
delta_g = 100
M = 0.5
a1 = 0.87
a2 = 1e-5
a3 = 0.13
a4 = 1e5
a5 = 0.64
a6 = 3.48e-2
g_e = 7.68e4
p_g = 1e-5
d = [120, 300, 80, 450, 200]
theta = [0.4, 0.9, 0.3, 1.2, 0.6]
beta = [1.0, 0.8, 1.5, 1.2, 0.9]
gamma = [0.001, 0.002, 0.001, 0.003, 0.002]
c_m = [0.2, 0.1, 0.3, 0.2, 0.1]
"""


def _run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    f = tmp_path / "p.toml"
    f.write_text(text)
    code = main(["solve", "tbcim-stackelberg", "--params", str(f), "--json"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_the_equilibrium(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, PARAMS, capsys)
    assert code == 0
    res = json.loads(out)
    for key in ("price", "compute", "fees", "participants", "es_profit", "ed_profit"):
        assert key in res
    assert len(res["compute"]) == 5 and res["price"] > 0 and res["participants"]
    assert res["es_deviation_gain"] <= 1e-7 and res["ed_deviation_gain"] <= 1e-7
    assert all(res["ed_profit"][i] >= -1e-12 for i in res["participants"])


def test_cli_client_selection_reports_original_indices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(tmp_path, PARAMS + "select_clients = true\n", capsys)
    res = json.loads(out)
    assert code == 0 and res["selected"] == [0, 2, 4]  # EMD <= mean 0.68
    assert set(res["participants"]) <= {0, 2, 4}
    assert res["compute"][1] == 0.0 and res["compute"][3] == 0.0


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("omega = 5.0", "omega = -1.0"),
        ("c_m = [0.2, 0.1, 0.3, 0.2, 0.1]", "c_m = [0.2, 0.1]"),
        ("kappa = 0.01", "kappa = 'x'"),
        ("p_g = 1e-5", ""),
        ("M = 0.5", "M = 0.5\nbogus = 1"),
    ],
)
def test_cli_bad_params_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, key: str
) -> None:
    code, _, err = _run(tmp_path, PARAMS.replace(edit, key), capsys)
    assert code == 2
    assert err.startswith("error: parameter")


def _quick(**kw: object) -> BcflConfig:
    base: dict[str, object] = {"n_es": 3, "eds_per_es": (3, 5), "rounds": 4, "local_epochs": 1, "alpha": 0.3}
    return BcflConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_bcfl_is_deterministic_and_learns() -> None:
    a, b = run_bcfl(_quick(seed=2)), run_bcfl(_quick(seed=2))
    assert a.params.tobytes() == b.params.tobytes() and a.accuracy == b.accuracy
    assert a.accuracy[-1] > 0.5 and a.accuracy[-1] > a.accuracy[0] - 0.05


def test_bcfl_filter_rejects_sign_flipped_updates() -> None:
    bad = run_bcfl(_quick(poison_share=0.3, attack_start=1, rounds=5))
    guarded = run_bcfl(_quick(poison_share=0.3, attack_start=1, rounds=5, filter_threshold=0.0))
    assert bad.accepted_poisoned > 0 and guarded.accepted_poisoned == 0 and guarded.rejected_poisoned > 0
    assert guarded.accuracy[-1] > bad.accuracy[-1]


def test_bcfl_failures_and_selection() -> None:
    run = run_bcfl(_quick(fail_share=0.2, fail_window=(1, 3), selection="ours"))
    assert run.failed_es.size == 1 and len(run.accuracy) == 4
    assert np.all(np.diff(run.workers) > 0)
    with pytest.raises(MechanismError):
        BcflConfig(selection="best")
    with pytest.raises(MechanismError):
        BcflConfig(poison_share=1.5)


def test_experiment_quick(tmp_path: Path) -> None:
    from bazaar.node.experiments.repro import Run, execute
    from bazaar.node.experiments.tbcim_fl import EXPERIMENTS

    summary = execute(EXPERIMENTS["tbcim-fl"].run, Run("tbcim-fl", tmp_path, reps=1, mode="quick"))
    assert (tmp_path / "tbcim_fl.csv").exists() and (tmp_path / "run.json").exists()
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())
    assert 0.0 <= summary["final_accuracy"]["fig5/iid"] <= 1.0
