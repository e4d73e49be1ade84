"""``bazaar solve hierarchical``: one round of the two-level CCSP → MESP → miners auction (SPEC §8).

Parameter file keys (TOML): ``miner_demand`` (list), ``miner_bid`` (list), ``mesp_capacity`` (list),
``mesp_ask`` (list, per unit), ``ccsp_capacity``, ``ccsp_cost`` (default 0), ``bundle_step``, ``base_price``
(default 0), ``upper`` (``"dp" | "greedy" | "milp"``, default ``"dp"``), ``lower`` (``"greedy" | "exact"``,
default ``"greedy"``), and optionally ``miner_mesp`` (the only MESP each miner can reach, −1 = any).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bazaar.node.params import Field, ParamError, check_params, read_toml
from bazaar.node.stdio import quiet_stdout


def fields(n_miners: int | None = None, n_mesps: int | None = None) -> tuple[Field, ...]:
    """The parameter keys; list lengths are checked against the miner and MESP counts when given."""
    return (
        Field("miner_demand", "list_float", low=0, low_open=True, min_len=1, doc="units d_i each miner requests"),
        Field("miner_bid", "list_float", low=0, length=n_miners, doc="each miner's bid v_i for its demand"),
        Field("mesp_capacity", "list_float", low=0, min_len=1, doc="own capacity C_j of each MESP"),
        Field("mesp_ask", "list_float", low=0, length=n_mesps, doc="per-unit ask a_j of each MESP"),
        Field("ccsp_capacity", "float", low=0, doc="total CCSP capacity C (the spare C - sum C_j is auctioned)"),
        Field("ccsp_cost", "float", required=False, default=0.0, low=0, doc="CCSP cost per cloud unit"),
        Field("bundle_step", "float", low=0, low_open=True, doc="grid step g of the MESPs' bundles"),
        Field("base_price", "float", required=False, default=0.0, low=0, doc="per-unit floor on miners' bids"),
        Field("upper", "str", required=False, default="dp", choices=("dp", "greedy", "milp"),
              doc="upper-level solver"),
        Field("lower", "str", required=False, default="greedy", choices=("greedy", "exact"),
              doc="lower-level solver"),
        Field("miner_mesp", "list_int", required=False, default=None, low=-1, length=n_miners,
              doc="the only MESP each miner can reach (-1: any)"),
    )


MAX_STEPS = 100_000


def load(path: str) -> dict[str, Any]:
    """Read and check a parameter file (list lengths and cross-key constraints included).

    Raises:
        ParamError: naming the offending key.
    """
    raw = read_toml(path)
    n = len(raw["miner_demand"]) if isinstance(raw.get("miner_demand"), list) else None
    m = len(raw["mesp_capacity"]) if isinstance(raw.get("mesp_capacity"), list) else None
    p = check_params(raw, fields(n, m))
    if p["ccsp_capacity"] < sum(p["mesp_capacity"]):
        raise ParamError("ccsp_capacity", f"{p['ccsp_capacity']} is below the MESPs' own total "
                                          f"{sum(p['mesp_capacity'])}")
    if (p["ccsp_capacity"] - sum(p["mesp_capacity"])) / p["bundle_step"] > MAX_STEPS:
        raise ParamError("bundle_step", f"too fine: more than {MAX_STEPS} bundles per MESP")
    if p["miner_mesp"] is not None and any(j >= m for j in p["miner_mesp"]):
        raise ParamError("miner_mesp", f"MESP indices must be below {m}")
    return p


def handler(args: argparse.Namespace) -> int:
    """Solve the round described by ``--params`` and print the outcome as JSON."""
    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.hierarchical import make_instance, reach_from_home, solve_hierarchical

    p = load(args.params)
    reach = None if p["miner_mesp"] is None else reach_from_home(p["miner_mesp"], len(p["mesp_capacity"]))
    try:
        inst = make_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"],
                             p["ccsp_capacity"], p["bundle_step"], p["ccsp_cost"], p["base_price"], reach)
        with quiet_stdout():
            out = solve_hierarchical(inst, upper=p["upper"], lower=p["lower"])
    except MechanismError as err:
        raise ParamError("", str(err)) from err
    doc = out.to_json()
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"upper={p['upper']} lower={p['lower']}  welfare={doc['welfare']:.6g}  "
              f"optimum={doc['optimum_welfare']:.6g}  utilization={doc['utilization']:.3f}")
        print(f"bundles c_j: {doc['bundles']}   MESP payments to the CCSP: {doc['mesp_payments']}")
        for i, (j, pay) in enumerate(zip(doc["assignment"], doc["miner_payments"], strict=True)):
            print(f"  miner {i}: {'unserved' if j is None else f'MESP {j}, pays {pay:.6g}'}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``bazaar solve hierarchical``."""
    p = subparsers.add_parser("hierarchical", help="two-level combinatorial auction CCSP -> MESPs -> miners")
    p.add_argument("--params", required=True, help="TOML parameter file")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=handler)
