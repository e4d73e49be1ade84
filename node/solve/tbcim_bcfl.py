"""``bazaar solve tbcim-bcfl``: one whole TBCIM task in one process — the offline twin of the tbcim network.

``--scenario S`` names a tbcim scenario (shipped name or path); its ``[mechanism]`` table and roles fix every
input, so the output is what the network settles for the same scenario with every participant present: the
same ``outcome`` keys as ``bazaar round --json`` (winners, allocation, payments, price and participants per
winning ES, compute and fees per ED, accuracy per epoch, the final global model hash, rejected updates).
``--no-filter`` runs the same task without the poisoning filter; ``--down ES:FIRST:LAST`` (repeatable) takes an
ES offline for epochs FIRST..LAST (0-based, inclusive), as a killed ES is on the network.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from ..params import ParamError


def _down(spec: list[str], es_names: list[str], epochs: int) -> list[list[int]]:
    down: list[list[int]] = [[] for _ in range(epochs)]
    for item in spec:
        try:
            name, first, last = item.split(":")
            s, lo, hi = es_names.index(name), int(first), int(last)
        except ValueError as err:
            raise ParamError("down", f"expected ES:FIRST:LAST with an ES of the scenario, got {item!r}") from err
        if not 0 <= lo <= hi < epochs:
            raise ParamError("down", f"epochs must satisfy 0 <= FIRST <= LAST < {epochs}, got {item!r}")
        for e in range(lo, hi + 1):
            down[e].append(s)
    return down


def solve(scenario_ref: str, *, use_filter: bool = True, down: list[str] | None = None,
          task: int = 1) -> dict[str, Any]:
    """The outcome document of task ``task`` of a tbcim scenario, computed in one process.

    Raises:
        ParamError: not a tbcim scenario, or a bad ``down`` entry.
    """
    from bazaar.mechanisms.tbcim.market import run_task

    from ..markets.tbcim.config import market_config
    from ..markets.tbcim.outcome import from_run
    from ..scenario import load_scenario

    scenario = load_scenario(scenario_ref)
    if scenario.market_name != "tbcim":
        raise ParamError("scenario", f"{scenario_ref} is a {scenario.market_name} scenario, not tbcim")
    cfg = market_config(scenario).market
    if not use_filter:
        cfg = replace(cfg, filter_threshold=None)
    es_names, ed_names = scenario.names("es"), scenario.names("ed")
    run = run_task(cfg, task, _down(down or [], es_names, cfg.epochs))
    members = {s: cfg.members(s) for s in range(cfg.n_es)}
    return from_run(run, task, es_names, ed_names, members).doc()


EXAMPLE = "tbcim-small"


def _handler(args: argparse.Namespace) -> int:
    if args.example:
        from bazaar.deploy import shipped_file

        sys.stdout.write(shipped_file("scenario", EXAMPLE).read_text(encoding="utf-8"))
        return 0
    if args.scenario is None:
        raise ParamError("--scenario", "missing: a tbcim scenario file or a shipped name (--example prints one)")
    doc = solve(args.scenario, use_filter=not args.no_filter, down=args.down)
    if args.json:
        print(json.dumps(doc))
        return 0
    out = sys.stdout
    out.write(f"task {doc['task']}: {doc['epochs']} global epochs, winners {', '.join(doc['winners']) or 'none'}, "
              f"requester utility {doc['requester_utility']:.4g}\n")
    out.write(f"{'ES':>8} {'bid':>9} {'z':>6} {'E[pay]':>9} {'paid':>9} {'price':>10}  participants\n")
    for es, bid in doc["bids"].items():
        out.write(f"{es:>8} {bid:9.4g} {doc['allocation'][es]:6.3f} {doc['expected_payments'][es]:9.4g} "
                  f"{doc['payments'].get(es, 0.0):9.4g} {doc['price'].get(es, 0.0):10.4g}  "
                  f"{', '.join(doc['participants'].get(es, []))}\n")
    acc = doc["accuracy"]
    out.write(f"accuracy per epoch: {' '.join(f'{a:.3f}' for a in acc)}\n")
    out.write(f"rejected updates: {len(doc['rejected_updates'])}; global model {doc['global_model_hash'][:16]}\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``tbcim-bcfl`` to ``bazaar solve``."""
    p = subparsers.add_parser("tbcim-bcfl", help="one whole TBCIM task offline (auction, ES-ED game, BCFL): the "
                                                 "outcome the tbcim network settles for the same scenario")
    p.add_argument("--scenario", metavar="NAME|FILE", help="a tbcim scenario: a path, or a shipped name "
                                                            f"(e.g. {EXAMPLE}, tbcim, tbcim-poison)")
    p.add_argument("--example", action="store_true",
                   help=f"print the shipped example scenario ({EXAMPLE}) and exit")
    p.add_argument("--no-filter", action="store_true", help="run without the cosine poisoning filter")
    p.add_argument("--down", action="append", metavar="ES:FIRST:LAST",
                   help="ES offline for epochs FIRST..LAST (0-based, inclusive); repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object (the round outcome's keys)")
    p.set_defaults(func=_handler)
