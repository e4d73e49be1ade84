"""``bazaar solve collab-portfolio`` and ``bazaar solve collab-pricing`` (market ``collab``, docs/models/collab.md).

Parameter files are documented in docs/models/collab.md. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..output import print_document
from ..params import Field, ParamError, check_params, read_toml
from .options import solver_parser

PUBLISHER_KEYS = (
    Field("budget", "float", low=0, low_open=True, doc="budget b"),
    Field("deadline", "float", low=0, low_open=True, doc="deadline T"),
    Field("own_data", "float", low=0, low_open=True, doc="own data o"),
    Field("multiplier", "float", low=0, doc="CPPI multiplier m"),
    Field("omega", "float", low=0, high=1, low_open=True, high_open=True, doc="weight ω"),
)
CONSTANT_KEYS = (
    Field("eps_t", "float", required=False, default=10.0, low=0, low_open=True),
    Field("eps_d", "float", required=False, default=50.0, low=0),
    Field("f", "float", required=False, default=1.0, low=0, low_open=True),
    Field("d", "float", required=False, default=1.0, low=0, low_open=True),
    Field("r_net", "float", required=False, default=20.0, low=0, low_open=True),
    Field("a", "float", required=False, default=1.0),
    Field("b", "float", required=False, default=0.5),
)
SELLER_KEYS = (
    Field("compute_capacity", "list_float", low=0, min_len=1),
    Field("compute_price", "list_float", low=0),
    Field("data_capacity", "list_float", low=0),
    Field("data_price", "list_float", low=0),
    Field("phi", "list_float", low=0),
    Field("theta", "list_float", low=0),
)
PORTFOLIO_KEYS = (
    *PUBLISHER_KEYS, *CONSTANT_KEYS, *SELLER_KEYS,
    Field("method", "str", required=False, default="sgsa",
          choices=("sgsa", "newton", "greedy", "exhaustive")),
    Field("integral", "bool", required=False, default=True),
)
PUBLISHER_LIST_KEYS = (
    Field("budget", "list_float", low=0, low_open=True, min_len=1),
    Field("deadline", "list_float", low=0, low_open=True),
    Field("own_data", "list_float", low=0, low_open=True),
    Field("multiplier", "list_float", low=0),
    Field("omega", "list_float", low=0, high=1, low_open=True, high_open=True),
)
PRICING_TOP_KEYS = (
    Field("algorithm", "str", choices=("spa", "pdpa", "tapa", "qlearning", "evolutionary")),
    Field("max_iter", "int", required=False, default=200, low=0, high=100_000),
    Field("tol", "float", required=False, default=0.05, low=0),
    Field("seed", "int", required=False, default=0),
    Field("method", "str", required=False, default="sgsa", choices=("sgsa", "newton", "greedy")),
    Field("integral", "bool", required=False, default=False),
)
PRICING_KEYS = (
    Field("p_max_compute", "float", required=False, default=25.0, low=0, low_open=True),
    Field("p_max_data", "float", required=False, default=25.0, low=0, low_open=True),
    Field("sigma", "float", required=False, default=0.5, low=0, high=1, low_open=True),
    Field("step", "float", required=False, default=0.5, low=0),
    Field("delta", "float", required=False, default=0.5, low=0),
    Field("pdpa_min_step", "float", required=False, default=0.05, low=0),
    Field("kappa1", "float", required=False, default=0.5, low=0),
    Field("kappa2", "float", required=False, default=0.5, low=0),
    Field("step_min", "float", required=False, default=0.05, low=0),
    Field("step_max", "float", required=False, default=2.0, low=0),
    Field("q_alpha", "float", required=False, default=0.5, low=0, high=1),
    Field("q_gamma", "float", required=False, default=0.5, low=0, high=1),
    Field("q_epsilon", "float", required=False, default=0.1, low=0, high=1),
    Field("evo_population", "int", required=False, default=6, low=1, high=1000),
    Field("damping", "float", required=False, default=0.5, low=0, high=1, low_open=True,
          doc="step factor on a gap reversal (1: the rules verbatim)"),
    Field("damping_growth", "float", required=False, default=1.2, low=1, doc="step regrowth while the gap persists"),
)


def _section(raw: dict[str, Any], name: str, fields: tuple[Field, ...], extra: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Check one TOML table, naming keys as ``table.key`` in errors."""
    data = raw.get(name, {})
    if not isinstance(data, dict):
        raise ParamError(name, "expected a table")
    try:
        return check_params({**data, **(extra or {})}, fields)
    except ParamError as err:
        raise ParamError(f"{name}.{err.key}", str(err).split(": ", 1)[-1]) from err


def _same_length(values: dict[str, Any], keys: tuple[Field, ...], prefix: str = "") -> int:
    """All list keys must have as many entries as the first one; returns that length."""
    n = len(values[keys[0].name])
    for f in keys[1:]:
        if len(values[f.name]) != n:
            got = len(values[f.name])
            raise ParamError(prefix + f.name, f"expected {n} entries (like {keys[0].name}), got {got}")
    return n


