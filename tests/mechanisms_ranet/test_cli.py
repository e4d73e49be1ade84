"""``bazaar solve tbcim-auction``, ``bazaar train ranet`` argument checks and the quick experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.node.cli import main


def test_solve_prints_the_documented_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", "tbcim-auction", "--sellers", "3", "--setting", "single-uniform",
                 "--samples", "200", "--seed", "1", "--regret-profiles", "40", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("requester_utility", "welfare", "regret", "ir_violation", "winners_mean"):
        assert isinstance(out[key], float)
    assert set(out["baselines"]) == {"vcg", "greedy", "random", "myerson"}
    assert out["ir_violation"] == 0.0
    assert len(out["examples"]) == 3


def test_solve_tbcim_has_no_myerson(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", "tbcim-auction", "--sellers", "5", "--setting", "tbcim", "--samples", "100",
                 "--chain", "without", "--regret-profiles", "10", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["baselines"]) == {"vcg", "greedy", "random"}


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["solve", "tbcim-auction", "--sellers", "4", "--setting", "single-uniform"], "sellers"),
        (["solve", "tbcim-auction", "--sellers", "3", "--samples", "0"], "samples"),
        (["solve", "tbcim-auction", "--sellers", "3", "--setting", "single-uniform", "--chain", "with"],
         "chain"),
        (["train", "ranet", "--sellers", "3", "--setting", "tbcim", "--out", "x.txt"], "out"),
        (["train", "ranet", "--sellers", "0", "--setting", "tbcim", "--out", "x.npz"], "sellers"),
        (["train", "ranet", "--sellers", "3", "--setting", "tbcim", "--out", "/no/such/dir/x.npz"], "out"),
        (["train", "ranet", "--sellers", "3", "--setting", "tbcim", "--out", "x.npz", "--init", "/no/w.npz"],
         "init"),
        (["train", "ranet", "--sellers", "3", "--setting", "tbcim", "--out", "x.npz", "--hidden", "0"], "hidden"),
        (["train", "ranet", "--variant", "monotone", "--sellers", "3", "--setting", "tbcim", "--out", "x.npz",
          "--evaluations", "0"], "evaluations"),
    ],
)
def test_bad_parameters_exit_2_naming_the_key(argv: list[str], key: str, capsys) -> None:
    assert main(argv) == 2
    assert f"'{key}'" in capsys.readouterr().err


def test_train_cli_writes_weights_and_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "w.npz"
    code = main(["train", "ranet", "--sellers", "2", "--setting", "single-uniform", "--iterations", "20",
                 "--batch", "16", "--hidden", "4", "--log-every", "10", "--quiet", "--out", str(out), "--json"])
    assert code == 0
    lines = (tmp_path / "w.log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [10.0, 20.0]
    assert {"utility", "regret", "lambda", "rho"} <= set(json.loads(lines[-1]))
    assert json.loads(capsys.readouterr().out)["weights"] == str(out)


def test_quick_experiment_writes_every_promised_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bazaar.node.experiments.tbcim_auction import FILES

    assert main(["experiment", "tbcim-auction", "--quick", "--out", str(tmp_path)]) == 0
    names = ("tbcim_auction.csv", "tbcim_auction_reps.csv", "fig6_training.csv", "fig7_win_probability.csv",
             "single_uniform_optimum.csv", "summary.json", "run.json", *FILES)
    for name in names:
        assert (tmp_path / name).stat().st_size > 0
    assert set(FILES) <= set(json.loads((tmp_path / "run.json").read_text())["files"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["single_uniform_utility_over_optimum"]) == {"ranet", "monotone"}
    for key, rgt in summary["regret"].items():
        assert rgt["refined"] >= rgt["grid"]
        if key.endswith("monotone"):
            assert rgt["refined"] == 0.0
    rows = (tmp_path / "tbcim_auction.csv").read_text()
    for mech in ("ranet", "monotone", "vcg", "greedy", "random", "myerson"):
        assert f",{mech}," in rows


def test_solve_monotone_variant(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", "tbcim-auction", "--sellers", "3", "--setting", "single-uniform", "--variant",
                 "monotone", "--samples", "300", "--regret-profiles", "20", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variant"] == "monotone"
    assert out["regret"] == out["regret_grid"] == 0.0
    assert out["vs_optimum"]["ratio"] > 0.9
    assert all(z in (0.0, 1.0) for ex in out["examples"] for z in ex["z"])


def test_train_cli_monotone_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cma")
    out = tmp_path / "m.npz"
    code = main(["train", "ranet", "--variant", "monotone", "--sellers", "2", "--setting", "single-uniform",
                 "--samples", "500", "--evaluations", "40", "--quiet", "--out", str(out)])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["weights"] == str(out)
    from bazaar.mechanisms.ranet import RANet

    assert RANet.load(2, "single-uniform", out, variant="monotone").meta["config"]["evaluations"] == 40
