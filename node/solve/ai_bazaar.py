"""``bazaar solve ai-bazaar --params P.toml --json``: the Stackelberg equilibrium of the AI-Bazaar market.

Prints ``{"price", "demand", "cpp_profit", "consumer_profit", "max_deviation_gain"}`` (docs/models/ai-bazaar.md).
Unknown, missing, mistyped or out-of-range keys and empty ranges raise :class:`ParamError` naming the key (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from ..params import Field, ParamError, check_params, read_toml
from .options import solver_parser

#: The parameter file's keys, with their types and ranges (the mechanism re-checks cross-key ranges).
FIELDS = (
    Field("n", "int", low=1, doc="number of AI consumers"),
    Field("epsilon", "float", low=0, doc="ε = 1/T_train"),
    Field("tau", "float", low=0, doc="propagation factor τ"),
    Field("delta", "num_or_list", low=0, length="n", doc="model loss δ_i (number or list of n)"),
    Field("C_b", "float", doc="business profit per compute unit"),
    Field("u", "num_or_list", low=0, length="n", doc="payment weight u_i"),
    Field("m", "num_or_list", low=0, length="n", doc="token effect m_i"),
    Field("R", "float", low=0, doc="fixed block reward"),
    Field("B", "float", low=0, doc="block size"),
    Field("lambda", "float", low=0, doc="performance reward factor λ"),
    Field("beta", "num_or_list", low=0, high=1, length="n", doc="mining (role-playing) ratio β_i"),
    Field("C", "float", low=0, doc="CPP electricity cost per unit"),
    Field("F_min", "float", low=0, low_open=True, doc="smallest demand"),
    Field("F_max", "float", low=0, low_open=True, doc="largest demand"),
    Field("p_min", "float", low=0, doc="lowest price"),
    Field("p_max", "float", low=0, doc="highest price"),
)


def params_from_mapping(raw: Mapping[str, Any]) -> Any:
    """Check a raw mapping (e.g. a parsed TOML file) and build ``bazaar.mechanisms.ai_bazaar.Params``.

    Raises:
        ParamError: naming the offending key.
    """
    from bazaar.mechanisms.ai_bazaar import ParameterError, Params

    values = check_params(raw, FIELDS)
    try:
        return Params.from_mapping(values)
    except ParameterError as err:
        raise ParamError(err.key, str(err).split(": ", 1)[-1]) from err


def _handler(args: argparse.Namespace) -> int:
    from bazaar.mechanisms.ai_bazaar import solve_stackelberg
    from bazaar.mechanisms.errors import ConvergenceError

    params = params_from_mapping(read_toml(args.params))
    try:
        eq = solve_stackelberg(params)
    except ConvergenceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = eq.to_json()
    if args.json:
        print(json.dumps(out))
    else:
        print(f"price p* = {out['price']:.6g}   CPP profit = {out['cpp_profit']:.6g}   "
              f"max deviation gain = {out['max_deviation_gain']:.3g}")
        for i, (f, u) in enumerate(zip(out["demand"], out["consumer_profit"], strict=True)):
            print(f"  consumer {i}: demand {f:.6g}   profit {u:.6g}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``ai-bazaar`` to ``bazaar solve``."""
    solver_parser(subparsers, "ai-bazaar", help="AI-Bazaar Stackelberg pricing (docs/models/ai-bazaar.md)",
                  handler=_handler, example="ai-bazaar-calibrated",
                  params_help="TOML file with the keys of docs/models/ai-bazaar.md",
                  json_help="print the equilibrium as one JSON object")