def load_portfolio(path: str) -> dict[str, Any]:
    """Read and check a collab-portfolio parameter file (keys in docs/models/collab.md)."""
    values = check_params(read_toml(path), PORTFOLIO_KEYS)
    _same_length(values, SELLER_KEYS)
    return values


def load_pricing(path: str) -> dict[str, Any]:
    """Read and check a collab-pricing parameter file: top-level keys and the tables [market], [sellers],
    [publishers], [pricing]."""
    raw = read_toml(path)
    top = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    tables = {k for k, v in raw.items() if isinstance(v, dict)}
    unknown = sorted(tables - {"market", "sellers", "publishers", "pricing"})
    if unknown:
        raise ParamError(unknown[0], "unknown table (allowed: market, sellers, publishers, pricing)")
    out = {"top": check_params(top, PRICING_TOP_KEYS),
           "market": _section(raw, "market", CONSTANT_KEYS),
           "sellers": _section(raw, "sellers", SELLER_KEYS),
           "publishers": _section(raw, "publishers", PUBLISHER_LIST_KEYS),
           "pricing": _section(raw, "pricing", PRICING_KEYS)}
    if "sellers" not in tables:
        raise ParamError("sellers", "missing table")
    if "publishers" not in tables:
        raise ParamError("publishers", "missing table")
    _same_length(out["sellers"], SELLER_KEYS, "sellers.")
    _same_length(out["publishers"], PUBLISHER_LIST_KEYS, "publishers.")
    pr = out["pricing"]
    if pr["step_min"] > pr["step_max"]:
        raise ParamError("pricing.step_min", "must not exceed pricing.step_max")
    sv = out["sellers"]
    for i, (cp, dp) in enumerate(zip(sv["compute_price"], sv["data_price"], strict=True)):
        if cp > pr["p_max_compute"]:
            raise ParamError(f"sellers.compute_price[{i}]", f"{cp} is above pricing.p_max_compute")
        if dp > pr["p_max_data"]:
            raise ParamError(f"sellers.data_price[{i}]", f"{dp} is above pricing.p_max_data")
    return out


def _sellers(v: dict[str, Any]) -> list[Any]:
    from bazaar.mechanisms.collab import Seller

    return [Seller(*row) for row in zip(v["compute_capacity"], v["compute_price"], v["data_capacity"],
                                        v["data_price"], v["phi"], v["theta"], strict=True)]


def _portfolio(args: argparse.Namespace) -> int:
    from bazaar.mechanisms.collab import Publisher, optimize_portfolio
    from bazaar.mechanisms.errors import MechanismError

    v = load_portfolio(args.params)
    pub = Publisher(**{f.name: v[f.name] for f in (*PUBLISHER_KEYS, *CONSTANT_KEYS)})
    try:
        port = optimize_portfolio(pub, _sellers(v), v["method"], v["integral"])
    except MechanismError as err:
        raise ParamError("", str(err)) from err
    print_document(port.to_dict(), args.json, title="collab publisher portfolio (CPPI)")
    return 0


def publishers_of(v: dict[str, Any]) -> list[Any]:
    """The publishers of a checked collab-pricing file, in file order."""
    from bazaar.mechanisms.collab import Publisher

    pv = v["publishers"]
    return [Publisher(b, t, o, m, w, **v["market"]) for b, t, o, m, w in zip(
        pv["budget"], pv["deadline"], pv["own_data"], pv["multiplier"], pv["omega"], strict=True)]


def pricing_config(v: dict[str, Any]) -> Any:
    """The :class:`PricingConfig` of a checked collab-pricing file (history recorded: the price path).

    Raises:
        ParamError: the values do not make a pricing configuration.
    """
    from bazaar.mechanisms.collab.pricing import PricingConfig
    from bazaar.mechanisms.errors import MechanismError

    top = v["top"]
    try:
        return PricingConfig(max_iter=top["max_iter"], tol=top["tol"], seed=top["seed"], method=top["method"],
                             integral=top["integral"], record_history=True, **v["pricing"])
    except MechanismError as err:
        raise ParamError("", str(err)) from err


def solve_pricing(v: dict[str, Any]) -> dict[str, Any]:
    """The whole offline regulation from a checked file to the printed document (what the network's round
    outcome is compared with).

    Raises:
        ParamError: the values do not make a market.
    """
    from bazaar.mechanisms.collab.pricing import run_pricing
    from bazaar.mechanisms.errors import MechanismError

    try:
        res = run_pricing(_sellers(v["sellers"]), publishers_of(v), v["top"]["algorithm"], pricing_config(v))
    except MechanismError as err:
        raise ParamError("", str(err)) from err
    return res.to_dict()


def _pricing(args: argparse.Namespace) -> int:
    doc = solve_pricing(load_pricing(args.params))
    print_document(doc, args.json, title="collab price regulation")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``collab-portfolio`` and ``collab-pricing``."""
    solver_parser(subparsers, "collab-portfolio", help="collab: a publisher's CPPI portfolio", handler=_portfolio,
                  example="collab-portfolio", params_help="TOML parameter file (docs/models/collab.md)")
    solver_parser(subparsers, "collab-pricing", help="collab: price regulation to market equilibrium",
                  handler=_pricing, example="collab-pricing",
                  params_help="TOML parameter file (docs/models/collab.md)")
