"""``cloudchain-30d`` repetitions: one network per seed, headline figures with intervals (network run replaced by a
stand-in that writes a results document, so this test starts no process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bazaar.node.experiments.cloudchain import HEADLINES, run
from bazaar.node.experiments.repro import Run, execute


def _fake(out: Path, seed: int, quick: bool) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    res = {"sla_compliance": 0.9 + seed / 100, "jain_by_group": {"4": 0.95, "20": 0.9 - seed / 100},
           "privacy": {"epsilon_spent": 1.0}, "storage": {"p2p_read_ms": {"p50": 3.0 + seed},
                                                          "chain_record_ms": {"p50": 900.0}}}
    (out / "results.json").write_text(json.dumps(res))
    return {"seed": seed, "quick": quick}


def test_reps_run_one_network_per_seed(tmp_path: Path) -> None:
    summary = execute(lambda ctx: run(ctx, _fake), Run("cloudchain-30d", tmp_path, seed=4, reps=3, mode="quick"))
    data = json.loads((tmp_path / "cloudchain_reps.json").read_text())
    assert [r["seed"] for r in data["reps"]] == [4, 5, 6]
    assert all((tmp_path / f"seed-{s}" / "results.json").exists() for s in (4, 5, 6))
    row = data["summary"][0]
    assert row["sla_compliance_mean"] == summary["sla_compliance"] and row["sla_compliance_n"] == 3
    assert row["sla_compliance_lo"] < row["sla_compliance_mean"] < row["sla_compliance_hi"]
    assert set(HEADLINES) <= {k[:-5] for k in row if k.endswith("_mean")}
    assert json.loads((tmp_path / "run.json").read_text())["reps"] == 3


def test_one_rep_writes_into_the_run_folder(tmp_path: Path) -> None:
    assert execute(lambda ctx: run(ctx, _fake), Run("cloudchain-30d", tmp_path, mode="quick")) == {
        "seed": 0, "quick": True}
    assert (tmp_path / "results.json").exists()
