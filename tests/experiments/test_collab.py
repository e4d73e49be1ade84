"""collab experiments in --quick with two repetitions (and --literal): every repetition, intervals, run.json."""

from __future__ import annotations

from pathlib import Path

from .conftest import check_table, run_quick


def test_collab_payoff_quick_two_reps_literal(tmp_path: Path) -> None:
    info = run_quick("collab-payoff", tmp_path, literal=True)
    assert info["literal"] and info["params"]["damping"] == 1.0
    assert info["params"]["tapa_step_limits"] == [0.05, 2.0] and info["params"]["evo_population"] == 6
    data = check_table(tmp_path, "collab_payoff", 2, "total_payoff")
    assert {r["algorithm"] for r in data["summary"]} == {"spa", "pdpa", "tapa", "qlearning", "evolutionary"}


def test_collab_portfolio_quick_two_reps_literal_adds_plain_sgsa(tmp_path: Path) -> None:
    info = run_quick("collab-portfolio", tmp_path, literal=True)
    assert info["params"]["methods"] == ["sgsa", "newton", "greedy", "sgsa-plain"]
    data = check_table(tmp_path, "collab_portfolio", 2, "total_payoff")
    assert {r["method"] for r in data["summary"]} == {"sgsa", "newton", "greedy", "sgsa-plain"}
