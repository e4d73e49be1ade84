"""RANet benchmark: training time per 1k iterations, numpy inference per 1k profiles versus exact VCG (RANet
and its monotone variant), regret by grid / gradient refinement / gradient-only per setting, and the
single-uniform utility over the Myerson optimum with standard errors.

Run: ``python benchmarks/bench_ranet.py [--quick] [--json]``. Training needs PyTorch (skipped without it).
"""

from __future__ import annotations

import argparse
import json
import os
import time

# one BLAS thread: on a shared machine a spinning thread pool makes small matmuls 100x slower and noisy
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from bazaar.mechanisms.ranet import (  # noqa: E402
    RANet,
    evaluate_all,
    gradient_regret,
    myerson_expected_utility,
    refined_regret,
    vcg,
)
from bazaar.mechanisms.ranet.evaluation import vs_optimum  # noqa: E402


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _monotone_section(quick: bool, out: dict) -> None:
    """Monotone variant: inference vs VCG, regret by three searches (RANet beside it), utility vs optimum."""
    n = 1000
    repeat = 3 if quick else 10
    print("monotone variant: inference per 1k profiles (vs exact VCG)")
    for setting, S in (("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)):
        mono = RANet.load(S, setting, variant="monotone")
        costs, prof = mono.setting.sample(np.random.default_rng(0), n, S)
        t_m = _timeit(lambda m=mono, c=costs, p=prof: m.allocate(c, p), repeat)
        t_v = _timeit(lambda m=mono, c=costs, p=prof: vcg(m.setting, c, p), repeat)
        out.setdefault("monotone_inference_ms", {})[f"{setting}-s{S}"] = {"monotone": t_m * 1e3, "vcg": t_v * 1e3,
                                                                           "ratio": t_m / t_v}
        print(f"  {setting:15s} S={S:2d}  monotone {t_m * 1e3:8.2f} ms  vcg {t_v * 1e3:8.2f} ms  "
              f"monotone/vcg = {t_m / t_v:6.3f}")
    print("regret / b_bar (mean; max) by search: grid 101+21 | grid + gradient refinement | gradient from truth")
    for setting, S, profiles in (("single-uniform", 3, 1000), ("tbcim", 3, 500), ("tbcim", 5, 300),
                                 ("tbcim", 10, 100)):
        for variant in ("ranet", "monotone"):
            net = RANet.load(S, setting, variant=variant)
            k = profiles // 10 if quick else profiles
            if variant == "monotone" and S == 10:
                k = min(k, 10 if quick else 30)
            costs, prof = net.setting.sample(np.random.default_rng(123), k, S)
            t = time.perf_counter()
            grid, refined = refined_regret(net._forward, costs, prof, net.reserve)
            grad = gradient_regret(net._forward, costs, prof, net.reserve)
            r = net.reserve
            rec = {"profiles": k, "grid": grid.mean() / r, "grid_max": grid.max() / r, "refined": refined.mean() / r,
                   "refined_max": refined.max() / r, "gradient_only": grad.mean() / r,
                   "gradient_only_max": grad.max() / r, "seconds": time.perf_counter() - t}
            out.setdefault("regret", {})[f"{setting}-s{S}-{variant}"] = rec
            print(f"  {setting:15s} S={S:2d} {variant:8s} ({k:4d} profiles)  grid {rec['grid']:.3e}; "
                  f"{rec['grid_max']:.3e} | refined {rec['refined']:.3e}; {rec['refined_max']:.3e} | "
                  f"gradient-only {rec['gradient_only']:.3e}; {rec['gradient_only_max']:.3e}")
    samples = 20_000 if quick else 100_000
    print(f"single-uniform S=3 on {samples} fresh profiles: utility / optimum, paired excess over Myerson")
    su = RANet.load(3, "single-uniform")
    costs, _ = su.setting.sample(np.random.default_rng(99), samples, 3)
    for variant in ("ranet", "monotone"):
        net = RANet.load(3, "single-uniform", variant=variant)
        v = vs_optimum(net._forward, su.setting, costs, 3)
        out.setdefault("vs_optimum", {})[variant] = v
        print(f"  {variant:8s} ratio {v['ratio']:.4f} +- {v['ratio_se']:.4f} (z = {v['excess_z']:+.1f})  "
              f"paired excess {v['paired_excess']:+.5f} +- {v['paired_se']:.5f} (z = {v['paired_z']:+.1f})")


def main() -> None:
    """Print the benchmark table (``--json``: one JSON object at the end instead)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object with every figure")
    args = ap.parse_args()
    out: dict = {}
    if args.json:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            _tables(args, out)
        print(json.dumps(out, default=float))
        return
    _tables(args, out)


def _tables(args: argparse.Namespace, out: dict) -> None:
    n = 1000
    repeat = 5 if args.quick else 20
    print("inference per 1k bid profiles (numpy RANet vs exact VCG over all winner sets)")
    for setting, S in (("single-uniform", 3), ("tbcim", 3), ("tbcim", 5), ("tbcim", 10)):
        net = RANet.load(S, setting)
        costs, prof = net.setting.sample(np.random.default_rng(0), n, S)
        t_net = _timeit(lambda net=net, costs=costs, prof=prof: net.allocate(costs, prof), repeat)
        t_vcg = _timeit(lambda net=net, costs=costs, prof=prof: vcg(net.setting, costs, prof), repeat)
        out.setdefault("ranet_inference_ms", {})[f"{setting}-s{S}"] = {"ranet": t_net * 1e3, "vcg": t_vcg * 1e3,
                                                                       "ratio": t_net / t_vcg}
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
    _monotone_section(args.quick, out)
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
