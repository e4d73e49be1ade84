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


MULTI = """
miner_demand = [300, 500, 800, 200]
miner_bid = [400, 500, 900, 150]
mesp_capacity = [600, 700]
mesp_ask = [0.5, 0.7]
ccsp_capacity = [500, 1000]
ccsp_ask = [0.1, 0.2]
bundle_step = 250
"""


def test_single_output_spells_utilisation_both_ways_and_reports_weights_only_with_block_sizes(tmp_path, capsys):
    _, out, _ = _run(tmp_path, GOOD, capsys)
    doc = json.loads(out)
    assert doc["utilisation"] == doc["utilization"] and "lottery_weights" not in doc
    assert doc["details"]["decomposable"] is True and doc["upper_welfare"] is not None
    _, out, _ = _run(tmp_path, GOOD + "miner_block_size = [100, 200, 300, 400, 500]\n", capsys)
    doc = json.loads(out)
    assert len(doc["lottery_weights"]) == 5 and sum(doc["lottery_weights"]) > 0
    _, out, _ = _run(tmp_path, GOOD + 'upper = "milp"\nlower = "exact"\n', capsys)
    doc = json.loads(out)
    assert doc["details"]["decomposable"] is False and doc["upper_welfare"] is None


@pytest.mark.parametrize("upper", ["lagrangian", "greedy", "milp"])
def test_multi_ccsp_output(tmp_path, capsys, upper):
    code, out, _ = _run(tmp_path, MULTI + f'upper = "{upper}"\nminer_block_size = [100, 200, 300, 400]\n', capsys)
    assert code == 0
    doc = json.loads(out)
    for key in ("assignment", "bundles", "ccsp_of", "miner_payments", "mesp_payments", "welfare",
                "optimum_welfare", "utilisation", "utilization", "upper_welfare", "upper_bound", "duality_gap",
                "details", "lottery_weights"):
        assert key in doc, key
    assert doc["utilisation"] == doc["utilization"]
    assert len(doc["ccsp_of"]) == 2 and all(k in (None, 0, 1) for k in doc["ccsp_of"])
    assert doc["welfare"] <= doc["optimum_welfare"] + 1e-9
    if upper == "lagrangian":
        assert doc["upper_bound"] >= doc["upper_welfare"] - 1e-9 and doc["duality_gap"] is not None
    else:
        assert doc["upper_bound"] is None and doc["duality_gap"] is None


@pytest.mark.parametrize(
    "text,key",
    [
        (MULTI + "ccsp_cost = 0.1\n", "ccsp_cost"),
        (MULTI + "miner_mesp = [0, 0, 1, 1]\n", "miner_mesp"),
        (MULTI + 'upper = "dp"\n', "upper"),
        (MULTI.replace("ccsp_ask = [0.1, 0.2]", "ccsp_ask = [0.1]"), "ccsp_ask"),
        (MULTI.replace("ccsp_ask = [0.1, 0.2]\n", ""), "ccsp_ask"),
        (MULTI.replace("ccsp_capacity = [500, 1000]", "ccsp_capacity = [500, -1]"), "ccsp_capacity"),
        (GOOD + "ccsp_ask = [0.1]\n", "ccsp_ask"),
        (GOOD + 'upper = "lagrangian"\n', "upper"),
        (GOOD + "miner_block_size = [1, 2]\n", "miner_block_size"),
        (GOOD + "miner_block_size = [1, 2, 0, 4, 5]\n", "miner_block_size"),
        (GOOD + "miner_block_size = [1, 2, 3, 4, 5]\narrival_rate = -1\n", "arrival_rate"),
        (GOOD + "propagation_delay = -0.1\n", "propagation_delay"),
    ],
)
def test_bad_multi_and_lottery_keys_exit_2(tmp_path, capsys, text, key):
    code, out, err = _run(tmp_path, text, capsys)
    assert code == 2 and out == ""
    assert key in err
