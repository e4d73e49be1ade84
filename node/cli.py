"""The ``bazaar`` command line (README.md). Exit codes: 0 success, 1 runtime failure, 2 bad usage or parameters.

A closed output pipe (``bazaar experiment --list | head -1``) ends the command quietly, with exit code 141
(128 + SIGPIPE, what a shell reports for a command killed by the signal).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bazaar import __version__

from .cli_registry import COMMAND_MODULES, EXPERIMENT_MODULES, SOLVE_MODULES, TRAIN_MODULES, Experiment
from .params import ParamError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 141


def _modules(names: Sequence[str]) -> list[ModuleType]:
    """Import the registered modules; a module that is not installed is skipped (tests check all exist)."""
    found = []
    for name in names:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return found


def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name."""
    found: dict[str, Experiment] = {}
    for module in _modules(EXPERIMENT_MODULES):
        for name, exp in getattr(module, "EXPERIMENTS", {}).items():
            if name in found:
                raise RuntimeError(f"experiment {name} registered twice")
            found[name] = exp
    return found


def _cmd_experiment(args: argparse.Namespace) -> int:
    table = experiments()
    if args.list or not args.name:
        for name, exp in sorted(table.items()):
            print(f"{name:32s} {exp.title}")
        return EXIT_OK if args.list else EXIT_USAGE
    if args.name not in table:
        print(f"error: unknown experiment {args.name!r}; try: bazaar experiment --list", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out or f"runs/experiment-{args.name}")
    out.mkdir(parents=True, exist_ok=True)
    summary = table[args.name].run(out, args.seed, args.quick)
    print(json.dumps({"experiment": args.name, "out": str(out), **summary}, indent=None, default=str))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every registered market included)."""
    parser = argparse.ArgumentParser(
        prog="bazaar", description="Bazaar: a peer-to-peer compute-power market.",
        epilog="exit codes: 0 success, 1 runtime failure, 2 bad usage or parameters",
    )
    parser.add_argument("--version", action="version", version=f"bazaar {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to do (COMMAND --help for more)")
    sub.required = True

    solve = sub.add_parser("solve", help="offline solver: print an equilibrium / auction outcome as JSON")
    solve_sub = solve.add_subparsers(dest="mechanism", metavar="MECHANISM",
                                     help="the solver (MECHANISM --example prints its example parameter file)")
    solve_sub.required = True
    for module in _modules(SOLVE_MODULES):
        module.register(solve_sub)

    exp = sub.add_parser("experiment", help="regenerate a figure of a seed paper (CSV/JSON + PNG)")
    exp.add_argument("name", nargs="?", help="experiment name (see --list)")
    exp.add_argument("--list", action="store_true", help="list the experiments")
    exp.add_argument("--out", help="output folder (default runs/experiment-NAME)")
    exp.add_argument("--seed", type=int, default=0, help="random seed of the experiment (default 0)")
    exp.add_argument("--quick", action="store_true", help="a smaller sweep (seconds instead of minutes)")
    exp.set_defaults(func=_cmd_experiment)

    train = sub.add_parser("train", help="train a learned mechanism offline")
    train_sub = train.add_subparsers(dest="model", metavar="MODEL", help="the model to train")
    train_sub.required = True
    for module in _modules(TRAIN_MODULES):
        module.register(train_sub)

    from . import commands

    commands.register(sub)
    for module in _modules(COMMAND_MODULES):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bazaar`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except ParamError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_PIPE
    return int(code or 0)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of a closed pipe is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
