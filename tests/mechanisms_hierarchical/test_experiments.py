"""The three figures run in quick mode with two repetitions and write their files, run.json and the MILP status."""

from __future__ import annotations

import json

import pytest

from bazaar.node.experiments.hierarchical import EXPERIMENTS
from bazaar.node.experiments.repro import Run, execute


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_experiment_writes_csv_json_png(tmp_path, name):
    summary = execute(EXPERIMENTS[name].run, Run(name, tmp_path, seed=1, reps=2, mode="quick"))
    stem = name.replace("-", "_")
    for ext in (".csv", "_reps.csv", ".json", ".png"):
        assert (tmp_path / f"{stem}{ext}").stat().st_size > 0
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    assert data["summary"] and {r["seed"] for r in data["reps"]} == {1, 2}
    milp = [r for r in data["reps"] if r["method"] == "milp"]
    assert milp and all(isinstance(r["proven"], bool) for r in milp)
    assert all("unproven" in r for r in data["summary"])
    assert json.loads((tmp_path / "run.json").read_text())["params"]["milp_time_limit_s"] == 5.0
    assert summary
