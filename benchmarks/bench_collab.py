"""SGSA versus Newton on OPT-1: payoff ratio and speed-up for 10 → 100 publishers (one run, same instances).

Run: python benchmarks/bench_collab.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bazaar.mechanisms.collab import Book, optimize_portfolio
from bazaar.mechanisms.collab.instances import random_publishers, random_sellers


def main() -> None:
    """Print, per number of publishers, Newton time / SGSA time and SGSA payoff / Newton payoff."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sellers", type=int, default=10)
    args = ap.parse_args()
    sizes = [10, 20] if args.quick else list(range(10, 101, 10))
    book = Book.from_sellers(random_sellers(np.random.default_rng(0), args.sellers))
    print(f"{'publishers':>10} {'sgsa_s':>9} {'newton_s':>9} {'greedy_s':>9} {'speedup':>8}"
          f" {'payoff_ratio':>12} {'greedy_ratio':>12}")
    for j in sizes:
        pubs = random_publishers(np.random.default_rng(j), j)
        res = {}
        for m in ("sgsa", "newton", "greedy"):
            t0 = time.perf_counter()
            pay = sum(optimize_portfolio(p, book, m).payoff for p in pubs)
            res[m] = (time.perf_counter() - t0, pay)
        print(f"{j:>10} {res['sgsa'][0]:>9.4f} {res['newton'][0]:>9.4f} {res['greedy'][0]:>9.4f} "
              f"{res['newton'][0] / res['sgsa'][0]:>8.2f} {res['sgsa'][1] / res['newton'][1]:>12.5f}"
              f" {res['greedy'][1] / res['newton'][1]:>12.5f}")


if __name__ == "__main__":
    main()
