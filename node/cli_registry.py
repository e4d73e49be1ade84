"""Where markets plug their commands into the CLI.

Each entry names a module. A ``solve`` module exposes ``register(subparsers)``, adding one sub-command per
mechanism with ``set_defaults(func=handler)``; a handler takes the parsed ``argparse.Namespace`` and returns
the exit code. An ``experiment`` module exposes ``EXPERIMENTS: dict[str, Experiment]``. A ``train`` module
exposes ``register(subparsers)`` like a solve module. Modules must import quickly: import ``mechanisms``
inside the handlers.

Adding a market means adding its modules here and nothing else in the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SOLVE_MODULES = (
    "bazaar.node.solve.ai_bazaar",
    "bazaar.node.solve.hierarchical",
    "bazaar.node.solve.collab",
    "bazaar.node.solve.tbcim_auction",
    "bazaar.node.solve.tbcim_stackelberg",
    "bazaar.node.solve.tbcim_bcfl",
    "bazaar.node.solve.cloudchain",
)

EXPERIMENT_MODULES = (
    "bazaar.node.experiments.ai_bazaar",
    "bazaar.node.experiments.hierarchical",
    "bazaar.node.experiments.collab",
    "bazaar.node.experiments.tbcim_auction",
    "bazaar.node.experiments.tbcim_fl",
    "bazaar.node.experiments.cloudchain",
)

TRAIN_MODULES = ("bazaar.node.train",)


@dataclass(frozen=True)
class Experiment:
    """A figure of a seed paper.

    Attributes:
        title: one line shown by ``bazaar experiment --list``.
        run: ``run(ctx) -> summary`` with ``ctx`` a ``bazaar.node.experiments.repro.Run`` (run folder,
            seeds, repetitions, mode): writes CSV/JSON + PNG into ``ctx.out`` and returns a small JSON-able
            summary printed at the end. The older ``run(out_dir, seed, quick)`` form still runs, once.
    """

    title: str
    run: Callable[..., dict[str, Any]]
