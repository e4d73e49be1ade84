"""The experiments' shared framework: intervals, seeds, modes and run.json provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from bazaar.node.cli import main
from bazaar.node.experiments import plots
from bazaar.node.experiments.repro import Run, execute, write_table
from bazaar.node.experiments.stats import mean_ci, median_ci, median_ci_coverage, summarise


def test_mean_ci_is_the_student_t_interval() -> None:
    xs = [1.0, 2.0, 4.0, 7.0]
    mean, lo, hi = mean_ci(xs)
    half = sps.t.ppf(0.975, 3) * np.std(xs, ddof=1) / 2.0
    assert mean == pytest.approx(3.5)
    assert (lo, hi) == pytest.approx((3.5 - half, 3.5 + half))


def test_mean_ci_edge_cases() -> None:
    assert mean_ci([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)
    m, lo, hi = mean_ci([2.0])
    assert m == 2.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([1.0, math.nan, 3.0])[0] == 2.0
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], level=1.0)


def test_mean_ci_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    hits = sum(lo <= 1.0 <= hi for _, lo, hi in (mean_ci(rng.exponential(1.0, 12)) for _ in range(2000)))
    assert 0.90 < hits / 2000 < 0.97  # skewed data: t slightly under-covers, never wildly


def test_median_ci_order_statistics_and_censoring() -> None:
    xs = list(range(1, 11))  # n = 10: k = 2, coverage 0.9785
    med, lo, hi = median_ci(xs)
    assert (med, lo, hi) == (5.5, 2, 9)
    assert median_ci_coverage(10) == pytest.approx(sps.binom.cdf(8, 10, 0.5) - sps.binom.cdf(1, 10, 0.5))
    med, lo, hi = median_ci([1, 2, 3, None, None])  # n = 5: min / max
    assert med == 3 and lo == 1 and hi == math.inf
    assert median_ci_coverage(5) == pytest.approx(1 - 2 ** -4)


def test_summarise_groups_and_counts() -> None:
    rows = [{"n": 1, "v": 1.0}, {"n": 1, "v": 3.0}, {"n": 2, "v": 5.0}, {"n": 2, "v": None}]
    out = summarise(rows, ("n",), ("v",))
    assert out[0]["v_mean"] == 2.0 and out[0]["v_n"] == 2 and out[0]["v_lo"] < 2.0 < out[0]["v_hi"]
    assert out[1]["v_mean"] == 5.0 and out[1]["v_n"] == 1 and math.isnan(out[1]["v_lo"])


def test_run_modes_seeds_and_validation(tmp_path: Path) -> None:
    ctx = Run("x", tmp_path, seed=5, mode="paper")
    assert ctx.default_reps(quick=1, default=3, paper=10) == 10
    assert ctx.seeds == list(range(5, 15))
    assert ctx.pick(quick=1, default=2) == 2 and ctx.pick(quick=1, default=2, paper=3) == 3
    assert Run("x", tmp_path, reps=4, mode="quick").default_reps(quick=1, default=3) == 4
    with pytest.raises(ValueError):
        Run("x", tmp_path, mode="fast")
    with pytest.raises(ValueError):
        Run("x", tmp_path, reps=0)


def _toy(ctx: Run) -> dict[str, Any]:
    ctx.default_reps(quick=2, default=3)
    ctx.record(sizes=[1, 2])
    ctx.differs("toy")
    rows = [{"rep": r, "seed": s, "n": n, "v": float(np.random.default_rng(s).normal() + n)}
            for r, s in enumerate(ctx.seeds) for n in (1, 2)]
    summary = summarise(rows, ("n",), ("v",))
    write_table(ctx.out, "toy", rows, summary)
    fig, ax = plots.figure(ctx)
    plots.band(ax, summary, "n", "v", label="toy")
    plots.reference(ax, 1.5, "reference")
    plots.save(fig, ctx, "toy.png", "toy")
    return {"ok": True}


def test_execute_writes_run_json_with_provenance(tmp_path: Path) -> None:
    out = tmp_path / "run"
    execute(_toy, Run("toy", out, seed=3, reps=4, mode="quick"))
    info = json.loads((out / "run.json").read_text())
    assert info["experiment"] == "toy" and info["mode"] == "quick" and info["seeds"] == [3, 4, 5, 6]
    assert info["reps"] == 4 and info["params"] == {"sizes": [1, 2]} and info["differs_from_paper"] == ["toy"]
    assert info["bazaar_version"] and info["wall_s"] >= 0 and info["summary"] == {"ok": True}
    assert info["git"] is None or len(info["git"]["commit"]) == 40
    assert {"cores", "python", "numpy", "scipy"} <= set(info["machine"])
    assert {"toy.png", "toy.csv", "toy_reps.csv", "toy.json"} <= set(info["files"])
    table = json.loads((out / "toy.json").read_text())
    assert len(table["reps"]) == 8 and {r["seed"] for r in table["reps"]} == {3, 4, 5, 6}
    assert all(r["v_lo"] <= r["v_mean"] <= r["v_hi"] for r in table["summary"])


def test_legacy_experiment_runs_once_and_says_so(tmp_path: Path) -> None:
    def legacy(out: Path, seed: int, quick: bool) -> dict[str, Any]:
        (out / "x.csv").write_text("a\n1\n")
        return {"seed": seed, "quick": quick}

    execute(legacy, Run("old", tmp_path, seed=2, reps=3, mode="paper"))
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["reps"] == 1 and info["summary"] == {"seed": 2, "quick": False}
    assert len(info["differs_from_paper"]) == 2


def test_cli_rejects_bad_reps_and_quick_with_paper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "collab-pricing", "--reps", "0", "--out", str(tmp_path)]) == 2
    assert "--reps must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        main(["experiment", "collab-pricing", "--quick", "--paper"])
    assert err.value.code == 2
