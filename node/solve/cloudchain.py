"""``bazaar solve cloudchain-allocate`` (market ``cloudchain``, docs/models/cloudchain.md): the allocation
contract on a registry and a batch of tasks, with the exact MILP's objective beside it.

Input: ``--params FILE|NAME`` (``[[provider]]`` and ``[[task]]`` tables, keys in docs/models/cloudchain.md; the
shipped example: ``bazaar solve cloudchain-allocate --example``), or ``--scenario S --round R``: the providers and
the tasks of round R of a cloudchain scenario — what the network allocates in that round when every requester
posts in time (the comparison the network tests make). Heavy imports happen inside the handler.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..output import print_document
from ..params import Field, ParamError, check_params, read_toml
from .options import solver_parser

EXAMPLE = "cloudchain-allocate.toml"
PROVIDER_KEYS = (
    Field("name", "str"),
    Field("kind", "str", choices=("enterprise", "community")),
    Field("capacity", "float", low=0, low_open=True, doc="compute units per round"),
    Field("price", "float", low=0, low_open=True, doc="tokens per unit"),
    Field("reliability", "float", low=0, high=1, low_open=True),
    Field("latency_ms", "float", low=0, low_open=True),
    Field("penalty", "float", required=False, default=1.0, low=0, doc="λ, tokens per SLA violation"),
    Field("read_mbps", "float", required=False, default=100.0, low=0, low_open=True),
    Field("write_mbps", "float", required=False, default=50.0, low=0, low_open=True),
    Field("commit_s", "float", required=False, default=0.05, low=0),
)
TASK_KEYS = (
    Field("id", "str"),
    Field("kind", "str", choices=("training", "inference", "preprocessing")),
    Field("units", "float", low=0, low_open=True),
    Field("max_price", "float", low=0, low_open=True),
    Field("value", "float", low=0),
    Field("latency_ms", "float", low=0, low_open=True),
    Field("availability", "float", low=0, high=1, low_open=True),
    Field("deadline_s", "float", low=0, low_open=True),
    Field("epsilon", "float", required=False, default=None, low=0, low_open=True),
    Field("delta", "float", required=False, default=None, low=0, high=1, low_open=True, high_open=True),
)
TOP_KEYS = (
    Field("time_limit", "float", required=False, default=60.0, low=0, low_open=True,
          doc="seconds the exact MILP may take"),
)


def _rows(raw: dict[str, Any], table: str, fields: tuple[Field, ...]) -> list[dict[str, Any]]:
    rows = raw.get(table)
    if rows is None:
        raise ParamError(table, f"missing: at least one [[{table}]] table")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ParamError(table, f"expected one or more [[{table}]] tables")
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(check_params(row, fields))
        except ParamError as err:
            raise ParamError(f"{table}[{i}].{err.key}", str(err).split(": ", 1)[-1]) from err
    return out


def load_params(path: str) -> tuple[list[Any], list[Any], float]:
    """``(providers, tasks, time_limit)`` of a checked parameter file.

    Raises:
        ParamError: naming the key (``task[2].units``) of the first bad value.
    """
    from bazaar.mechanisms.cloudchain.model import Provider, Sla, Task

    raw = read_toml(path)
    unknown = sorted(set(raw) - {"provider", "task", *(f.name for f in TOP_KEYS)})
    if unknown:
        raise ParamError(unknown[0], "unknown key (allowed: [[provider]], [[task]], time_limit)")
    top = check_params({k: v for k, v in raw.items() if k not in ("provider", "task")}, TOP_KEYS)
    providers = [Provider(**p) for p in _rows(raw, "provider", PROVIDER_KEYS)]
    tasks = []
    for i, t in enumerate(_rows(raw, "task", TASK_KEYS)):
        if (t["epsilon"] is None) != (t["delta"] is None):
            raise ParamError(f"task[{i}].delta", "a private task gives both epsilon and delta")
        sla = Sla(t.pop("latency_ms"), t.pop("availability"), t.pop("deadline_s"))
        tasks.append(Task(sla=sla, **t))
    for key, names in (("provider", [p.name for p in providers]), ("task", [t.id for t in tasks])):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ParamError(f"{key}.name" if key == "provider" else "task.id", f"duplicate: {dup[0]!r}")
    return providers, tasks, top["time_limit"]


def from_scenario(ref: str, round_no: int) -> tuple[list[Any], list[Any]]:
    """The providers (scenario order) and round ``round_no``'s tasks (the contract's order: by id) of a scenario.

    Raises:
        ParamError: not a cloudchain scenario, or a round outside it.
    """
    from ..markets.cloudchain.config import agent_names, market_config, provider_profiles, round_tasks
    from ..scenario import load_scenario

    scenario = load_scenario(ref)
    if scenario.market_name != "cloudchain":
        raise ParamError("scenario", f"{ref} is a {scenario.market_name} scenario, not cloudchain")
    cfg = market_config(scenario)
    if not 1 <= round_no <= max(1, cfg.rounds):
        raise ParamError("round", f"{round_no} is outside the scenario's rounds 1..{cfg.rounds}")
    providers = provider_profiles(cfg, scenario.names("provider"))
    plan = round_tasks(cfg, round_no, agent_names(cfg, scenario.names("requester")))
    return providers, sorted((t for _, t, _ in plan), key=lambda t: t.id)


def network_batch() -> int:
    """The most open tasks one block's allocation takes on the network (``MAX_ALLOC_TASKS``, docs/adr/0154)."""
    from ..markets.cloudchain.book import MAX_ALLOC_TASKS

    return MAX_ALLOC_TASKS


