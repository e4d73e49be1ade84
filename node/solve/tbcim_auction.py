"""``bazaar solve tbcim-auction``: run the shipped RANet on seeded bid profiles and compare the baselines."""

from __future__ import annotations

import argparse
import json
import sys

from ..params import ParamError

SETTINGS = ("single-uniform", "tbcim")


def _handler(args: argparse.Namespace) -> int:
    import numpy as np

    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.ranet import RANet, evaluate_all

    if args.sellers < 1:
        raise ParamError("sellers", f"must be at least 1, got {args.sellers}")
    if not 1 <= args.samples <= 1_000_000:
        raise ParamError("samples", f"must lie in 1..1000000, got {args.samples}")
    if args.regret_profiles is not None and args.regret_profiles < 0:
        raise ParamError("regret-profiles", "must be non-negative")
    if args.chain is not None and args.setting != "tbcim":
        raise ParamError("chain", "only the tbcim setting has a blockchain cost")
    if args.show < 0:
        raise ParamError("show", "must be non-negative")
    try:
        net = RANet.load(args.sellers, args.setting, args.weights)
    except MechanismError as err:
        raise ParamError("sellers" if args.weights is None else "weights", str(err)) from err
    regret_profiles = min(args.samples, 1000) if args.regret_profiles is None else args.regret_profiles
    try:
        result = evaluate_all(net, args.samples, args.seed, chain=args.chain, regret_profiles=regret_profiles)
        setting = net.setting
        if args.chain is not None:
            from dataclasses import replace

            setting = replace(setting, chain=args.chain)  # type: ignore[call-arg]
        costs, profiles = setting.sample(np.random.default_rng(args.seed), min(args.show, args.samples),
                                         net.sellers)
        z, pay = net.allocate(costs, profiles)
    except MechanismError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    result = {
        "setting": args.setting,
        "sellers": args.sellers,
        "samples": args.samples,
        "seed": args.seed,
        "chain": args.chain,
        "regret_profiles": regret_profiles,
        **result,
        "examples": [
            {
                "bids": costs[i].tolist(),
                **({} if profiles is None else {"profiles": profiles[i].tolist()}),
                "z": z[i].tolist(),
                "payments": pay[i].tolist(),
                "winners": [int(s) for s in np.flatnonzero(z[i] >= 0.5)],
            }
            for i in range(costs.shape[0])
        ],
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"RANet {args.setting} S={args.sellers} ({args.samples} profiles, seed {args.seed})")
    keys = ("requester_utility", "welfare", "regret", "ir_violation", "winners_mean")
    print(f"{'mechanism':10s} " + " ".join(f"{k:>18s}" for k in keys))
    rows = [("ranet", result), *result["baselines"].items()]
    for name, m in rows:
        print(f"{name:10s} " + " ".join(f"{m[k]:18.6f}" for k in keys))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``tbcim-auction`` to ``bazaar solve``."""
    p = subparsers.add_parser(
        "tbcim-auction",
        help="RANet reverse auction (tbcim): utility, welfare, regret, IR vs VCG / greedy / random / Myerson",
    )
    p.add_argument("--sellers", type=int, required=True, help="sellers S (shipped: single 3; tbcim 3, 5, 10)")
    p.add_argument("--setting", choices=SETTINGS, default="tbcim")
    p.add_argument("--samples", type=int, default=2000, help="bid profiles drawn from the setting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chain", choices=("with", "without", "mixed"), help="tbcim: blockchain cost in costs")
    p.add_argument("--weights", help="a .npz from 'bazaar train ranet' instead of the shipped weights")
    p.add_argument("--regret-profiles", type=int, help="profiles the regret grid search runs on (default "
                   "min(samples, 1000))")
    p.add_argument("--show", type=int, default=3, help="profiles listed with bids, z, payments, winners")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_handler)
