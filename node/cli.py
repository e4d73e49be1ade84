"""The ``bazaar`` command line (README.md, docs/cli.md). Exit codes: 0 success, 1 runtime failure, 2 bad usage or
parameters, 130 interrupted. Output is for people by default; ``--json`` gives the machine format.

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

from .cli_registry import EXPERIMENT_MODULES, SOLVE_MODULES, TRAIN_MODULES, Experiment
from .params import ParamError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 141
EPILOG = """\
output: for people by default (tables, amounts in tokens, node names); --json on every command prints the
machine format (docs/cli.md).

exit codes:
  0    success
  1    runtime failure (a node, the network or a check failed; net status: a node is down)
  2    bad usage or parameters (a --dir that holds no network included)
  130  interrupted (Ctrl-C)
  141  the output pipe was closed (e.g. | head)
"""


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
        if args.json and args.list:
            print(json.dumps([{"name": name, "title": exp.title} for name, exp in sorted(table.items())]))
        else:
            for name, exp in sorted(table.items()):
                print(f"{name:32s} {exp.title}")
        if not args.list:
            print("error: which experiment? (a name from the list above)", file=sys.stderr)
        return EXIT_OK if args.list else EXIT_USAGE
    if args.name not in table:
        print(f"error: unknown experiment {args.name!r}; try: bazaar experiment --list", file=sys.stderr)
        return EXIT_USAGE
    from .experiments.repro import Run, execute

    if args.reps is not None and args.reps < 1:
        raise ParamError("", f"--reps must be at least 1, got {args.reps}")
    out = Path(args.out or f"runs/experiment-{args.name}")
    mode = "quick" if args.quick else "paper" if args.paper else "default"
    ctx = Run(args.name, out, seed=args.seed, reps=args.reps, mode=mode, literal=args.literal,
              show_progress=not args.json)
    summary = execute(table[args.name].run, ctx)
    doc = {"experiment": args.name, "out": str(out), **summary}
    if args.json:
        print(json.dumps(doc, indent=None, default=str))
    else:
        from .output import summary_lines

        print("\n".join(summary_lines(f"experiment {args.name}: written to {out}", summary)))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every registered market included)."""
    parser = argparse.ArgumentParser(
        prog="bazaar", description="Bazaar: a peer-to-peer compute-power market.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    exp.add_argument("--json", action="store_true", help="print the summary (with --list: the list) as JSON")
    size = exp.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smaller sweep (seconds instead of minutes)")
    size.add_argument("--paper", action="store_true",
                      help="the paper's own sizes, repetitions and caps (may take hours; shows an ETA)")
    exp.add_argument("--reps", type=int, metavar="N",
                     help="independent repetitions (seeds SEED..SEED+N-1); default depends on the experiment")
    exp.add_argument("--literal", action="store_true",
                     help="run the paper's rules where Bazaar departs from them (see docs/models/)")
    exp.set_defaults(func=_cmd_experiment)

    train = sub.add_parser("train", help="train a learned mechanism offline")
    train_sub = train.add_subparsers(dest="model", metavar="MODEL", help="the model to train")
    train_sub.required = True
    for module in _modules(TRAIN_MODULES):
        module.register(train_sub)

    from . import commands

    commands.register(sub)
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
    except OSError as err:  # a permission error, a full disk, a folder where a file was expected ...
        print(f"error: {_os_error(err)}", file=sys.stderr)
        return EXIT_FAIL
    except UnicodeDecodeError as err:
        print(f"error: a file is not UTF-8 text ({err.reason} at byte {err.start})", file=sys.stderr)
        return EXIT_USAGE
    return int(code or 0)


def _os_error(err: OSError) -> str:
    """An OS error as one line: what failed and on which file."""
    where = f": {err.filename}" if err.filename else ""
    return f"{err.strerror or err}{where}"


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of a closed pipe is silent."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
