"""The shipped parameter files (deploy/scenarios/params/hierarchical-*.toml): they load, solve, hold the
features they document, match the draw their comment names, and the per-role pieces reproduce their outcome."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from bazaar.mechanisms.hierarchical import (
    clear_lower_on,
    clear_multi_upper_from_rows,
    clear_upper_from_rows,
    edge_only,
    hierarchical_welfare,
    lottery_weights,
    make_instance,
    make_multi_instance,
    mesp_bundle_bids,
    multi_mesp_bundle_bids,
    utilization,
)
from bazaar.mechanisms.hierarchical.multi_ccsp import cloud_cost, multi_utilization
from bazaar.mechanisms.hierarchical.scenarios import multi_ccsp_instance, paper_instance
from bazaar.node.cli import main
from bazaar.node.solve import hierarchical as solve_file

PARAMS = Path(str(files("bazaar.deploy.scenarios.params")))
SINGLE_KEYS = {"assignment", "bundles", "miner_payments", "mesp_payments", "welfare", "utilization", "utilisation",
               "optimum_welfare", "upper_welfare", "details", "lottery_weights"}
MULTI_KEYS = SINGLE_KEYS | {"ccsp_of", "upper_bound", "duality_gap"}


def _solve(name: str) -> tuple[dict, dict]:
    p = solve_file.load(str(PARAMS / f"hierarchical-{name}.toml"))
    return p, solve_file.solve_params(p)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


@pytest.mark.parametrize("name", ["small", "paper", "multi"])
def test_each_file_loads_and_solves_through_the_cli(name, capsys):
    code = main(["solve", "hierarchical", "--params", str(PARAMS / f"hierarchical-{name}.toml"), "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == (MULTI_KEYS if name == "multi" else SINGLE_KEYS)
    assert doc["utilisation"] == doc["utilization"]
    assert sum(doc["lottery_weights"]) > 0
    assert all(isinstance(w, int) for w in doc["lottery_weights"])
    assert [w > 0 for w in doc["lottery_weights"]] == [a is not None for a in doc["assignment"]]
    assert doc["welfare"] <= doc["optimum_welfare"] + 1e-9
    assert doc == _solve(name)[1]


def test_paper_file():
    p, doc = _solve("paper")
    assert len(p["miner_demand"]) == 20 and p["mesp_capacity"] == [3000.0, 3000.0]
    assert p["ccsp_capacity"] == 10000.0 and (p["upper"], p["lower"]) == ("dp", "greedy")
    assert all(100 <= d <= 1000 for d in p["miner_demand"]) and all(100 <= s <= 1000 for s in p["miner_block_size"])
    assert (p["ccsp_capacity"] - sum(p["mesp_capacity"])) / p["bundle_step"] <= 20  # a small DP
    assert all(c > 0 for c in doc["bundles"])  # both MESPs buy cloud units
    assert None in doc["assignment"]  # someone is left out
    inst = make_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"], p["ccsp_capacity"],
                         p["bundle_step"])
    edge = edge_only(inst)
    assert np.sum(edge.assignment == -1) > doc["assignment"].count(None)  # the cloud units serve more miners


def test_small_file():
    p, doc = _solve("small")
    assert len(p["miner_demand"]) == 4 and len(p["mesp_capacity"]) == 2 and not isinstance(p["ccsp_capacity"], list)
    assert all(c > 0 for c in doc["bundles"]) and None in doc["assignment"]


def test_multi_file():
    p, doc = _solve("multi")
    assert len(p["ccsp_capacity"]) == 2 and len(p["mesp_capacity"]) == 2 and len(p["miner_demand"]) == 8
    assert p["upper"] == "lagrangian"
    assert doc["duality_gap"] is not None and doc["duality_gap"] >= -1e-12
    assert doc["upper_bound"] >= doc["upper_welfare"] - 1e-12
    assert _close(doc["duality_gap"], (doc["upper_bound"] - doc["upper_welfare"]) / abs(doc["upper_bound"]))
    assert any(k is not None for k in doc["ccsp_of"])


@pytest.mark.parametrize("name,draw", [
    ("paper", lambda: paper_instance(20, np.random.default_rng(3), bundle_step=250.0,
                                     mesp_capacity=(3000.0, 3000.0), ccsp_capacity=10000.0)),
    ("small", lambda: paper_instance(4, np.random.default_rng(0), bundle_step=250.0, mesp_capacity=(700.0, 700.0),
                                     ccsp_capacity=2400.0)),
    ("multi", lambda: multi_ccsp_instance(8, np.random.default_rng(1), n_ccsps=2, n_mesps=2, mesp_capacity=1000.0,
                                          ccsp_capacity=(750.0, 1500.0), bundle_step=250.0)),
])
def test_files_hold_the_draw_their_comment_names(name, draw):
    p = solve_file.load(str(PARAMS / f"hierarchical-{name}.toml"))
    inst, pop = draw()
    np.testing.assert_allclose(p["miner_demand"], inst.demand)
    np.testing.assert_allclose(p["miner_block_size"], pop.block_size)
    np.testing.assert_allclose(p["miner_bid"], inst.bid, rtol=1e-8)
    np.testing.assert_allclose(p["mesp_ask"], inst.mesp_ask, rtol=1e-8)
    np.testing.assert_allclose(p["mesp_capacity"], inst.mesp_capacity)
    np.testing.assert_allclose(p["ccsp_capacity"], inst.ccsp_capacity)
    assert p["arrival_rate"] == pop.block_rate and p["propagation_delay"] == pop.delay_per_tx


@pytest.mark.parametrize("name", ["small", "paper", "multi"])
def test_the_per_role_pieces_reproduce_each_file(name):
    """What the network computes, participant by participant, equals the offline document (1e-9 relative)."""
    p, doc = _solve(name)
    m = len(p["mesp_capacity"])
    if name == "multi":
        inst = make_multi_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"],
                                   p["ccsp_capacity"], p["ccsp_ask"], p["bundle_step"], p["base_price"])
        rows = [multi_mesp_bundle_bids(inst, j, p["lower"]) for j in range(m)]
        bundles, ccsp_of, mesp_pay, up_welfare, bound = clear_multi_upper_from_rows(inst, rows, p["upper"])
        low = clear_lower_on(inst.single(), bundles, p["lower"])
        welfare = low.surplus - cloud_cost(inst, bundles, ccsp_of)
        util = multi_utilization(inst, low.assignment)
        assert [None if k < 0 else int(k) for k in ccsp_of] == doc["ccsp_of"]
        assert bound is not None and _close(bound, doc["upper_bound"])
    else:
        sinst = make_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"],
                              p["ccsp_capacity"], p["bundle_step"], p["ccsp_cost"], p["base_price"])
        rows = [mesp_bundle_bids(sinst, j, p["lower"]) for j in range(m)]
        up = clear_upper_from_rows(rows, p["bundle_step"], sinst.spare, sinst.ccsp_cost, p["upper"])
        bundles, mesp_pay, up_welfare = up.bundles, up.payments, up.welfare
        low = clear_lower_on(sinst, bundles, p["lower"])
        welfare = hierarchical_welfare(sinst, low.assignment, bundles)
        util = utilization(sinst, low.assignment)
    assert [None if j < 0 else int(j) for j in low.assignment] == doc["assignment"]
    for got, want in ((bundles, doc["bundles"]), (mesp_pay, doc["mesp_payments"]),
                      (low.payments, doc["miner_payments"])):
        assert all(_close(float(a), b) for a, b in zip(got, want, strict=True))
    assert _close(welfare, doc["welfare"]) and _close(util, doc["utilisation"])
    assert _close(up_welfare, doc["upper_welfare"])
    served = low.assignment >= 0
    assert lottery_weights(p["miner_demand"], served, p["miner_block_size"], p["arrival_rate"],
                           p["propagation_delay"]) == doc["lottery_weights"]
