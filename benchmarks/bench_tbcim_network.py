"""Figures of market tbcim over real processes: time per global epoch on the network against the offline epoch
(the same training and FedAvg in one process, measured in the same run), the first round (auction + lower
games + epoch 0), weights moved per epoch against the minimum (one model down and one update up per worker),
and peak RSS per process.

    python benchmarks/bench_tbcim_network.py [--scenario tbcim-small] [--json]

The network runs one whole task (every epoch of the scenario). Nothing is asserted: this machine is shared and
noisy; read the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_network import percentile  # run as a script: benchmarks/ is on the path

from bazaar.mechanisms.tbcim import market as mk
from bazaar.node import launcher
from bazaar.node.markets.tbcim.config import market_config
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario


def offline_epochs(cfg: mk.MarketConfig) -> tuple[list[float], int, int]:
    """Seconds of each offline epoch (every worker's local training, the filter, FedAvg, the accuracy), the
    number of workers and the model size — the same functions the network's nodes call."""
    data = mk.task_data(cfg)
    reports = [mk.ed_report(cfg, data, i) for i in range(cfg.n_eds)]
    bids = {s: mk.es_bid(cfg, [reports[i] for i in cfg.members(s)]) for s in range(cfg.n_es)}
    alloc = mk.allocate(1, cfg.n_es, bids)
    workers: dict[int, float] = {}
    for s in alloc.winners:
        kept = [cfg.members(s)[k] for k in bids[s].selected]
        game = mk.lower_game(cfg, [reports[i] for i in kept])
        workers.update({kept[k]: float(game.compute[k]) for k in game.participants.tolist()})
    params = mk.initial_model(cfg)
    filt = mk.new_filter(cfg)
    times = []
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        deltas, samples = [], []
        for i in sorted(workers):
            delta = mk.ed_update(cfg, data, i, epoch, params, workers[i])
            if mk.screen(filt, i, delta)[0]:
                deltas.append(delta)
                samples.append(float(reports[i].samples))
        params = mk.aggregate(params, deltas, samples)
        mk.accuracy(cfg, data, params)
        times.append(time.perf_counter() - t0)
    return times, len(workers), int(params.size)


def measure(scenario: str) -> dict[str, Any]:
    """One task of ``scenario`` over processes, and the offline epochs of the same market."""
    sc = load_scenario(scenario)
    cfg = market_config(sc).market
    offline, n_workers, n_params = offline_epochs(cfg)
    with tempfile.TemporaryDirectory(prefix="bench-tbcim-") as tmp:
        root = Path(tmp) / "net"
        t0 = time.monotonic()
        info = launcher.net_up(scenario, root)
        up = time.monotonic() - t0
        try:
            rounds = list(run_rounds(root, cfg.epochs))
            status = launcher.net_status(root)
            blob_bytes = 0
            for node in launcher.NetDir(root).load()["nodes"].values():
                st = launcher.node_status(node) or {}
                blob_bytes += int(st.get("app", {}).get("blob_bytes_in", 0))
        finally:
            launcher.net_down(root)
    epochs = [r["latency_all_ms"] / 1000 for r in rounds[1:] if r.get("latency_all_ms") is not None]
    rss = [row["rss_mb"] for row in status["nodes"] if row["rss_mb"] is not None]
    minimum = 2 * n_workers * 8 * n_params
    off = statistics.median(offline)
    out: dict[str, Any] = {
        "scenario": sc.name, "processes": len(info["nodes"]), "epochs": cfg.epochs, "workers": n_workers,
        "net_up_s": round(up, 1), "final_everywhere": sum(1 for r in rounds if r.get("final_everywhere")),
        "first_round_s": (rounds[0].get("latency_all_ms") or 0) / 1000,
        "epoch_p50_s": percentile(epochs, 0.5) if epochs else None,
        "epoch_p95_s": percentile(epochs, 0.95) if epochs else None,
        "offline_epoch_s": off, "ratio_network_offline": (percentile(epochs, 0.5) / off) if epochs else None,
        "blob_bytes_per_epoch": blob_bytes / cfg.epochs, "min_bytes_per_epoch": minimum,
        "accuracy": rounds[-1]["outcome"]["accuracy"][-1] if rounds else None,
        "rss_max_mb": max(rss) if rss else None, "rss_median_mb": statistics.median(rss) if rss else None,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", default="tbcim-small", help="a tbcim scenario (shipped name or path)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    out = measure(args.scenario)
    if args.json:
        print(json.dumps(out))
        return
    print(f"scenario {out['scenario']}: {out['processes']} processes, {out['epochs']} epochs, "
          f"{out['workers']} workers; net up {out['net_up_s']} s")
    print(f"first round (task, auction, lower games, epoch 0): {out['first_round_s']:.2f} s")
    if out["epoch_p50_s"] is not None:
        print(f"global epoch over the network (start -> final on every node): p50 {out['epoch_p50_s']:.3f} s, "
              f"p95 {out['epoch_p95_s']:.3f} s; offline epoch {out['offline_epoch_s'] * 1000:.1f} ms; "
              f"ratio {out['ratio_network_offline']:.1f}x")
    print(f"weights taken in per epoch (pulled, pushed, or carried by the epoch announcement): "
          f"{out['blob_bytes_per_epoch'] / 1024:.1f} KiB (minimum: one model down and one update up per worker = "
          f"{out['min_bytes_per_epoch'] / 1024:.1f} KiB)")
    print(f"rounds final everywhere: {out['final_everywhere']}/{out['epochs']}; accuracy {out['accuracy']:.3f}")
    if out["rss_max_mb"] is not None:
        print(f"peak RSS per process: max {out['rss_max_mb']:.0f} MB, median {out['rss_median_mb']:.0f} MB")


if __name__ == "__main__":
    main()
