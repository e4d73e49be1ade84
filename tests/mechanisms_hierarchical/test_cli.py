"""``bazaar solve hierarchical``: the JSON contract and the parameter errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.node.cli import main

GOOD = """
miner_demand = [300, 500, 800, 200, 650]
miner_bid = [400, 500, 900, 150, 700]
mesp_capacity = [600, 700]
mesp_ask = [0.5, 0.7]
ccsp_capacity = 2500
bundle_step = 100
"""


def _run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    p = tmp_path / "p.toml"
    p.write_text(text)
    code = main(["solve", "hierarchical", "--params", str(p), "--json"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("upper,lower", [("dp", "greedy"), ("greedy", "greedy"), ("milp", "exact"),
                                         ("dp", "exact")])
def test_json_output(tmp_path, capsys, upper, lower):
    code, out, _ = _run(tmp_path, GOOD + f'upper = "{upper}"\nlower = "{lower}"\n', capsys)
    assert code == 0
    doc = json.loads(out)
    assert len(doc["assignment"]) == 5 and len(doc["bundles"]) == 2 and len(doc["mesp_payments"]) == 2
    assert doc["welfare"] <= doc["optimum_welfare"] + 1e-6
    assert 0 <= doc["utilization"] <= 1
    if upper == "milp":
        assert doc["welfare"] == pytest.approx(doc["optimum_welfare"])
    for j, pay, bid in zip(doc["assignment"], doc["miner_payments"], [400, 500, 900, 150, 700], strict=True):
        assert (j is None and pay == 0) or (j is not None and pay <= bid + 1e-9)


@pytest.mark.parametrize(
    "extra,key",
    [
        ("foo = 1\n", "foo"),
        ('upper = "magic"\n', "upper"),
        ('lower = "milp"\n', "lower"),
        ("ccsp_cost = -1\n", "ccsp_cost"),
        ("miner_mesp = [0, 0, 5, 1, -1]\n", "miner_mesp"),
        ("miner_mesp = [0, 1]\n", "miner_mesp"),
    ],
)
def test_bad_parameters_exit_2(tmp_path, capsys, extra, key):
    code, out, err = _run(tmp_path, GOOD + extra, capsys)
    assert code == 2 and out == ""
    assert key in err


def test_wrong_lengths_and_capacity_exit_2(tmp_path, capsys):
    code, _, err = _run(tmp_path, GOOD.replace("[400, 500, 900, 150, 700]", "[1, 2]"), capsys)
    assert code == 2 and "miner_bid" in err
    code, _, err = _run(tmp_path, GOOD.replace("ccsp_capacity = 2500", "ccsp_capacity = 1000"), capsys)
    assert code == 2 and "ccsp_capacity" in err
    code, _, err = _run(tmp_path, GOOD.replace("bundle_step = 100", "bundle_step = 0"), capsys)
    assert code == 2 and "bundle_step" in err
    code, _, err = _run(tmp_path, GOOD.replace("mesp_ask = [0.5, 0.7]\n", ""), capsys)
    assert code == 2 and "mesp_ask" in err
