"""The collab solve commands and experiments through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.node.cli import main

SELLERS = """compute_capacity = [20, 30, 15]
compute_price = [4.0, 2.5, 9.0]
data_capacity = [15, 20, 10]
data_price = [8.0, 6.0, 12.0]
phi = [0.4, 0.3, 0.5]
theta = [0.02, 0.03, 0.01]
"""
PORTFOLIO = "budget = 60.0\ndeadline = 12.0\nown_data = 30.0\nmultiplier = 2.0\nomega = 0.6\n" + SELLERS
PRICING = ('algorithm = "tapa"\nmax_iter = 30\n[sellers]\n' + SELLERS
           + "[publishers]\nbudget = [60.0, 40.0]\ndeadline = [12.0, 8.0]\nown_data = [30.0, 20.0]\n"
           + "multiplier = [2.0, 0.0]\nomega = [0.6, 0.5]\n")


@pytest.mark.parametrize("method", ["sgsa", "newton", "greedy", "exhaustive"])
def test_portfolio_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], method: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(PORTFOLIO + f'method = "{method}"\n')
    assert main(["solve", "collab-portfolio", "--params", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"compute", "data", "compute_purchases", "data_purchases", "payoff", "spent"} <= set(out)
    assert out["spent"] <= 60.0 + 1e-9


def test_pricing_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "q.toml"
    p.write_text(PRICING)
    assert main(["solve", "collab-pricing", "--params", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"iterations", "equilibrium", "prices", "gap", "total_payoff"} <= set(out)
    assert len(out["prices"]["compute"]) == 3


@pytest.mark.parametrize(("text", "key"), [
    (PORTFOLIO + "bogus = 1\n", "bogus"),
    (PORTFOLIO.replace("omega = 0.6", "omega = 1.5"), "omega"),
    (PORTFOLIO.replace("phi = [0.4, 0.3, 0.5]", "phi = [0.4]"), "phi"),
    (PORTFOLIO.replace("budget = 60.0\n", ""), "budget"),
])
def test_portfolio_bad_params(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                              key: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    assert main(["solve", "collab-portfolio", "--params", str(p)]) == 2
    assert f"'{key}'" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "key"), [
    (PRICING + "[pricing]\nsigma = 2.0\n", "pricing.sigma"),
    (PRICING + "[pricing]\ndamping = 0.0\n", "pricing.damping"),
    (PRICING.replace("budget = [60.0, 40.0]", "budget = [60.0]"), "publishers.deadline"),
    (PRICING.replace('algorithm = "tapa"', 'algorithm = "nope"'), "algorithm"),
    (PRICING + "[extra]\nx = 1\n", "extra"),
    (PRICING.replace("compute_price = [4.0, 2.5, 9.0]", "compute_price = [40.0, 2.5, 9.0]"),
     "sellers.compute_price[0]"),
])
def test_pricing_bad_params(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str) -> None:
    p = tmp_path / "q.toml"
    p.write_text(text)
    assert main(["solve", "collab-pricing", "--params", str(p)]) == 2
    assert f"'{key}'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["collab-portfolio", "collab-pricing"])
def test_experiments_quick(tmp_path: Path, name: str) -> None:
    assert main(["experiment", name, "--quick", "--out", str(tmp_path)]) == 0
    assert list(tmp_path.glob("*.png")) and list(tmp_path.glob("*.csv"))