def solve(providers: list[Any], tasks: list[Any], time_limit: float, batch: int = 0) -> dict[str, Any]:
    """The printed document: the contract's allocation and its economics, the MILP's objective beside it (its
    solve time is a benchmark's figure, ``benchmarks/bench_cloudchain_contract.py``: the output stays deterministic).
    ``batch > 0``: the contract over consecutive batches of that many tasks, as the network allocates a window
    larger than one block holds (docs/adr/0154); 0: all tasks at once (the paper's contract)."""
    from bazaar.mechanisms.cloudchain.contract import allocate_in_batches
    from bazaar.mechanisms.cloudchain.metrics import jain, normalised_allocation, provider_profit, requester_utility
    from bazaar.mechanisms.cloudchain.reference import allocate_exact

    alloc = allocate_in_batches(tasks, providers, batch)
    exact = allocate_exact(tasks, providers, time_limit=time_limit)
    paid = {p.name: 0.0 for p in providers}
    value = spent = 0.0
    for t, j in zip(tasks, alloc.assignment, strict=True):
        if j >= 0:
            paid[providers[j].name] += providers[j].price * t.units
            value += t.value * t.units
            spent += providers[j].price * t.units
    return {
        "allocation": {t.id: (providers[j].name if j >= 0 else None)
                       for t, j in zip(tasks, alloc.assignment, strict=True)},
        "prices": {t.id: p for t, p in zip(tasks, alloc.prices, strict=True)},
        "jain": jain(normalised_allocation(alloc, providers)),
        "provider_profit": {name: provider_profit(v, 0.0) for name, v in paid.items()},
        "requester_utility": requester_utility(value, spent),
        "unserved": list(alloc.unserved),
        "optimum": {"objective": exact.objective, "contract_objective": alloc.objective,
                    "ratio": alloc.objective / exact.objective if exact.objective else 1.0,
                    "optimal": exact.optimal},
    }


def _handler(args: argparse.Namespace) -> int:
    if args.scenario is not None:
        if args.params is not None:
            raise ParamError("--params", "give --params or --scenario, not both")
        providers, tasks = from_scenario(args.scenario, args.round)
        time_limit = 60.0
        batch = network_batch() if args.batch is None else args.batch
    elif args.params is None:
        raise ParamError("--params", "missing: a TOML file, a shipped name, or --scenario S --round R")
    else:
        providers, tasks, time_limit = load_params(args.params)
        batch = 0 if args.batch is None else args.batch
    if batch < 0:
        raise ParamError("--batch", f"{batch} is negative (0: every task at once)")
    print_document(solve(providers, tasks, time_limit, batch), args.json, title="cloudchain allocation contract")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``cloudchain-allocate`` to ``bazaar solve``."""
    p = solver_parser(subparsers, "cloudchain-allocate", handler=_handler, example=EXAMPLE, params_required=False,
                      help="the cloudchain allocation contract on a registry and tasks, beside the exact MILP",
                      params_help="[[provider]] and [[task]] tables")
    p.add_argument("--scenario", metavar="NAME|FILE", help="allocate round --round of a cloudchain scenario instead")
    p.add_argument("--round", type=int, default=1, help="the scenario round (with --scenario; default 1)")
    p.add_argument("--batch", type=int, default=None,
                   help="allocate in consecutive batches of this many tasks, as the network does for a window "
                        "larger than one block holds (default: the network's batch with --scenario, else 0: all at "
                        "once)")
