"""Human output of the CLI: rich tables on stdout, notes on stderr, amounts in tokens, names instead of keys.

Machine output is ``--json`` (the commands print their documents with :func:`print_json`); everything here is
for people. ``rich`` is imported inside the functions, never at module level, so that node processes (which
load the CLI module to start) do not pay for it (docs/adr/0100-cli-human-and-json-output.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

PIPE_WIDTH = 240
"""Columns of a table printed into a pipe or a file."""
UNIT = 10**6
"""Micro-tokens per token (the ledger's integer amounts, docs/adr/0004-integer-micro-token-amounts.md)."""


def print_json(value: Any) -> None:
    """One JSON document on one line on stdout: the machine format of ``--json``."""
    print(json.dumps(value, default=str))


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); plain text, no colours, when it is not a terminal (then wide enough
    that a table is never cut: a pipe or a file has no width; ``COLUMNS`` still wins)."""
    import os

    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """A closed pipe ends the command like any other write would (exit 141 in ``cli.main``), not with
            rich's own exit code 1."""
            self.quiet = True
            raise BrokenPipeError

    out = _Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = _Console(stderr=stderr, highlight=False, soft_wrap=False, width=PIPE_WIDTH)
    return out


def tokens(micro: int | None) -> str:
    """A ledger amount in micro-tokens as tokens for people: ``104787.02356 tokens`` (trailing zeros dropped)."""
    if micro is None:
        return "-"
    whole, frac = divmod(abs(int(micro)), UNIT)
    text = f"{whole:,}" + (f".{frac:06d}".rstrip("0") if frac else "")
    return ("-" if micro < 0 else "") + text


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
          right: Iterable[str] = (), caption: str | None = None) -> Any:
    """A rich table with a header row; ``right`` names the columns aligned right (numbers)."""
    from rich.table import Table

    right = set(right)
    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left", box=_box(),
              pad_edge=False, padding=(0, 1, 0, 0))
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if col in right else "left", no_wrap=col in right or i == 0)
    for row in rows:
        t.add_row(*("-" if v is None else str(v) for v in row))
    return t


def _box() -> Any:
    from rich import box

    return box.SIMPLE_HEAD


def show(*renderables: Any) -> None:
    """Print rich renderables (tables, text) on stdout."""
    out = console()
    for r in renderables:
        out.print(r)


def note(message: str) -> None:
    """A line for people on stderr (progress, where to look, warnings); stdout stays the command's result."""
    print(message, file=sys.stderr, flush=True)


def short_key(key: str | None, names: Mapping[str, str]) -> str:
    """A node's name when the account key is known, else the key's first 12 hex digits."""
    if not key:
        return "-"
    return names.get(key) or f"{key[:12]}…"


def names_of_data_dir(data_dir: Path) -> dict[str, str]:
    """Account key (hex) -> node name, from what a node's data folder and its network folder hold.

    Reads the network's ``net.json`` (two folders up, as ``bazaar net up`` lays it out), else the node's own
    ``node.toml`` address book and ``ready.json``. Unreadable files just give fewer names.
    """
    names: dict[str, str] = {}
    net_json = data_dir.parent.parent / "net.json"
    try:
        nodes = json.loads(net_json.read_text(encoding="utf-8")).get("nodes", {})
        names.update({v["key"]: n for n, v in nodes.items() if isinstance(v, dict) and isinstance(v.get("key"), str)})
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import tomllib

        cfg = tomllib.loads((data_dir / "node.toml").read_text(encoding="utf-8"))
        for peer in cfg.get("peers", []):
            if isinstance(peer, dict) and isinstance(peer.get("key"), str) and isinstance(peer.get("name"), str):
                names.setdefault(peer["key"], peer["name"])
    except (OSError, ValueError):
        pass
    try:
        ready = json.loads((data_dir / "ready.json").read_text(encoding="utf-8"))
        if isinstance(ready.get("key"), str) and isinstance(ready.get("name"), str):
            names.setdefault(ready["key"], ready["name"])
    except (OSError, ValueError, AttributeError):
        pass
    return names


def summary_lines(head: str, summary: Mapping[str, Any]) -> list[str]:
    """A headline and one ``key: value`` line per summary entry (nested values as compact JSON)."""
    lines = [head]
    for key, value in summary.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"  {key}: {text if len(text) <= 200 else text[:197] + '...'}")
    return lines
