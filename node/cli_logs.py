"""``bazaar net logs --dir D [--node N[,M...]] [-f]``: every node's log of a network, merged by time and readable.

A node writes one event per line to ``nodes/<name>/node.log``: a JSON object under ``--log-json`` (``ts``, ``level``,
``node``, ``event`` and the event's fields, see :mod:`bazaar.node.logs`), ``HH:MM:SS.mmm L node event k=v``
otherwise. Both are read; a line of neither form (a start-up error, a native stack dump) is kept, stamped with
the time of the line before it. Lines are merged by time (stable: one node's lines keep their order).

``-f`` follows the files: new lines are printed as they come, until Ctrl-C, a closed output pipe, every node of
the network has exited, or ``--for SECONDS`` has passed. ``--json`` prints one JSON object per line instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import ParamError

POLL_S = 0.25
"""How often ``-f`` looks for new lines."""
_TEXT = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) ([A-Z]) (\S+) (\S+)(?: (.*))?$")
_LEVELS = {"D": "debug", "I": "info", "W": "warning", "E": "error", "C": "critical"}


@dataclass(order=True)
class Record:
    """One log line: when, which node, level, event, fields (or the raw ``text`` of an unparsed line)."""

    ts: float
    seq: int
    node: str = field(compare=False)
    level: str = field(compare=False, default="")
    event: str = field(compare=False, default="")
    fields: dict[str, Any] = field(compare=False, default_factory=dict)
    text: str = field(compare=False, default="")

    def to_json(self) -> dict[str, Any]:
        """The machine form: the node's own JSON object when it logged JSON, else the parsed parts."""
        if self.event:
            return {"ts": round(self.ts, 3), "level": self.level, "node": self.node, "event": self.event,
                    **self.fields}
        return {"ts": round(self.ts, 3), "node": self.node, "text": self.text}


class LogFile:
    """One node's log, read incrementally (only whole lines; a partial last line waits for its end)."""

    def __init__(self, node: str, path: Path) -> None:
        self.node = node
        self.path = path
        self.offset = 0
        self.last_ts = 0.0
        self._seq = 0

    def read(self) -> list[Record]:
        """The complete lines written since the last call (none if the file is missing or unreadable)."""
        try:
            with self.path.open("rb") as fh:
                size = fh.seek(0, 2)
                if size < self.offset:  # truncated or replaced: start again
                    self.offset = 0
                fh.seek(self.offset)
                chunk = fh.read()
                mtime = self.path.stat().st_mtime
        except OSError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        out = []
        for raw in chunk[:end].decode("utf-8", errors="replace").splitlines():
            if raw.strip():
                out.append(self.parse(raw, mtime))
        return out

    def parse(self, line: str, mtime: float) -> Record:
        """One line as a :class:`Record` (``mtime``: the file's, which dates a text line's time of day)."""
        self._seq += 1
        rec = _json_record(line, self.node, self._seq) or _text_record(line, self.node, self._seq, mtime)
        if rec is None:
            rec = Record(self.last_ts, self._seq, self.node, text=line.rstrip())
        self.last_ts = rec.ts
        return rec


def _json_record(line: str, node: str, seq: int) -> Record | None:
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("ts"), (int, float)) or "event" not in doc:
        return None
    fields = {k: v for k, v in doc.items() if k not in ("ts", "level", "node", "event")}
    return Record(float(doc["ts"]), seq, str(doc.get("node") or node), str(doc.get("level", "")),
                  str(doc["event"]), fields)


def _text_record(line: str, node: str, seq: int, mtime: float) -> Record | None:
    m = _TEXT.match(line.rstrip())
    if m is None:
        return None
    h, mi, s, ms = (int(x) for x in m.group(1, 2, 3, 4))
    if h > 23 or mi > 59 or s > 59:
        return None
    day = dt.datetime.fromtimestamp(mtime)
    when = day.replace(hour=h, minute=mi, second=s, microsecond=ms * 1000).timestamp()
    if when > mtime + 60:  # a time of day later than the file's last write: written the day before
        when -= 86400
    fields: dict[str, Any] = {}
    for part in (m.group(8) or "").split(" "):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = _value(value)
    return Record(when, seq, m.group(6), _LEVELS.get(m.group(5), m.group(5).lower()), m.group(7), fields)


def _value(text: str) -> Any:
    """A text log's ``k=v`` value back as a number or a boolean where it reads as one."""
    if len(text) >= 16 and all(c in "0123456789abcdef" for c in text):
        return text  # a key or hash prefix, even when it happens to be all digits
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def merged(files: Iterable[LogFile]) -> list[Record]:
    """The new lines of every file, merged by time (stable within a file)."""
    batch = [rec for f in files for rec in f.read()]
    return sorted(batch, key=lambda r: r.ts)


