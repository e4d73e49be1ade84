"""``--params`` and ``--scenario`` take a shipped name or a path; every solver ships an example that solves."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from bazaar.deploy import shipped_file, shipped_folder, shipped_names
from bazaar.node.cli import build_parser, main
from bazaar.node.params import ParamError
from bazaar.node.scenario import load_scenario
from bazaar.node.shipped import resolve


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


SCENARIO_SOLVERS = ["tbcim-bcfl"]
"""Offline twins of a networked market: their input is a scenario (``--scenario NAME|FILE``), not a params file."""
SOLVERS = sorted(set(_subparsers(_subparsers(build_parser())["solve"])) - set(SCENARIO_SOLVERS))


def test_there_are_seven_params_solvers_and_one_scenario_solver() -> None:
    assert SOLVERS == ["ai-bazaar", "cloudchain-allocate", "collab-portfolio", "collab-pricing", "hierarchical",
                       "tbcim-auction", "tbcim-stackelberg"]
    assert set(SCENARIO_SOLVERS) <= set(_subparsers(_subparsers(build_parser())["solve"]))


@pytest.mark.parametrize("solver", SCENARIO_SOLVERS)
def test_a_scenario_solver_prints_its_example_and_solves_it_by_name_and_path(
        solver: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", solver, "--example"]) == 0
    text = capsys.readouterr().out
    name = next(n for n in shipped_names("scenario") if shipped_file("scenario", n).read_text(encoding="utf-8")
                == text)
    assert main(["solve", solver, "--scenario", name, "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)
    copy = tmp_path / "mine.toml"
    copy.write_text(text, encoding="utf-8")
    assert main(["solve", solver, "--scenario", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == by_name
    assert main(["solve", solver]) == 2
    assert "'--scenario'" in capsys.readouterr().err


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_has_params_and_example(solver: str) -> None:
    parser = _subparsers(_subparsers(build_parser())["solve"])[solver]
    options = {o for a in parser._actions for o in a.option_strings}
    assert {"--params", "--example", "--json"} <= options


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_example_prints_loads_and_solves(solver: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["solve", solver, "--example"]) == 0
    text = capsys.readouterr().out
    name = next(n for n in shipped_names("params") if shipped_file("params", n).read_text(encoding="utf-8") == text)
    edited = tmp_path / "mine.toml"
    edited.write_text(text, encoding="utf-8")
    assert main(["solve", solver, "--params", str(edited), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    monkeypatch.chdir(tmp_path)  # a name resolves inside the package, whatever the working folder
    assert main(["solve", solver, "--params", name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == from_file


def test_a_name_with_toml_suffix_and_a_relative_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("hierarchical-small.toml", "params", "--params") == shipped_file("params", "hierarchical-small")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hierarchical-small").write_text(shipped_file("params", "hierarchical-paper").read_text())
    # an existing file wins over a shipped name
    assert resolve("hierarchical-small", "params", "--params") == Path("hierarchical-small")
    assert main(["solve", "hierarchical", "--params", "hierarchical-small", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["assignment"]) == 20  # the paper file's 20 miners


def test_an_unknown_name_is_one_line_exit_2_listing_the_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "hierarchical", "--params", "no-such-set"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'--params'" in err and "hierarchical-paper" in err


def test_missing_paths_still_say_they_do_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for ref in (str(tmp_path / "absent.toml"), "absent.toml", "sub/absent"):
        assert main(["solve", "ai-bazaar", "--params", ref]) == 2
        assert "does not exist" in capsys.readouterr().err


def test_params_is_required_without_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "collab-portfolio"]) == 2
    assert "'--params'" in capsys.readouterr().err


def test_tbcim_auction_options_override_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "a.toml"
    p.write_text('sellers = 3\nsetting = "single-uniform"\nsamples = 30\nseed = 4\nshow = 1\nregret_profiles = 3\n')
    assert main(["solve", "tbcim-auction", "--params", str(p), "--samples", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["setting"], out["samples"], out["seed"], out["regret_profiles"]) == ("single-uniform", 20, 4, 3)
    assert len(out["examples"]) == 1
    assert main(["solve", "tbcim-auction", "--samples", "20"]) == 2
    assert "'sellers'" in capsys.readouterr().err
    p.write_text("sellers = 3\nbogus = 1\n")
    assert main(["solve", "tbcim-auction", "--params", str(p)]) == 2
    assert "'bogus'" in capsys.readouterr().err


def test_scenarios_by_name_by_suffixed_name_and_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = load_scenario("hierarchical-small")
    assert load_scenario("hierarchical-small.toml").source == by_name.source
    copy = tmp_path / "mine.toml"
    copy.write_text(by_name.source.read_text())
    os.symlink(shipped_folder("scenario") / "params", tmp_path / "params")  # the file it names, next to it
    assert load_scenario(str(copy)).source == copy.resolve()
    with pytest.raises(ParamError, match=r"no shipped scenario 'nope'.*hierarchical-small"):
        load_scenario("nope")
