"""Benchmark of the hierarchical auction's solvers; every figure is a ratio against a baseline of the same run.

1. Lower level: greedy (Algorithm 1) versus the MILP — welfare ratio and speed-up on 20 / 100 / 500 miners.
2. Upper level: DP (Algorithm 2) versus the MILP — time as the spare capacity (grid steps) and the MESP count grow.
3. Several CCSPs: Lagrangian heuristic versus the MILP — duality gap, gap to the optimum and time, 5 CCSPs × 20 MESPs.

Usage: ``python benchmarks/bench_hierarchical.py [--quick] [--seed S]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bazaar.mechanisms.hierarchical import (
    BundleBids,
    dp_allocate,
    greedy_allocate,
    lagrangian_allocate,
    make_market,
    milp_allocate,
    upper_market,
)
from bazaar.mechanisms.hierarchical.scenarios import paper_instance
from bazaar.node.stdio import quiet_stdout


def timed(fn: Callable[..., Any], repeat: int = 1) -> tuple[Any, float]:
    """Best wall time of ``repeat`` calls and the last result."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        with quiet_stdout():
            out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def concave_bids(rng: np.random.Generator, m: int, k: int, scale: float = 100.0) -> np.ndarray:
    """``(m, k)`` increasing, concave bundle bids."""
    inc = np.sort(rng.uniform(0.0, 1.0, (m, k)), axis=1)[:, ::-1]
    return scale * np.cumsum(inc, axis=1) / k


def bench_lower(sizes: list[int], seed: int, limit: float) -> None:
    print("\n[1] lower level: greedy (Alg. 1) vs MILP, paper instance, MESPs at 5000 units each")
    print(f"{'miners':>7} {'greedy W / MILP W':>18} {'greedy s':>10} {'MILP s':>10} {'speed-up':>9}  MILP status")
    for n in sizes:
        inst, _ = paper_instance(n, np.random.default_rng([seed, n]))
        m = inst.lower_market(np.array([2000.0, 2000.0]))
        g, tg = timed(lambda m=m: greedy_allocate(m), repeat=3)
        e, te = timed(lambda m=m: milp_allocate(m, time_limit=limit))
        status = "optimal" if e.proven else f"time limit {limit:.0f} s, best found"
        print(f"{n:>7} {g.welfare / e.welfare:>18.4f} {tg:>10.4f} {te:>10.3f} {te / tg:>9.1f}  {status}")


def bench_upper(steps: list[int], mesps: list[int], seed: int) -> None:
    print("\n[2] upper level: DP (Alg. 2) vs MILP on concave bundle bids")
    print(f"{'MESPs':>6} {'steps K':>8} {'DP s':>9} {'MILP s':>9} {'MILP/DP':>8} {'W equal':>8}")
    rng = np.random.default_rng(seed)
    for m_count, k in [(2, s) for s in steps] + [(mm, steps[1]) for mm in mesps]:
        bids = BundleBids(1.0, concave_bids(rng, m_count, k), 0.0)
        um = upper_market(bids, float(k), 0.0)
        d, td = timed(lambda um=um, bids=bids: dp_allocate(um, bids.step), repeat=3)
        e, te = timed(lambda um=um: milp_allocate(um))
        print(f"{m_count:>6} {k:>8} {td:>9.4f} {te:>9.4f} {te / td:>8.1f} {abs(d.welfare - e.welfare) < 1e-6:>8}")


def bench_lagrangian(n_ccsps: int, n_mesps: int, k: int, trials: int, seed: int) -> None:
    print(f"\n[3] several CCSPs: Lagrangian vs MILP, {n_ccsps} CCSPs x {n_mesps} MESPs, {k} bundle sizes each")
    print(f"{'trial':>5} {'dual gap':>9} {'gap to MILP':>12} {'greedy gap':>11} {'Lagr. s':>9} {'MILP s':>9} "
          f"{'MILP/Lagr.':>10}")
    gaps, duals, ratios, ggaps = [], [], [], []
    for t in range(trials):
        rng = np.random.default_rng([seed, t])
        q = np.tile(np.arange(1, k + 1, dtype=float), (n_mesps, 1))
        v = concave_bids(rng, n_mesps, k, scale=100.0)
        cap = np.round(rng.uniform(0.15, 0.35, n_ccsps) * n_mesps * k / n_ccsps * 2)
        m = make_market(q, v, cap, rng.uniform(1.0, 4.0, n_ccsps))
        lag, tl = timed(lambda m=m: lagrangian_allocate(m))
        opt, to = timed(lambda m=m: milp_allocate(m))
        gap = (opt.welfare - lag.allocation.welfare) / opt.welfare
        ggap = (opt.welfare - greedy_allocate(m).welfare) / opt.welfare
        gaps.append(gap)
        ggaps.append(ggap)
        duals.append(lag.duality_gap)
        ratios.append(to / tl)
        print(f"{t:>5} {lag.duality_gap:>9.4f} {gap:>12.4f} {ggap:>11.4f} {tl:>9.3f} {to:>9.3f} {to / tl:>10.2f}")
    print(f"{'mean':>5} {np.mean(duals):>9.4f} {np.mean(gaps):>12.4f} {np.mean(ggaps):>11.4f} {'':>9} {'':>9} "
          f"{np.mean(ratios):>10.2f}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (seconds)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        bench_lower([20, 100], args.seed, 10.0)
        bench_upper([10, 40], [5], args.seed)
        bench_lagrangian(5, 20, 5, 2, args.seed)
    else:
        bench_lower([20, 100, 500], args.seed, 60.0)
        bench_upper([10, 40, 160, 640], [5, 10, 20], args.seed)
        bench_lagrangian(5, 20, 10, 5, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
