"""``tbcim-chain`` (TBCIM Fig. 9-10) in --quick with two repetitions."""

from __future__ import annotations

from pathlib import Path

from bazaar.node.experiments.tbcim_chain import GAS_PRICES

from .conftest import check_table, run_quick


def test_tbcim_chain_quick_two_reps(tmp_path: Path) -> None:
    info = run_quick("tbcim-chain", tmp_path)
    assert info["params"]["gas_prices"] == list(GAS_PRICES)
    data = check_table(tmp_path, "tbcim_chain", 2, "es_revenue_mean")
    assert [r["gas_price"] for r in data["summary"]] == list(GAS_PRICES)
    bids = [r["mean_bid_mean"] for r in data["summary"]]
    assert bids == sorted(bids) and bids[0] < bids[-1]  # the chain cost enters every ES's bid
    assert {r["gas_price"] for r in data["accuracy_curves"]} == set(GAS_PRICES)
