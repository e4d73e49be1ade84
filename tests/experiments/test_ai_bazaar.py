"""``ai-bazaar-profits`` in --quick with two repetitions: every figure, every learner per N, run.json."""

from __future__ import annotations

from pathlib import Path

from bazaar.mechanisms.ai_bazaar import LEARNERS

from .conftest import check_table, run_quick


def test_profits_quick_two_reps(tmp_path: Path) -> None:
    info = run_quick("ai-bazaar-profits", tmp_path)
    data = check_table(tmp_path, "profits", 2, "cpp")
    series = {(r["figure"], r["series"]) for r in data["summary"]}
    assert {("fig8b", m) for m in LEARNERS} <= series  # every learner run per N
    assert {("fig8a", "GA on P1"), ("fig8a", "GA on P2"), ("fig8a", "PB-MARL")} <= series
    figures = {r["figure"] for r in data["curves"]}
    assert {"fig7", "fig8b", "fig9a", "fig9b", "fig9c", "fig9d"} <= figures
    assert {r["series"] for r in data["curves"] if r["figure"] == "fig9b"} == {"beta_i=0.2", "beta_i=0.45",
                                                                               "beta_i=0.7"}
    fig7 = [r for r in data["curves"] if r["figure"] == "fig7"]
    assert all(f"consumer_{i}" in fig7[0] for i in range(8))  # Fig. 7 left: every consumer's profit
    assert info["params"]["focus_consumer"] == 4
