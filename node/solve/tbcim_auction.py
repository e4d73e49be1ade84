"""``bazaar solve tbcim-auction``: run the shipped RANet (or its monotone variant) on seeded bid profiles and
compare the baselines.

The run is described by options or by a parameter file (``--params``, keys :data:`FIELDS`, the options'
names with ``_`` for ``-``); an option given on the command line overrides the file's value.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..params import Field, ParamError, check_params, read_toml
from .options import solver_parser

SETTINGS = ("single-uniform", "tbcim")
CHAINS = ("with", "without", "mixed")
VARIANTS = ("ranet", "monotone")

#: The parameter file's keys (ranges are checked below, naming the command-line option).
FIELDS = (
    Field("sellers", "int", doc="sellers S (shipped weights: single-uniform 3; tbcim 3, 5, 10)"),
    Field("setting", "str", required=False, default="tbcim", choices=SETTINGS, doc="the auction setting"),
    Field("samples", "int", required=False, default=2000, doc="bid profiles drawn from the setting"),
    Field("seed", "int", required=False, default=0, doc="seed of the bid profiles"),
    Field("chain", "str", required=False, default=None, choices=CHAINS, doc="tbcim: blockchain cost in costs"),
    Field("regret_profiles", "int", required=False, default=None, doc="profiles of the regret grid search"),
    Field("variant", "str", required=False, default="ranet", choices=VARIANTS,
          doc="ranet (learned, small regret) or monotone (truthful by construction)"),
    Field("show", "int", required=False, default=3, doc="profiles listed with bids, z, payments, winners"),
)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings: the parameter file's values, overridden by the options given."""
    raw = read_toml(args.params) if args.params is not None else {}
    given = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name) is not None}
    if "sellers" not in raw and "sellers" not in given:
        raise ParamError("sellers", "missing: give --sellers or a --params file with sellers")
    return check_params({**raw, **given}, FIELDS)


def _handler(args: argparse.Namespace) -> int:
    import numpy as np

    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.ranet import RANet, evaluate_all

    args = argparse.Namespace(**{**vars(args), **_options(args)})
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
        net = RANet.load(args.sellers, args.setting, args.weights, variant=args.variant)
    except MechanismError as err:
        raise ParamError("sellers" if args.weights is None else "weights", str(err)) from err
    regret_profiles = min(args.samples, 1000) if args.regret_profiles is None else args.regret_profiles
    try:
        result = evaluate_all(net, args.samples, args.seed, chain=args.chain, regret_profiles=regret_profiles,
                              gradient=True)
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
        "variant": args.variant,
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
    print(f"RANet ({args.variant}) {args.setting} S={args.sellers} ({args.samples} profiles, seed {args.seed}; "
          f"regret: grid, then gradient refinement for {args.variant})")
    keys = ("requester_utility", "requester_utility_se", "welfare", "regret_grid", "regret", "ir_violation",
            "winners_mean")
    print(f"{'mechanism':10s} " + " ".join(f"{k:>18s}" for k in keys))
    rows = [(args.variant, result), *result["baselines"].items()]
    for name, m in rows:
        print(f"{name:10s} " + " ".join(f"{m[k]:18.6f}" for k in keys))
    if "vs_optimum" in result:
        v = result["vs_optimum"]
        print(f"utility / Myerson optimum {v['optimum']:.5f}: {v['ratio']:.4f} +- {v['ratio_se']:.4f} (SE); "
              f"paired excess over Myerson on the same profiles {v['paired_excess']:+.5f} +- {v['paired_se']:.5f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``tbcim-auction`` to ``bazaar solve``."""
    p = solver_parser(
        subparsers, "tbcim-auction",
        help="RANet reverse auction (tbcim): utility, welfare, regret, IR vs VCG / greedy / random / Myerson",
        handler=_handler, example="tbcim-auction", params_required=False,
        params_help="TOML file with the options below as keys (an option given overrides it)",
        json_help="print one JSON object",
    )
    p.add_argument("--sellers", type=int, help="sellers S (shipped: single-uniform 3; tbcim 3, 5, 10)")
    p.add_argument("--setting", choices=SETTINGS, help="the auction setting (default tbcim)")
    p.add_argument("--samples", type=int, help="bid profiles drawn from the setting (default 2000)")
    p.add_argument("--seed", type=int, help="seed of the bid profiles (default 0)")
    p.add_argument("--chain", choices=CHAINS, help="tbcim: blockchain cost in costs")
    p.add_argument("--weights", help="a .npz from 'bazaar train ranet' instead of the shipped weights")
    p.add_argument("--variant", choices=VARIANTS, help="ranet (default: learned, small regret) or monotone "
                   "(truthful by construction)")
    p.add_argument("--regret-profiles", type=int, help="profiles the regret grid search runs on (default "
                   "min(samples, 1000))")
    p.add_argument("--show", type=int, help="profiles listed with bids, z, payments, winners (default 3)")
