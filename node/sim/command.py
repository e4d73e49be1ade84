"""``bazaar sim``: run a scenario's role apps in one process on a virtual clock (docs/sim.md).

    bazaar sim --scenario cloudchain --agents 10000 --rounds 2 --seed 1 --out runs/sim1
    bazaar sim --scenario ai-bazaar-small --rounds 3 --json

Prints one line per round and a summary (``--json``: one JSON object, ``{"agents", "rounds", "head_hash",
"wall_s_per_round", ...}``); ``--out`` receives ``telemetry.json`` and ``telemetry.png``. Exit codes: 0 when the
run ended with every node on one finalized head, 1 when it did not, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..params import ParamError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sim`` to the CLI."""
    p = subparsers.add_parser("sim", help="simulate a scenario's role apps in one process on a virtual clock",
                              description=__doc__.splitlines()[0])
    p.add_argument("--scenario", required=True, metavar="NAME|FILE", help="a shipped scenario or a TOML file")
    p.add_argument("--agents", type=int, default=None,
                   help="agents: hosted agents where the market's nodes host them, else the nodes of its "
                        "follower role (default: the scenario's; docs/sim.md)")
    p.add_argument("--seed", type=int, default=0, help="the seed of keys, genesis and scheduling (default 0)")
    p.add_argument("--rounds", type=int, default=None, help="rounds to play (default: the scenario's)")
    p.add_argument("--out", default=None, help="folder for telemetry.json and telemetry.png (default: none)")
    p.add_argument("--keep", default=None, help="keep the nodes' data dirs in this folder (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run_command)


def _check(args: argparse.Namespace) -> None:
    if args.agents is not None and args.agents < 1:
        raise ParamError("--agents", "must be at least 1")
    if args.rounds is not None and args.rounds < 1:
        raise ParamError("--rounds", "must be at least 1")
    if not 0 <= args.seed < 2**63:
        raise ParamError("--seed", "must be in [0, 2^63)")


def run_command(args: argparse.Namespace) -> int:
    """The ``sim`` command's handler."""
    from .population import build_population
    from .telemetry import report, round_row, write
    from .world import RoundRecord, simulate

    _check(args)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bazaar-sim-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        if args.keep and (root / "net").exists():
            raise ParamError("--keep", f"{root} already holds a simulation; give an empty folder")
        pop = build_population(args.scenario, root / "scenario", agents=args.agents, rounds=args.rounds)
        if not args.json:
            print(f"simulating {pop.market}: {pop.agents} agents ({pop.hosted} hosted) on {pop.nodes} nodes, "
                  f"{pop.rounds} rounds, seed {args.seed}", flush=True)

        def on_round(record: RoundRecord) -> None:
            row = round_row(pop.market, record, pop.scenario)
            rows.append(row)
            if not args.json:
                print(_line(row), flush=True)

        try:
            result = simulate(pop, root / "net", seed=args.seed, on_round=on_round)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        doc = report(result, rows)
        files = write(Path(args.out), doc) if args.out else []
    if args.json:
        print(json.dumps(doc, default=str))
    else:
        print(f"head {doc['head_height']} {doc['head_hash'][:16]}  one head everywhere: {doc['one_head']}  "
              f"wall {doc['wall_s_per_round']} s per round, start-up {doc['start_wall_s']} s, "
              f"virtual {doc['virtual_s']} s")
        for f in files:
            print(f"wrote {f}")
    if not result.one_head:
        print("error: the nodes do not hold one finalized head", file=sys.stderr)
        return 1
    return 0


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _line(row: dict[str, Any]) -> str:
    return (f"round {row['round']}: wall {row['wall_s']:.2f} s (cpu {row['cpu_s']:.2f} s), virtual "
            f"{row['virtual_s']:.2f} s, price {_fmt(row.get('price'), '.4g')}, "
            f"welfare {_fmt(row.get('welfare'), '.5g')}, "
            f"Jain {_fmt(row.get('jain'), '.3f')}, gap {_fmt(row.get('equilibrium_gap'), '.3g')}, "
            f"left out {row['left_out']}, height {row['height']}, final {row['final']}")
