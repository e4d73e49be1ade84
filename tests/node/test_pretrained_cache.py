"""The shipped PB-MARL pre-training results (node/markets/ai_bazaar/pretrained.py, docs/adr/0122)."""

from __future__ import annotations

import json

import pytest

from bazaar.node.markets.ai_bazaar import pretrained


def test_every_shipped_scenario_that_pretrains_has_its_file_for_the_current_code() -> None:
    inputs = pretrained.shipped_inputs()
    assert inputs, "the default ai-bazaar scenario pre-trains"
    for item in inputs:
        kw = {k: item[k] for k in ("episodes", "price_levels", "demand_levels", "buckets", "seed")}
        key = pretrained.cache_key(item["params"], **kw)
        path = pretrained._path(key)
        assert path.is_file(), (f"no shipped pre-training for {item['scenario']} under the current code: run "
                                "python -m bazaar.node.markets.ai_bazaar.pretrained")
        assert json.loads(path.read_text())["key"] == key


def test_the_key_changes_with_every_input() -> None:
    item = pretrained.shipped_inputs()[0]
    kw = {k: item[k] for k in ("episodes", "price_levels", "demand_levels", "buckets", "seed")}
    base = pretrained.cache_key(item["params"], **kw)
    for name in kw:
        assert pretrained.cache_key(item["params"], **{**kw, name: kw[name] + 1}) != base


@pytest.mark.slow
def test_the_shipped_result_is_what_the_self_play_returns() -> None:
    # the full self-play of the default scenario (≈ 3 s of CPU): the shipped file holds exactly its result
    item = pretrained.shipped_inputs()[0]
    kw = {k: item[k] for k in ("episodes", "price_levels", "demand_levels", "buckets", "seed")}
    assert pretrained.pretrained_agents(item["params"], **kw) == pretrained.compute(item["params"], **kw)
