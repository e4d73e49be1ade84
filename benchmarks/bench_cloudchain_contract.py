"""The cloudchain mechanism's figures (docs/models/cloudchain.md), each beside its baseline in the same run:

* the allocation contract (greedy + local search) against the exact MILP (HiGHS, with a time limit) at
  28 providers × 300 tasks: ratio of objectives, ratio of times, whether HiGHS proved optimality; the greedy
  alone beside it;
* Jain's index over the providers' normalised allocations by requester-group size (10 … 300 requesters of 1–3
  tasks each, one batch per size, several seeds) on ``paper_providers()``, with the whole-task bound
  ``providers used / 28``, and over the requesters' served shares (the paper's wording);
* the privacy overhead: ``run_job("training", C)`` private (DP-SGD, ε ∈ {1, 2, 4}, δ = 1e-5) against the same
  job without privacy — time and training accuracy.

    python benchmarks/bench_cloudchain_contract.py [--quick] [--json] [--time-limit S]

Nothing is asserted: this machine is shared and noisy; read the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from bazaar.mechanisms.cloudchain.contract import allocate, greedy, objective_of
from bazaar.mechanisms.cloudchain.jobs import run_job
from bazaar.mechanisms.cloudchain.metrics import jain, normalised_allocation
from bazaar.mechanisms.cloudchain.profiles import paper_providers, workloads
from bazaar.mechanisms.cloudchain.reference import allocate_exact

GROUPS = (10, 25, 50, 100, 200, 300)


def contract_vs_milp(tasks: int, reps: int, time_limit: float) -> dict[str, Any]:
    """Objective and time of the contract, of its greedy alone and of HiGHS on one instance."""
    provs = paper_providers(0)
    work = workloads(tasks, 7)
    t0 = time.perf_counter()
    for _ in range(reps):
        alloc = allocate(work, provs)
    contract_s = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        start = greedy(work, provs)
    greedy_s = (time.perf_counter() - t0) / reps
    exact = allocate_exact(work, provs, time_limit=time_limit)
    return {"providers": len(provs), "tasks": tasks, "contract_objective": alloc.objective,
            "greedy_objective": objective_of(work, provs, start), "milp_objective": exact.objective,
            "objective_ratio": alloc.objective / exact.objective,
            "greedy_ratio": objective_of(work, provs, start) / exact.objective,
            "milp_optimal": exact.optimal, "milp_time_limit_s": time_limit, "contract_s": contract_s,
            "greedy_s": greedy_s, "milp_s": exact.seconds, "time_ratio": contract_s / exact.seconds,
            "served": len(work) - len(alloc.unserved)}


def jain_by_group(seeds: int) -> list[dict[str, Any]]:
    """Per group size: tasks, served, providers used, Jain over the providers' utilisations (mean and min over
    seeds), the whole-task bound, and Jain over the requesters' served shares (served units / units asked)."""
    provs = paper_providers(0)
    out = []
    for n in GROUPS:
        rows = []
        for seed in range(seeds):
            rng = np.random.default_rng([n, seed])
            counts = rng.integers(1, 4, size=n)
            k = int(counts.sum())
            tasks = workloads(k, 1000 * seed + n)
            owner = np.repeat(np.arange(n), counts)
            alloc = allocate(tasks, provs)
            used = sum(1 for x in alloc.load if x > 0)
            util = normalised_allocation(alloc, provs)
            asked, got = np.zeros(n), np.zeros(n)
            for t, r, j in zip(tasks, owner, alloc.assignment, strict=True):
                asked[r] += t.units
                got[r] += t.units if j >= 0 else 0.0
            rows.append((k, k - len(alloc.unserved), used, jain(util), min(1.0, used / len(provs)),
                         statistics.fmean(util), jain((got / asked).tolist())))
        out.append({"requesters": n, "tasks": statistics.fmean(r[0] for r in rows),
                    "served": statistics.fmean(r[1] for r in rows),
                    "providers_used": statistics.fmean(r[2] for r in rows),
                    "jain_mean": statistics.fmean(r[3] for r in rows), "jain_min": min(r[3] for r in rows),
                    "bound_used_over_n": statistics.fmean(r[4] for r in rows),
                    "mean_utilisation": statistics.fmean(r[5] for r in rows),
                    "jain_requesters_mean": statistics.fmean(r[6] for r in rows)})
    return out


