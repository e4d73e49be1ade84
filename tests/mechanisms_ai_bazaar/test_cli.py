"""``bazaar solve ai-bazaar``: JSON output and the exit-2 error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.node.cli import main

from .strategies import PARAMS_DIR


def _run(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["solve", "ai-bazaar", "--params", str(path), "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_calibrated_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, PARAMS_DIR / "ai-bazaar-calibrated.toml")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"price", "demand", "cpp_profit", "consumer_profit", "max_deviation_gain"}
    assert 10.0 < data["price"] < 20.0
    assert len(data["demand"]) == 8


def test_table1_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, PARAMS_DIR / "ai-bazaar-table1.toml")
    assert code == 0
    data = json.loads(out)
    assert data["price"] == 20.0 and data["demand"] == [100.0] * 8 and data["cpp_profit"] == 12000.0


GOOD = (PARAMS_DIR / "ai-bazaar-calibrated.toml").read_text()


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t + "bogus = 1\n", "bogus"),
        (lambda t: t.replace("lambda = 5.0\n", ""), "lambda"),
        (lambda t: t.replace("R = 4000.0", 'R = "lots"'), "R"),
        (lambda t: t.replace("p_min = 10.0", "p_min = 30.0"), "p_max"),
        (lambda t: t.replace("F_min = 10.0", "F_min = 150.0"), "F_max"),
        (lambda t: t.replace("n = 8", "n = 7"), "delta"),
        (lambda t: t.replace("n = 8", "n = 0"), "n"),
        (lambda t: t.replace("beta = [0.2,", "beta = [1.2,"), "beta"),
        (lambda t: t.replace("F_min = 10.0", "F_min = 0.0"), "F_min"),
    ],
)
def test_bad_parameter_files_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, key: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(edit(GOOD))  # type: ignore[operator]
    code, out, err = _run(capsys, path)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert repr(key) in err or f"'{key}[" in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, tmp_path / "absent.toml")
    assert code == 2 and "does not exist" in err