def _styles() -> list[str]:
    return ["cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green"]


class Printer:
    """Writes records for people (aligned columns, a colour per node on a terminal) or as JSON lines."""

    def __init__(self, as_json: bool, width: int, names: dict[str, str] | None = None) -> None:
        self.as_json = as_json
        self.width = width
        self.names = names or {}
        """The first 16 hex digits of an account key (as logs print keys) -> node name."""
        self._console: Any = None
        self._colour: dict[str, str] = {}

    def write(self, records: Iterable[Record]) -> None:
        """Print the records and flush (a closed pipe raises ``BrokenPipeError`` here)."""
        if self.as_json:
            for rec in records:
                print(json.dumps(rec.to_json(), default=str))
        else:
            from rich.text import Text

            from .output import console

            if self._console is None:
                self._console = console()
            for rec in records:
                stamp = dt.datetime.fromtimestamp(rec.ts).strftime("%H:%M:%S.%f")[:-3]
                colour = self._colour.setdefault(rec.node, _styles()[len(self._colour) % len(_styles())])
                line = Text(f"{stamp} ", style="dim")
                line.append(f"{rec.node:<{self.width}} ", style=colour)
                if rec.event:
                    level = {"warning": "bold yellow", "error": "bold red", "critical": "bold red"}.get(rec.level)
                    line.append(f"{(rec.level or '-')[:4]:<5}", style=level or "dim")
                    line.append(rec.event, style=level or "bold")
                    if rec.fields:
                        line.append("  " + " ".join(f"{k}={_short(self.names.get(str(v), v))}"
                                                    for k, v in rec.fields.items()), style="dim")
                else:
                    line.append(f"{'':<5}{rec.text}", style="red")
                self._console.print(line, soft_wrap=True, markup=False, highlight=False)
        import sys

        sys.stdout.flush()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _files(root: Path, info: dict[str, Any], only: list[str] | None) -> list[LogFile]:
    names = list(info["nodes"])
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ParamError("--node", f"no node {unknown[0]!r} in this network (nodes: {', '.join(names)})")
        names = [n for n in names if n in only]
    return [LogFile(n, root / "nodes" / n / "node.log") for n in names]


def _any_alive(root: Path) -> bool:
    from .cli_process import process_state
    from .launcher import LaunchError, NetDir

    try:
        nodes = NetDir(root).load()["nodes"]
    except LaunchError:
        return False
    return any(process_state(v["pid"], v["config"])[0] != "down" for v in nodes.values())


def follow(files: list[LogFile], printer: Printer, root: Path, *, seconds: float | None) -> Iterator[int]:
    """Print new lines as they come; yields after every poll (how many lines it printed), and ends when every
    node has exited (after a last read) or ``seconds`` have passed."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        alive = _any_alive(root)
        batch = merged(files)
        printer.write(batch)
        yield len(batch)
        if not alive:
            printer.write(merged(files))
            return
        time.sleep(POLL_S)


def cmd_logs(args: argparse.Namespace, root: Path) -> int:
    """``bazaar net logs``: print the merged logs (then follow them with ``-f``)."""
    from .launcher import NetDir

    if args.lines is not None and args.lines < 0:
        raise ParamError("--lines", "must be 0 or more")
    if args.seconds is not None and args.seconds <= 0:
        raise ParamError("--for", "must be a positive number of seconds")
    info = NetDir(root).load()
    files = _files(root, info, [n for n in args.node.split(",") if n] if args.node else None)
    names = {v["key"][:16]: n for n, v in info["nodes"].items() if isinstance(v.get("key"), str)}
    printer = Printer(args.json, max((len(f.node) for f in files), default=4), names)
    history = merged(files)
    if args.lines is not None:
        history = history[len(history) - args.lines:] if args.lines else []
    printer.write(history)
    if args.follow:
        try:
            for _ in follow(files, printer, root, seconds=args.seconds):
                pass
        except KeyboardInterrupt:
            return 0
    return 0


def add_arguments(net: argparse.ArgumentParser) -> None:
    """The ``net logs`` options (on the ``net`` parser)."""
    net.add_argument("-f", "--follow", action="store_true",
                     help="logs: keep printing new lines until Ctrl-C, every node has exited, or --for SECONDS")
    net.add_argument("--lines", type=int, metavar="N", help="logs: start with the last N lines only")
    net.add_argument("--for", dest="seconds", type=float, metavar="SECONDS", help="logs -f: stop after this long")