def dp_overhead(units: tuple[float, ...], reps: int) -> list[dict[str, Any]]:
    """Per job size: median time and accuracy of the plain job and of private ones at ε = 1, 2, 4."""
    out = []
    for c in units:
        plain_t, plain_q = [], 0.0
        for r in range(reps):
            job = run_job("training", c, r)
            plain_t.append(job.seconds)
            plain_q += job.quality / reps
        row: dict[str, Any] = {"units": c, "plain_ms": 1000 * statistics.median(plain_t), "plain_accuracy": plain_q}
        for eps in (1.0, 2.0, 4.0):
            times, q = [], 0.0
            for r in range(reps):
                job = run_job("training", c, r, epsilon=eps, delta=1e-5, noise_seed=100 + r)
                times.append(job.seconds)
                q += job.quality / reps
            row[f"eps{eps:g}_ms"] = 1000 * statistics.median(times)
            row[f"eps{eps:g}_accuracy"] = q
            row[f"eps{eps:g}_time_ratio"] = statistics.median(times) / statistics.median(plain_t)
        out.append(row)
    return out


def main() -> None:
    """Measure and print a table, or one JSON object with ``--json``."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 60-task MILP, fewer seeds and repetitions")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds HiGHS may take (default 120)")
    args = ap.parse_args()
    out: dict[str, Any] = {
        "contract": contract_vs_milp(60 if args.quick else 300, 2 if args.quick else 5, args.time_limit),
        "jain": jain_by_group(2 if args.quick else 5),
        "dp": dp_overhead((2.0, 10.0) if args.quick else (2.0, 5.0, 10.0, 20.0), 3 if args.quick else 7),
    }
    if args.json:
        print(json.dumps(out))
        return
    c = out["contract"]
    print(f"contract vs exact MILP, {c['providers']} providers x {c['tasks']} tasks ({c['served']} served): "
          f"objective {c['contract_objective']:.2f} vs {c['milp_objective']:.2f} (ratio {c['objective_ratio']:.4f}; "
          f"greedy alone {c['greedy_ratio']:.4f}); MILP "
          f"{'proven optimal' if c['milp_optimal'] else 'NOT proven optimal'} (limit {c['milp_time_limit_s']:g} s); "
          f"time {1000 * c['contract_s']:.1f} ms (greedy {1000 * c['greedy_s']:.1f} ms) vs MILP "
          f"{1000 * c['milp_s']:.0f} ms (ratio {c['time_ratio']:.5f})")
    print(f"{'requesters':>10} {'tasks':>6} {'served':>6} {'used':>5} {'Jain mean':>9} {'Jain min':>8} "
          f"{'used/28':>7} {'mean u':>6} {'Jain req':>8}")
    for j in out["jain"]:
        print(f"{j['requesters']:>10} {j['tasks']:>6.0f} {j['served']:>6.0f} {j['providers_used']:>5.1f} "
              f"{j['jain_mean']:>9.3f} {j['jain_min']:>8.3f} {j['bound_used_over_n']:>7.3f} "
              f"{j['mean_utilisation']:>6.3f} {j['jain_requesters_mean']:>8.3f}")
    print(f"{'units':>5} {'plain ms':>8} {'acc':>5} " + " ".join(
        f"{'eps' + str(e) + ' ms':>9} {'x':>5} {'acc':>5}" for e in (1, 2, 4)))
    for d in out["dp"]:
        print(f"{d['units']:>5g} {d['plain_ms']:>8.2f} {d['plain_accuracy']:>5.3f} " + " ".join(
            f"{d[f'eps{e}_ms']:>9.2f} {d[f'eps{e}_time_ratio']:>5.2f} {d[f'eps{e}_accuracy']:>5.3f}"
            for e in (1, 2, 4)))


if __name__ == "__main__":
    main()
