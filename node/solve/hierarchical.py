"""``bazaar solve hierarchical``: one round of the two-level CCSP → MESP → miners auction (docs/models/hierarchical.md).

Parameter file keys (TOML): ``miner_demand`` (list), ``miner_bid`` (list), ``mesp_capacity`` (list),
``mesp_ask`` (list, per unit), ``ccsp_capacity``, ``ccsp_cost`` (default 0), ``bundle_step``, ``base_price``
(default 0), ``upper`` (``"dp" | "greedy" | "milp"``, default ``"dp"``), ``lower`` (``"greedy" | "exact"``,
default ``"greedy"``), and optionally ``miner_mesp`` (the only MESP each miner can reach, −1 = any). Here
``ccsp_capacity`` is the TOTAL capacity ``C`` of the system, the MESPs' own included: the CCSP auctions the
spare ``C − Σ C_j``. ``upper = "milp"`` with ``lower = "exact"`` is the centralised joint MILP; every other pair
clears level by level (``DECOMPOSABLE`` in ``bazaar.mechanisms.hierarchical``) and a network reproduces it.

With ``miner_block_size`` (list, > 0) the output also carries ``lottery_weights``: each served miner's integer
lottery weight ``round(10⁶·P_i)``, ``P_i = h_i e^{−λ z s_i}`` (``arrival_rate`` λ, default 1/600 s⁻¹;
``propagation_delay`` z, default 0.1 s per unit of block size, as ``MinerPopulation``) — what the network's block
lottery draws from. Without it no weights are reported.

Output (``--json``): ``assignment`` (MESP per miner, null = unserved), ``bundles``, ``miner_payments``,
``mesp_payments``, ``welfare``, ``utilization`` and ``utilisation`` (the same number), ``optimum_welfare`` (joint
MILP), ``upper_welfare`` (null in the joint mode), ``details`` (methods, ``decomposable``, gap to the optimum,
MESP accounts, the bundle bids) and, with block sizes, ``lottery_weights``.

**Several CCSPs.** When ``ccsp_capacity`` is a list, the file describes a multi-CCSP round
(docs/models/hierarchical.md §7): ``ccsp_capacity[k]`` is what CCSP ``k`` sells, ``Q_k`` (not a total including the
MESPs' own, as in the single case), ``ccsp_ask`` (list, same length) its per-unit ask, ``upper`` one of
``"lagrangian" | "greedy" | "milp"`` (default ``"lagrangian"``); ``miner_mesp`` and ``ccsp_cost`` do not apply
there (refused as unknown keys). The output has the single-CCSP keys plus ``ccsp_of`` (the CCSP each MESP buys
from, null = none), ``upper_bound`` (the Lagrangian dual bound, null for the other methods) and ``duality_gap``
``(upper_bound − upper_welfare)/|upper_bound|`` (null when not Lagrangian).

:func:`solve_params` is the whole computation from a checked parameter dict (what :func:`load` returns) to the
printed document, so the network compares its settled outcome with the very same code path.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bazaar.node.params import Field, ParamError, check_params, read_toml
from bazaar.node.stdio import quiet_stdout

from .options import solver_parser

LOTTERY_FIELDS = (
    Field("arrival_rate", "float", required=False, default=1.0 / 600.0, low=0,
          doc="block arrival rate λ (1/s) of the lottery weights"),
    Field("propagation_delay", "float", required=False, default=0.1, low=0,
          doc="propagation delay z per unit of block size (s)"),
)


def multi_fields(n_miners: int | None, n_mesps: int | None, n_ccsps: int | None) -> tuple[Field, ...]:
    """The keys of a multi-CCSP file."""
    return (
        Field("miner_demand", "list_float", low=0, low_open=True, min_len=1, doc="units d_i each miner requests"),
        Field("miner_bid", "list_float", low=0, length=n_miners, doc="each miner's bid v_i for its demand"),
        Field("mesp_capacity", "list_float", low=0, min_len=1, doc="own capacity C_j of each MESP"),
        Field("mesp_ask", "list_float", low=0, length=n_mesps, doc="per-unit ask a_j of each MESP"),
        Field("ccsp_capacity", "list_float", low=0, min_len=2, doc="units Q_k each CCSP sells"),
        Field("ccsp_ask", "list_float", low=0, length=n_ccsps, doc="per-unit ask of each CCSP"),
        Field("bundle_step", "float", low=0, low_open=True, doc="grid step g of the MESPs' bundles"),
        Field("base_price", "float", required=False, default=0.0, low=0, doc="per-unit floor on miners' bids"),
        Field("upper", "str", required=False, default="lagrangian", choices=("lagrangian", "greedy", "milp"),
              doc="upper-level double auction"),
        Field("lower", "str", required=False, default="greedy", choices=("greedy", "exact"),
              doc="lower-level solver"),
        Field("miner_block_size", "list_float", required=False, default=None, low=0, low_open=True,
              length=n_miners, doc="block size s_i of each miner (for the lottery weights)"),
        *LOTTERY_FIELDS,
    )


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
        Field("miner_block_size", "list_float", required=False, default=None, low=0, low_open=True,
              length=n_miners, doc="block size s_i of each miner (for the lottery weights)"),
        *LOTTERY_FIELDS,
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
    if isinstance(raw.get("ccsp_capacity"), list):
        p = check_params(raw, multi_fields(n, m, len(raw["ccsp_capacity"])))
        if max(p["ccsp_capacity"]) / p["bundle_step"] > MAX_STEPS:
            raise ParamError("bundle_step", f"too fine: more than {MAX_STEPS} bundles per MESP")
        return p
    p = check_params(raw, fields(n, m))
    if p["ccsp_capacity"] < sum(p["mesp_capacity"]):
        raise ParamError("ccsp_capacity", f"{p['ccsp_capacity']} is below the MESPs' own total "
                                          f"{sum(p['mesp_capacity'])}")
    if (p["ccsp_capacity"] - sum(p["mesp_capacity"])) / p["bundle_step"] > MAX_STEPS:
        raise ParamError("bundle_step", f"too fine: more than {MAX_STEPS} bundles per MESP")
    if p["miner_mesp"] is not None and any(j >= m for j in p["miner_mesp"]):
        raise ParamError("miner_mesp", f"MESP indices must be below {m}")
    return p


def solve_params(p: dict[str, Any]) -> dict[str, Any]:
    """The outcome document of a checked parameter file (what ``--json`` prints; the network compares to it).

    Args:
        p: the checked parameters, as :func:`load` returns them (every optional key present).

    Returns:
        The JSON-able document (keys in the module docstring).

    Raises:
        ParamError: the values do not form a market.
    """
    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.hierarchical import (
        lottery_weights,
        make_instance,
        make_multi_instance,
        reach_from_home,
        solve_hierarchical,
        solve_multi_ccsp,
    )

    try:
        with quiet_stdout():
            if isinstance(p["ccsp_capacity"], list):
                minst = make_multi_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"],
                                            p["ccsp_capacity"], p["ccsp_ask"], p["bundle_step"], p["base_price"])
                doc = solve_multi_ccsp(minst, p["upper"], p["lower"]).to_json()
            else:
                reach = (None if p["miner_mesp"] is None
                         else reach_from_home(p["miner_mesp"], len(p["mesp_capacity"])))
                inst = make_instance(p["miner_demand"], p["miner_bid"], p["mesp_capacity"], p["mesp_ask"],
                                     p["ccsp_capacity"], p["bundle_step"], p["ccsp_cost"], p["base_price"], reach)
                doc = solve_hierarchical(inst, upper=p["upper"], lower=p["lower"]).to_json()
    except MechanismError as err:
        raise ParamError("", str(err)) from err
    if p.get("miner_block_size") is not None:
        served = [a is not None for a in doc["assignment"]]
        doc["lottery_weights"] = lottery_weights(p["miner_demand"], served, p["miner_block_size"],
                                                 p["arrival_rate"], p["propagation_delay"])
    return doc


def handler(args: argparse.Namespace) -> int:
    """Solve the round described by ``--params`` and print the outcome as JSON."""
    p = load(args.params)
    doc = solve_params(p)
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"upper={p['upper']} lower={p['lower']}  welfare={doc['welfare']:.6g}  "
              f"optimum={doc['optimum_welfare']}  utilization={doc['utilization']:.3f}")
        if doc.get("duality_gap") is not None:
            print(f"Lagrangian upper level: welfare {doc['upper_welfare']:.6g}, dual bound "
                  f"{doc['upper_bound']:.6g}, duality gap {doc['duality_gap']:.2%}")
        print(f"bundles c_j: {doc['bundles']}   MESP payments: {doc['mesp_payments']}")
        for i, (j, pay) in enumerate(zip(doc["assignment"], doc["miner_payments"], strict=True)):
            print(f"  miner {i}: {'unserved' if j is None else f'MESP {j}, pays {pay:.6g}'}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``bazaar solve hierarchical``."""
    solver_parser(subparsers, "hierarchical", help="two-level combinatorial auction CCSP -> MESPs -> miners",
                  handler=handler, example="hierarchical-paper",
                  params_help="TOML parameter file (docs/models/hierarchical.md)",
                  json_help="print the outcome as JSON")
