"""Plot helpers of the experiments: mean lines with 95 % bands, named reference lines, the run's stamp.

Every figure of ``bazaar experiment`` is made through :func:`figure` and :func:`save`, so that a ``--quick``
run is stamped as such on the image and every figure states its repetitions and interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .repro import Run


def figure(ctx: Run, ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.4, 4.0)) -> tuple[Any, Any]:
    """A matplotlib figure (Agg backend) of ``nrows × ncols`` panels, each ``size`` inches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes)


def band(ax: Any, rows: Sequence[dict[str, Any]], x: str, y: str, label: str, **style: Any) -> None:
    """Plot ``y_mean`` against ``x`` with the 95 % band ``[y_lo, y_hi]`` of :func:`stats.summarise` rows."""
    pts = sorted((r[x], r[f"{y}_mean"], r[f"{y}_lo"], r[f"{y}_hi"]) for r in rows)
    xs = [p[0] for p in pts]
    line = ax.plot(xs, [p[1] for p in pts], label=label, **style)[0]
    lo = [p[2] for p in pts]
    hi = [p[3] for p in pts]
    if not all(_nan(v) for v in lo):
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)


def curve(ax: Any, xs: Sequence[float], mean: Sequence[float], lo: Sequence[float] | None,
          hi: Sequence[float] | None, label: str, **style: Any) -> None:
    """Plot a mean curve with its 95 % band (``lo``/``hi`` may be ``None`` or all ``nan`` for one repetition)."""
    line = ax.plot(xs, mean, label=label, **style)[0]
    if lo is not None and hi is not None and not all(_nan(v) for v in lo):
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.18, linewidth=0)


def reference(ax: Any, value: float, label: str, vertical: bool = False, **style: Any) -> None:
    """A named horizontal (or vertical) reference line, drawn dashed."""
    style = {"color": "black", "linestyle": "--", "linewidth": 1.0, **style}
    (ax.axvline if vertical else ax.axhline)(value, label=label, **style)


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def stamp_text(ctx: Run) -> str:
    """The footnote of every figure: mode, repetitions, seeds and the interval."""
    reps = ctx.reps or 1
    band_note = "mean, 95 % t-interval band" if reps > 1 else "one repetition, no interval"
    seeds = f"seed {ctx.seed}" if reps == 1 else f"seeds {ctx.seed}..{ctx.seed + reps - 1}"
    mode = {"quick": "QUICK RUN (--quick): reduced sizes, not the paper's setting",
            "default": "default sizes (see run.json: differs_from_paper)",
            "paper": "--paper: the paper's sizes"}[ctx.mode]
    literal = "; --literal: the paper's rules" if ctx.literal else ""
    return f"{mode}{literal} · {reps} repetition(s), {seeds} · {band_note}"


def save(fig: Any, ctx: Run, name: str, title: str | None = None) -> None:
    """Stamp the figure (title, mode, repetitions; red for ``--quick``), save it into the run folder, close it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0.0, 0.04, 1.0, 1.0))
    fig.text(0.5, 0.008, stamp_text(ctx), ha="center", va="bottom", fontsize=8,
             color="red" if ctx.quick else "dimgray", weight="bold" if ctx.quick else "normal")
    fig.savefig(ctx.out / name, dpi=110)
    plt.close(fig)
    ctx.files.append(name)
