"""RANet benchmark: training time per 1k iterations, numpy inference per 1k profiles versus exact VCG, and
regret / utility gap to the optimum per S (single-uniform: Myerson; tbcim: VCG welfare as the yardstick).

Run: ``python benchmarks/bench_ranet.py [--quick]``. Training needs PyTorch (skipped without it).
"""

from __future__ import annotations

import argparse
import os
import time

# one BLAS thread: on a shared machine a spinning thread pool makes small matmuls 100x slower and noisy
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from bazaar.mechanisms.ranet import RANet, evaluate_all, myerson_expected_utility, vcg  # noqa: E402


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    """Print the benchmark table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 1000
    repeat = 5 if args.quick else 20
    print("inference per 1k bid profiles (numpy RANet vs exact VCG over all winner sets)")
    for setting, S in (("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)):
        net = RANet.load(S, setting)
        costs, prof = net.setting.sample(np.random.default_rng(0), n, S)
        t_net = _timeit(lambda net=net, costs=costs, prof=prof: net.allocate(costs, prof), repeat)
        t_vcg = _timeit(lambda net=net, costs=costs, prof=prof: vcg(net.setting, costs, prof), repeat)
        print(f"  {setting:15s} S={S:2d}  ranet {t_net * 1e3:8.2f} ms  vcg {t_vcg * 1e3:8.2f} ms  "
              f"ranet/vcg = {t_net / t_vcg:6.3f}")
    print("quality per S (seeded sample; regret normalised by b_bar)")
    samples, rp = (500, 100) if args.quick else (4000, 1000)
    su = RANet.load(3, "single-uniform")
    rec = evaluate_all(su, samples, 7, regret_profiles=rp)
    opt = myerson_expected_utility(3)
    print(f"  single-uniform S=3  utility {rec['requester_utility']:.4f}  optimum {opt:.4f}  "
          f"ratio {rec['requester_utility'] / opt:.4f}  regret {rec['regret']:.5f}")
    for S in (3, 5, 10):
        net = RANet.load(S, "tbcim")
        for chain in ("with", "without"):
            rec = evaluate_all(net, samples, 7, chain=chain, regret_profiles=rp)
            v = rec["baselines"]["vcg"]
            print(f"  tbcim S={S:2d} {chain:7s} chain: utility {rec['requester_utility']:+.4f} "
                  f"(vcg {v['requester_utility']:+.4f})  welfare/vcg welfare "
                  f"{rec['welfare'] / v['welfare'] if v['welfare'] else float('nan'):.3f}  "
                  f"regret {rec['regret']:.5f}  winners {rec['winners_mean']:.2f} "
                  f"(vcg {v['winners_mean']:.2f})")
    try:
        from bazaar.mechanisms.ranet.training import TrainConfig, train
    except ImportError:  # pragma: no cover
        return
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        print("training: PyTorch not installed, skipped")
        return
    iters = 100 if args.quick else 500
    print(f"training time (torch, 1 thread, {iters} iterations, scaled to 1k)")
    base = None
    for setting, S in (("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)):
        t = time.perf_counter()
        train(setting, S, TrainConfig(iterations=iters, train_size=4096, log_every=iters))
        per_k = (time.perf_counter() - t) / iters * 1000
        base = base or per_k
        print(f"  {setting:15s} S={S:2d}  {per_k:7.1f} s / 1k iterations  (x{per_k / base:.2f} of the first)")


if __name__ == "__main__":
    main()
