"""Benchmark of market ai-bazaar: Stackelberg solve time fast vs reference, and learner episodes per second.

Run ``python benchmarks/bench_ai_bazaar.py [--quick]``. Figures are ratios against baselines measured in the same
run: the fast leader solver against the reference (dense grid + reference followers), the fast follower solver
against the reference best-response iteration, and each baseline learner against WoLF-PHC (PB-MARL).
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from bazaar.mechanisms.ai_bazaar import (
    LEARNERS,
    Params,
    follower_equilibrium,
    reference_follower_equilibrium,
    reference_stackelberg,
    run_learning,
    solve_stackelberg,
)

PARAMS = Path(__file__).resolve().parents[1] / "deploy" / "scenarios" / "params" / "ai-bazaar-calibrated.toml"


def _timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with PARAMS.open("rb") as fh:
        params = Params.from_mapping(tomllib.load(fh))
    grid = 41 if args.quick else 201
    t_fast = _timed(lambda: solve_stackelberg(params), 1 if args.quick else 3)
    t_ref = _timed(lambda: reference_stackelberg(params, grid=grid, refine=30), 1)
    fast, ref = solve_stackelberg(params), reference_stackelberg(params, grid=grid, refine=30)
    print(f"stackelberg (n={params.n}): fast {t_fast:.3f} s, reference (grid {grid}) {t_ref:.3f} s, "
          f"speed-up x{t_ref / t_fast:.1f}; price {fast.price:.6f} vs {ref.price:.6f}, "
          f"profit {fast.cpp_profit:.4f} vs {ref.cpp_profit:.4f}")
    p = fast.price
    f_fast = _timed(lambda: follower_equilibrium(params, p), 5)
    f_ref = _timed(lambda: reference_follower_equilibrium(params, p), 1)
    print(f"follower equilibrium: fast {f_fast * 1e3:.2f} ms, reference {f_ref * 1e3:.1f} ms, "
          f"speed-up x{f_ref / f_fast:.1f}")
    episodes = 300 if args.quick else 3000
    rates = {}
    for learner in LEARNERS:
        n_ep = episodes // 3 if learner == "minimax-q" else episodes
        t = _timed(lambda lr=learner, k=n_ep: run_learning(params, lr, episodes=k, seed=0), 1)
        rates[learner] = n_ep / t
    base = rates["pb-marl"]
    for learner, rate in rates.items():
        print(f"{learner:10s} {rate:8.0f} episodes/s ({params.n} consumers + CPP)  x{rate / base:.2f} of PB-MARL")


if __name__ == "__main__":
    main()
