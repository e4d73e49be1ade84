"""Helpers of the experiment tests: run one experiment in --quick with two repetitions and check its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bazaar.node.cli import experiments
from bazaar.node.experiments.repro import Run, execute


def run_quick(name: str, out: Path, reps: int = 2, seed: int = 0, literal: bool = False) -> dict[str, Any]:
    """Run experiment ``name`` in --quick with ``reps`` repetitions; check run.json; return it."""
    execute(experiments()[name].run, Run(name, out, seed=seed, reps=reps, mode="quick", literal=literal))
    info: dict[str, Any] = json.loads((out / "run.json").read_text())
    assert info["experiment"] == name and info["mode"] == "quick" and info["reps"] == reps
    assert info["seeds"] == list(range(seed, seed + reps)) and info["params"]
    assert {"cores", "python", "numpy", "scipy"} <= set(info["machine"]) and info["wall_s"] > 0
    for f in info["files"]:
        assert (out / f).stat().st_size > 0
    assert any(f.endswith(".png") for f in info["files"])
    return info


def check_table(out: Path, name: str, reps: int, value: str) -> dict[str, Any]:
    """``NAME.json`` holds every repetition (seeds 0..reps-1) and a 95 % interval around each mean."""
    data: dict[str, Any] = json.loads((out / f"{name}.json").read_text())
    assert {r["seed"] for r in data["reps"]} == set(range(reps))
    assert data["summary"]
    for row in data["summary"]:
        assert row[f"{value}_n"] == reps
        if row[f"{value}_lo"] is not None:
            assert row[f"{value}_lo"] <= row[f"{value}_mean"] + 1e-9 <= row[f"{value}_hi"] + 2e-9
    assert len((out / f"{name}_reps.csv").read_text().splitlines()) == len(data["reps"]) + 1
    return data
