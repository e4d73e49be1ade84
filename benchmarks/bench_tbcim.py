"""TBCIM benchmarks: Stackelberg solve time (closed form vs numeric reference) and FedAvg round time.

Run ``python benchmarks/bench_tbcim.py [--quick]``. Figures are printed as ratios against a baseline
measured in the same run: the numeric reference for the Stackelberg solver, and the 10-ED round for FedAvg.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from bazaar.mechanisms.fl.data import dirichlet_split, load_digits, split_train_eval
from bazaar.mechanisms.fl.models import get_model
from bazaar.mechanisms.fl.rounds import federated_round
from bazaar.mechanisms.tbcim.reference import reference_leader
from bazaar.mechanisms.tbcim.stackelberg import StackelbergGame, solve_stackelberg


def _time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _game(n: int, seed: int = 0) -> StackelbergGame:
    rng = np.random.default_rng(seed)
    return StackelbergGame(
        d=rng.uniform(50, 500, n), theta=rng.uniform(0.2, 1.5, n), beta=rng.uniform(0.5, 2.0, n),
        gamma=rng.uniform(0, 0.01, n), c_m=rng.uniform(0, 1.0, n), omega=5.0, kappa=0.01, p_g=1e-4,
    )


def bench_stackelberg(sizes: list[int], grid: int) -> None:
    print(f"Stackelberg solve (best of 3); reference = dense grid of {grid} prices + bounded refinement")
    print(f"{'EDs':>6} {'closed form [ms]':>17} {'reference [ms]':>15} {'speed-up':>9} {'|profit gap|':>13}")
    for n in sizes:
        g = _game(n)
        fast = _time(lambda g=g: solve_stackelberg(g), 3)
        slow = _time(lambda g=g: reference_leader(g, grid=grid), 1 if n >= 1000 else 3)
        gap = abs(solve_stackelberg(g).es_profit - reference_leader(g, grid=grid)[1])
        print(f"{n:>6} {1e3 * fast:>17.3f} {1e3 * slow:>15.1f} {slow / fast:>8.0f}x {gap:>13.2e}")


def bench_fedavg(sizes: list[int], model_name: str) -> None:
    X, y = load_digits()
    X_tr, y_tr, _, _ = split_train_eval(X, y, 0.2, 0)
    model = get_model(model_name)
    w = model.init_params(64, 10, 0)
    print(f"FedAvg round ({model_name}, 1 local epoch, batch 16, Dirichlet 0.5 split of {y_tr.size} samples)")
    print(f"{'EDs':>6} {'round [ms]':>11} {'per ED [ms]':>12} {'vs 10 EDs':>10}")
    base = None
    for n in sizes:
        parts = dirichlet_split(y_tr, n, 0.5, 0)
        clients = [(X_tr[p], y_tr[p]) for p in parts]

        def one_round(c: list = clients) -> object:
            return federated_round(model, w, c, epochs=1, lr=0.05, batch_size=16, seed=0, round_index=0)

        t = _time(one_round, 2)
        base = base or t
        print(f"{n:>6} {1e3 * t:>11.1f} {1e3 * t / n:>12.2f} {t / base:>9.2f}x")


def main() -> None:
    """Parse ``--quick`` and print both tables."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    args = ap.parse_args()
    if args.quick:
        bench_stackelberg([10, 100], grid=2001)
        bench_fedavg([10, 30], "softmax")
    else:
        bench_stackelberg([10, 100, 1000], grid=4001)
        bench_fedavg([10, 30, 100], "softmax")
        bench_fedavg([10, 30], "mlp")


if __name__ == "__main__":
    main()
