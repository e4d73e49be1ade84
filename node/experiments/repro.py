"""Repetitions, modes and provenance shared by every ``bazaar experiment`` (docs/adr/0135-…).

How an experiment uses it::

    from bazaar.node.experiments.repro import Run, write_table
    from bazaar.node.experiments.stats import summarise
    from bazaar.node.experiments import plots

    def run(ctx: Run) -> dict[str, Any]:
        sizes = ctx.pick(quick=[4, 8], default=[10, 20, 30], paper=[10, 20, 30, 40, 50])
        ctx.record(sizes=sizes, iterations=ctx.pick(quick=20, default=200, paper=500))
        ctx.differs("default: 3 sizes instead of the paper's 5")      # stated in run.json and on the figure
        rows = []
        with ctx.progress(len(sizes) * ctx.reps, "sweep") as advance:
            for rep, seed in enumerate(ctx.seeds):                     # one independent seed per repetition
                for n in sizes:
                    rows.append({"rep": rep, "seed": seed, "size": n, "payoff": solve(n, seed)})
                    advance()
        summary = summarise(rows, by=("size",), values=("payoff",))   # mean, 95 % t-interval, n
        write_table(ctx.out, "name", rows, summary)                    # name_reps.csv, name.csv, name.json
        fig, ax = plots.figure(ctx)                                    # stamped "quick" in --quick runs
        plots.band(ax, summary, "size", "payoff", label="ours")        # mean line + 95 % band
        plots.save(fig, ctx, "name.png")
        return {...}                                                   # small JSON-able summary

    EXPERIMENTS = {"name": Experiment(title="...", run=run)}

``bazaar experiment NAME [--reps N] [--seed S] [--quick | --paper] [--literal]`` builds the :class:`Run`
and calls :func:`execute`, which runs the experiment and then writes ``run.json`` (provenance) into the
run folder. Repetition ``r`` uses seed ``S + r``, so any single repetition can be re-run alone with
``--seed S+r --reps 1``. An experiment written before this module, ``run(out_dir, seed, quick)``, still
runs (one repetition, ``run.json`` written); such an experiment records ``reps`` as 1 whatever was asked.
"""

from __future__ import annotations

import contextlib
import csv
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

MODES = ("quick", "default", "paper")
T = TypeVar("T")


