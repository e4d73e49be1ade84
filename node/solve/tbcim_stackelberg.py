"""``bazaar solve tbcim-stackelberg``: one ES's lower-level Stackelberg game (docs/models/tbcim.md).

Parameter file (TOML): scalars ``omega, kappa, delta_1, delta_g, M, a1, a2, a3, a4, a5, a6, g_e, p_g`` and
per-ED lists of one length ``d, theta, beta, gamma, c_m``. Optional: ``participation`` ("exact", default,
or "drop"), ``select_clients`` (keep only EDs with EMD at most the average first; default false),
``d_unit`` and ``theta_unit`` (units of the quality curve, docs/models/tbcim.md).
Prints ``{"price", "compute", "fees", "participants", "es_profit", "ed_profit", ...}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from bazaar.node.output import print_document
from bazaar.node.params import Field, ParamError, load_params

from .options import solver_parser

_POS = {"low": 0.0, "low_open": True}
FIELDS = (
    Field("omega", "float", **_POS, doc="ES value-of-compute weight"),
    Field("kappa", "float", **_POS, doc="utility scale of C d / (kappa theta)"),
    Field("delta_1", "float", **_POS, doc="local epochs"),
    Field("delta_g", "float", **_POS, doc="global epochs"),
    Field("M", "float", **_POS, doc="model size"),
    Field("a1", "float", **_POS),
    Field("a2", "float", **_POS),
    Field("a3", "float", **_POS),
    Field("a4", "float", **_POS),
    Field("a5", "float", **_POS),
    Field("a6", "float", **_POS),
    Field("g_e", "float", **_POS, doc="gas per ED contract call"),
    Field("p_g", "float", low=0.0, doc="gas price"),
    Field("d", "list_float", **_POS, min_len=1, doc="ED data sizes (samples)"),
    Field("theta", "list_float", **_POS, min_len=1, doc="ED EMDs"),
    Field("beta", "list_float", **_POS, min_len=1, doc="ED unit compute costs"),
    Field("gamma", "list_float", low=0.0, min_len=1, doc="ED unit data costs"),
    Field("c_m", "list_float", low=0.0, min_len=1, doc="ED communication costs"),
    Field("participation", "str", required=False, default="exact", choices=("exact", "drop")),
    Field("select_clients", "bool", required=False, default=False, doc="EMD <= average filter first"),
    Field("d_unit", "float", required=False, default=1.0, **_POS),
    Field("theta_unit", "float", required=False, default=5e4, **_POS),
    Field("check", "bool", required=False, default=True, doc="report numeric deviation gains"),
)


def _handler(args: argparse.Namespace) -> int:
    p = load_params(args.params, FIELDS)
    n = len(p["d"])
    for key in ("theta", "beta", "gamma", "c_m"):
        if len(p[key]) != n:
            raise ParamError(key, f"expected {n} entries (one per ED, like d), got {len(p[key])}")

    import numpy as np

    from bazaar.mechanisms.errors import MechanismError
    from bazaar.mechanisms.tbcim import TbcimConstants, select_clients
    from bazaar.mechanisms.tbcim.reference import ed_deviation_gain, es_deviation_gain
    from bazaar.mechanisms.tbcim.stackelberg import StackelbergGame, solve_stackelberg

    consts = TbcimConstants(
        **{k: p[k] for k in ("a1", "a2", "a3", "a4", "a5", "a6", "g_e", "M", "delta_1", "delta_g")},
        d_unit=p["d_unit"],
        theta_unit=p["theta_unit"],
    )
    lists = {k: np.asarray(p[k], dtype=np.float64) for k in ("d", "theta", "beta", "gamma", "c_m")}
    candidates = select_clients(lists["theta"]) if p["select_clients"] else np.arange(n)
    try:
        game = StackelbergGame(
            **{k: v[candidates] for k, v in lists.items()},
            omega=p["omega"],
            kappa=p["kappa"],
            p_g=p["p_g"],
            consts=consts,
        )
    except MechanismError as err:
        raise ParamError("", str(err)) from err
    res = solve_stackelberg(game, p["participation"])
    out: dict[str, Any] = res.to_json()
    # report in the caller's ED numbering
    full = {k: [0.0] * n for k in ("compute", "fees", "ed_profit")}
    for j, i in enumerate(candidates.tolist()):
        for k in full:
            full[k][i] = out[k][j]
    out.update(full)
    out["participants"] = [int(candidates[j]) for j in out["participants"]]
    out["selected"] = candidates.tolist()
    if p["check"]:
        out["es_deviation_gain"] = max(0.0, es_deviation_gain(game, res))
        out["ed_deviation_gain"] = max(0.0, ed_deviation_gain(game, res))
    print_document(out, args.json, title="tbcim ES-ED Stackelberg game")
    return 0


def register(subparsers: Any) -> None:
    """Add ``tbcim-stackelberg`` to ``bazaar solve``."""
    solver_parser(subparsers, "tbcim-stackelberg",
                  help="TBCIM lower level: ES price, ED compute (docs/models/tbcim.md)", handler=_handler,
                  example="tbcim-stackelberg", params_help="TOML parameter file (docs/models/tbcim.md)")
