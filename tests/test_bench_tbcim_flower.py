"""The Flower glue of benchmarks/bench_tbcim_flower.py against the offline tbcim functions (no network started).

Skipped without Flower (the ``bench`` extra)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bazaar.mechanisms.tbcim.market import (
    accuracy,
    aggregate,
    ed_update,
    initial_model,
    run_task,
    task_data,
)
from bazaar.node.markets.tbcim.config import market_config
from bazaar.node.scenario import load_scenario

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"  # Flower reports usage unless told not to; nothing leaves the machine
os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
pytest.importorskip("flwr")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tbcim_flower.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tbcim_flower", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def task():
    cfg = replace(market_config(load_scenario("tbcim-small")).market, epochs=2)
    return cfg, task_data(cfg), run_task(cfg)


def test_client_fit_is_ed_update(bench, task):
    cfg, data, run = task
    params = initial_model(cfg, data.X_train.shape[1])
    for i, compute in run.workers.items():
        client = bench.TbcimClient(cfg, data, i, compute)
        (new,), n, _ = client.fit([params], bench.fit_config(2))
        assert n == len(data.parts[i])
        np.testing.assert_array_equal(new, params + ed_update(cfg, data, i, 1, params, compute))


def test_client_on_its_shard_alone_matches(bench, task):
    cfg, data, run = task
    params = initial_model(cfg, data.X_train.shape[1])
    i, compute = next(iter(run.workers.items()))
    idx = data.parts[i]
    alone = bench.TbcimClient(cfg, bench.shard_data(cfg, data.X_train[idx], data.y_train[idx], i), i, compute)
    full = bench.TbcimClient(cfg, data, i, compute)
    np.testing.assert_array_equal(alone.fit([params], {"epoch": 0})[0][0], full.fit([params], {"epoch": 0})[0][0])


def test_flower_fedavg_rounds_match_the_offline_task(bench, task):
    cfg, data, run = task
    workers = dict(sorted(run.workers.items()))
    assert not run.rejected  # the offline run is then plain FedAvg, the loop below
    init = initial_model(cfg, data.X_train.shape[1])
    strategy = bench.TimedFedAvg(cfg, data, len(workers), init)
    clients = [bench.TbcimClient(cfg, data, i, c) for i, c in workers.items()]
    flower, offline = init, init
    for epoch in range(cfg.epochs):
        flower = bench.flower_round(strategy, clients, flower, epoch + 1)
        deltas = [ed_update(cfg, data, i, epoch, offline, c) for i, c in workers.items()]
        offline = aggregate(offline, deltas, [float(len(data.parts[i])) for i in workers])
        np.testing.assert_allclose(flower, offline, rtol=0, atol=1e-12)
        assert accuracy(cfg, data, flower) == pytest.approx(run.accuracy[epoch], abs=1e-9)
    _, metrics = strategy.evaluate(cfg.epochs, bench.ndarrays_to_parameters([flower]))
    assert metrics["accuracy"] == pytest.approx(run.accuracy[-1], abs=1e-9)
    assert strategy.accuracy[cfg.epochs] == metrics["accuracy"]