@dataclass
class Run:
    """One invocation of an experiment: where it writes, its seeds, its mode and what it records.

    Attributes:
        name: the experiment's registered name.
        out: the run folder (created by :func:`execute`).
        seed: the first seed; repetition ``r`` uses ``seed + r``.
        reps: the number of independent repetitions; ``None`` means the experiment's default for the mode
            (set it with :meth:`default_reps`).
        mode: ``quick`` (seconds, for tests), ``default`` (minutes on a shared 2-core machine) or ``paper``
            (the paper's own sizes, repetitions and caps, however long they take).
        literal: run the paper's rules where Bazaar departs from them (each experiment says which).
        show_progress: draw a progress bar with an ETA on stderr (the CLI turns it on).
        params: every parameter of the run, written to ``run.json`` (:meth:`record`).
        notes: how this run differs from the paper (:meth:`differs`), in ``run.json`` and on the figures.
    """

    name: str
    out: Path
    seed: int = 0
    reps: int | None = None
    mode: str = "default"
    literal: bool = False
    show_progress: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.reps is not None and self.reps < 1:
            raise ValueError(f"reps must be at least 1, got {self.reps}")

    @property
    def quick(self) -> bool:
        """True in ``--quick`` mode."""
        return self.mode == "quick"

    @property
    def paper(self) -> bool:
        """True in ``--paper`` mode."""
        return self.mode == "paper"

    def pick(self, *, quick: T, default: T, paper: T | None = None) -> T:
        """The value for this run's mode (``paper`` falls back to ``default`` when not given)."""
        if self.mode == "quick":
            return quick
        if self.mode == "paper" and paper is not None:
            return paper
        return default

    def default_reps(self, *, quick: int, default: int, paper: int | None = None) -> int:
        """Fix ``reps`` to the mode's default unless the user asked for a number; returns it."""
        if self.reps is None:
            self.reps = self.pick(quick=quick, default=default, paper=paper)
        return self.reps

    @property
    def seeds(self) -> list[int]:
        """One seed per repetition: ``seed, seed + 1, …`` (``reps`` defaults to 1 when never set)."""
        return [self.seed + r for r in range(self.reps or 1)]

    def record(self, **params: Any) -> None:
        """Add parameters to ``run.json`` (sizes, caps, budgets, …)."""
        self.params.update(params)

    def differs(self, note: str) -> None:
        """State one way in which this run differs from the paper's setting."""
        if note not in self.notes:
            self.notes.append(note)

    @contextlib.contextmanager
    def progress(self, total: int, label: str) -> Iterator[Callable[..., None]]:
        """A progress bar with elapsed time and ETA on stderr; yields ``advance(steps=1)``.

        Silent unless ``show_progress`` is set, so tests and library callers see nothing.
        """
        if not self.show_progress:

            def ignore(steps: int = 1) -> None:
                return None

            yield ignore
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(f"{self.name}: {label}", total=total)

            def advance(steps: int = 1) -> None:
                bar.advance(task, steps)

            yield advance


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` and numpy scalars / arrays / paths as plain values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (``nan``/``inf`` as ``null``)."""
    path.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n", encoding="utf-8")


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write dict rows as CSV; the header is the union of keys in first-seen order."""
    fields: dict[str, None] = {}
    for r in rows:
        fields.update(dict.fromkeys(r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields))
        w.writeheader()
        w.writerows(rows)


def write_table(out: Path, name: str, reps: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]],
                **extra: Any) -> None:
    """Write every repetition and the intervals: ``NAME_reps.csv``, ``NAME.csv`` and ``NAME.json``.

    ``NAME.json`` holds ``{"reps": [...], "summary": [...], "ci": "...", **extra}``.
    """
    write_csv(out / f"{name}_reps.csv", reps)
    write_csv(out / f"{name}.csv", summary)
    write_json(out / f"{name}.json", {"ci": CI_NOTE, "reps": list(reps), "summary": list(summary), **extra})


CI_NOTE = "mean of the repetitions with a two-sided 95 % Student-t interval (lo, hi); null with one repetition"


def git_commit(where: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``where``, or ``None`` outside a checkout."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def machine() -> dict[str, Any]:
    """Cores, platform, Python and the versions of the numerical libraries."""
    from importlib import metadata

    libs: dict[str, str | None] = {}
    for lib in ("numpy", "scipy", "matplotlib", "scikit-learn", "torch"):
        try:
            libs[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            libs[lib] = None
    return {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(), "platform": platform.platform(),
            "machine": platform.machine(), "python": sys.version.split()[0], **libs}


def provenance(ctx: Run, started: datetime, wall_s: float, summary: dict[str, Any] | None) -> dict[str, Any]:
    """The ``run.json`` document of a finished run."""
    from bazaar import __version__

    return {
        "experiment": ctx.name,
        "bazaar_version": __version__,
        "git": git_commit(Path(__file__).resolve().parent),
        "mode": ctx.mode,
        "literal": ctx.literal,
        "seed": ctx.seed,
        "reps": ctx.reps or 1,
        "seeds": ctx.seeds,
        "confidence_interval": CI_NOTE,
        "params": ctx.params,
        "differs_from_paper": ctx.notes,
        "machine": machine(),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(wall_s, 3),
        "files": sorted(p.name for p in ctx.out.iterdir() if p.is_file() and p.name != "run.json"),
        "summary": summary,
        "argv": sys.argv[1:],
    }


def execute(run: Callable[..., dict[str, Any]], ctx: Run) -> dict[str, Any]:
    """Run one experiment in ``ctx`` and write ``run.json`` beside its outputs; returns its summary.

    ``run(ctx)`` is the current form; a legacy ``run(out_dir, seed, quick)`` runs once (``--paper`` runs it
    at its default size) and its ``run.json`` says so.
    """
    ctx.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    if len(inspect.signature(run).parameters) == 1:
        summary = run(ctx)
    else:
        if (ctx.reps or 1) != 1:
            ctx.differs(f"this experiment does not take --reps yet: 1 repetition ran, {ctx.reps} were asked")
        if ctx.paper:
            ctx.differs("this experiment has no --paper mode yet: it ran its default sizes")
        ctx.reps = 1
        summary = run(ctx.out, ctx.seed, ctx.quick)
    summary = jsonable(summary)
    write_json(ctx.out / "run.json", provenance(ctx, started, time.perf_counter() - t0, summary))
    return summary
