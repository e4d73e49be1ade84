"""The three figures run in quick mode and write their files."""

from __future__ import annotations

import json

import pytest

from bazaar.node.experiments.hierarchical import EXPERIMENTS


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_experiment_writes_csv_json_png(tmp_path, name):
    summary = EXPERIMENTS[name].run(tmp_path, 1, True)
    stem = name.replace("-", "_")
    for ext in (".csv", ".json", ".png"):
        assert (tmp_path / f"{stem}{ext}").stat().st_size > 0
    assert json.loads((tmp_path / f"{stem}.json").read_text())["points"]
    assert summary
