"""What every ``bazaar solve`` command shares: ``--params NAME|FILE``, ``--example`` and ``--json``.

:func:`solver_parser` adds the sub-command. Before the solver's handler runs, ``args.params`` is resolved to
a file path (a shipped name becomes the installed file, see :mod:`bazaar.node.shipped`); with ``--example`` the
shipped example parameter file is printed instead, verbatim, so ``bazaar solve NAME --example > p.toml`` gives
a file to edit.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

from bazaar.deploy import shipped_file

from ..params import ParamError
from ..shipped import resolve

Handler = Callable[[argparse.Namespace], int]


def solver_parser(subparsers: Any, name: str, *, help: str, handler: Handler, example: str,
                  params_required: bool = True, params_help: str = "TOML parameter file",
                  json_help: str = "compact JSON on one line") -> argparse.ArgumentParser:
    """Add ``bazaar solve NAME`` with the shared options; returns its parser for solver-specific options.

    Args:
        subparsers: the ``bazaar solve`` sub-parsers.
        name: the sub-command.
        help: its one-line help.
        handler: ``handler(args) -> exit code``; it sees ``args.params`` as a path (``str``) or ``None``.
        example: the shipped parameter file (a name in ``deploy/scenarios/params/``) ``--example`` prints.
        params_required: whether ``--params`` must be given (otherwise the handler reads its options).
        params_help: what the file holds (the shipped-name rule is appended).
        json_help: help of ``--json``.
    """
    p = subparsers.add_parser(name, help=help, description=help)
    p.add_argument("--params", metavar="NAME|FILE",
                   help=f"{params_help}: a path, or the name of a shipped file (e.g. {example}; "
                        f"see --example)")
    p.add_argument("--example", action="store_true",
                   help=f"print the shipped example parameter file ({example}) and exit")
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=functools.partial(_run, handler, example, params_required))
    return p


def _run(handler: Handler, example: str, params_required: bool, args: argparse.Namespace) -> int:
    if args.example:
        sys.stdout.write(shipped_file("params", example).read_text(encoding="utf-8"))
        return 0
    if args.params is not None:
        args.params = str(resolve(args.params, "params", "--params"))
    elif params_required:
        raise ParamError("--params", "missing: a TOML file or a shipped name (--example prints an example)")
    return handler(args)
