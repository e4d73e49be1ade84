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
              min_width=len(title) if title else None,
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


MAX_ROWS = 20
"""Rows of a list shown for people; longer lists are summarised (``--json`` prints them whole)."""


def cell(value: Any) -> str:
    """A value in a table cell: numbers to 6 significant digits, None as ``-``, nested values as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(_rounded(value), separators=(", ", ": "), default=str)
        return text if len(text) <= 100 else text[:97] + "..."
    return str(value)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def document_tables(title: str, doc: Mapping[str, Any]) -> list[Any]:
    """A solver's JSON document as tables for people: its scalars in one table, per-entity vectors of the same
    length side by side (one row per entity), each mapping and each list of records as its own table."""
    out: list[Any] = []
    scalars = [(k, cell(v)) for k, v in doc.items() if _scalar(v)]
    if scalars:
        out.append(table(title, ("quantity", "value"), scalars, right=("value",)))
    vectors: dict[int, list[str]] = {}
    for key, value in doc.items():
        if isinstance(value, list) and value and all(_scalar(v) for v in value):
            vectors.setdefault(len(value), []).append(key)
    for length, keys in vectors.items():
        rows = [(i, *(cell(doc[k][i]) for k in keys)) for i in range(min(length, MAX_ROWS))]
        out.append(table(None, ("#", *keys), rows, right=("#", *keys),
                         caption=f"{length - MAX_ROWS} more rows: --json" if length > MAX_ROWS else None))
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            out.append(_mapping_table(key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            cols = list(dict.fromkeys(c for v in value for c in v))
            rows = [(i, *(cell(v.get(c)) for c in cols)) for i, v in enumerate(value[:MAX_ROWS])]
            out.append(table(key, ("#", *cols), rows, right=("#",),
                             caption=f"{len(value)} entries, the first {MAX_ROWS} shown (--json: all)"
                             if len(value) > MAX_ROWS else None))
        elif isinstance(value, list) and value and not all(_scalar(v) for v in value):
            out.append(table(key, ("#", "value"), [(i, cell(v)) for i, v in enumerate(value[:MAX_ROWS])]))
    return out


def _mapping_table(key: str, value: Mapping[str, Any]) -> Any:
    inner = list(value.values())
    if all(isinstance(v, dict) for v in inner):  # entity -> record
        cols = list(dict.fromkeys(c for v in inner for c in v))
        return table(key, ("name", *cols), [(k, *(cell(v.get(c)) for c in cols)) for k, v in value.items()])
    lists = [v for v in inner if isinstance(v, list)]
    if lists and len(lists) == len(inner) and all(_scalar(x) for v in lists for x in v) \
            and len({len(v) for v in lists}) == 1:  # quantity -> per-entity vector
        n = len(lists[0])
        return table(key, ("#", *value), [(i, *(cell(v[i]) for v in lists)) for i in range(n)],
                     right=("#", *value))
    return table(key, ("name", "value"), [(k, cell(v)) for k, v in value.items()], right=("value",))


def print_document(doc: Mapping[str, Any], as_json: bool, *, title: str) -> None:
    """``--json``: the document on one line (the machine format); otherwise its tables (see
    :func:`document_tables`)."""
    if as_json:
        print(json.dumps(doc))
    else:
        show(*document_tables(title, doc))
