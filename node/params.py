"""Typed parameter files for ``bazaar solve`` and scenarios: one clear error naming the key.

A solver declares its keys as :class:`Field` objects; :func:`load_params` reads the TOML file and returns a
plain dict of checked values, or raises :class:`ParamError` whose message names the key. The CLI turns that
into a one-line error and exit code 2 (the documented contract).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

KINDS = ("int", "float", "str", "bool", "num_or_list", "list_float", "list_int", "list_str")


class ParamError(ValueError):
    """A parameter file or value is unusable. ``key`` names the offending key ("" for the file)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"parameter {key!r}: {message}" if key else message)


@dataclass(frozen=True)
class Field:
    """One parameter.

    Attributes:
        name: the TOML key.
        kind: one of ``KINDS``. ``num_or_list`` accepts a number or a list of numbers and returns a list
            broadcast to ``length`` when ``length`` names another key.
        required: whether the key must be present.
        default: value when absent and not required.
        low, high: inclusive bounds for numbers (each element for lists).
        low_open, high_open: make the bound exclusive.
        choices: allowed values for ``str``.
        length: another key holding an int (or a literal int) that a list's length must equal.
        min_len: minimum list length.
        doc: short description (shown by ``--help-params``).
    """

    name: str
    kind: str
    required: bool = True
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    length: str | int | None = None
    min_len: int = 0
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind}")


def _number(key: str, value: Any, integral: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamError(key, f"expected {'an integer' if integral else 'a number'}, got {type(value).__name__}")
    if integral and not isinstance(value, int):
        raise ParamError(key, f"expected an integer, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(key, f"must be finite, got {value!r}")
    return value if integral else float(value)


def _bounds(f: Field, key: str, x: float) -> None:
    if f.low is not None and (x < f.low or (f.low_open and x == f.low)):
        raise ParamError(key, f"{x!r} is below the allowed range ({'>' if f.low_open else '>='} {f.low})")
    if f.high is not None and (x > f.high or (f.high_open and x == f.high)):
        raise ParamError(key, f"{x!r} is above the allowed range ({'<' if f.high_open else '<='} {f.high})")


def _check(f: Field, raw: Any, values: Mapping[str, Any]) -> Any:
    key = f.name
    if f.kind in ("int", "float"):
        x = _number(key, raw, f.kind == "int")
        _bounds(f, key, x)
        return x
    if f.kind == "str":
        if not isinstance(raw, str):
            raise ParamError(key, f"expected a string, got {type(raw).__name__}")
        if f.choices is not None and raw not in f.choices:
            raise ParamError(key, f"{raw!r} is not one of {', '.join(f.choices)}")
        return raw
    if f.kind == "bool":
        if not isinstance(raw, bool):
            raise ParamError(key, f"expected true or false, got {type(raw).__name__}")
        return raw
    expected = f.length if isinstance(f.length, int) else values.get(f.length) if f.length else None
    if f.kind == "num_or_list" and not isinstance(raw, list):
        x = _number(key, raw, False)
        _bounds(f, key, x)
        if expected is None:
            raise ParamError(key, "a single number needs a known length to broadcast")
        return [float(x)] * int(expected)
    if not isinstance(raw, list):
        raise ParamError(key, f"expected a list, got {type(raw).__name__}")
    if f.kind == "list_str":
        if not all(isinstance(v, str) for v in raw):
            raise ParamError(key, "expected a list of strings")
        out: list[Any] = list(raw)
    else:
        integral = f.kind == "list_int"
        out = []
        for i, v in enumerate(raw):
            x = _number(f"{key}[{i}]", v, integral)
            _bounds(f, f"{key}[{i}]", x)
            out.append(x)
    if expected is not None and len(out) != int(expected):
        raise ParamError(key, f"expected {int(expected)} entries, got {len(out)}")
    if len(out) < f.min_len:
        raise ParamError(key, f"expected at least {f.min_len} entries, got {len(out)}")
    return out


def check_params(data: Mapping[str, Any], fields: Iterable[Field]) -> dict[str, Any]:
    """Check a mapping of raw values against ``fields``.

    Fields are checked in order, so a list's ``length`` may name an earlier key.

    Raises:
        ParamError: unknown key, missing key, wrong type, out-of-range value or wrong list length.
    """
    fields = list(fields)
    known = {f.name for f in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParamError(unknown[0], f"unknown key (allowed: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            if f.required:
                raise ParamError(f.name, "missing")
            values[f.name] = f.default
            continue
        values[f.name] = _check(f, data[f.name], values)
    return values


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        ParamError: missing or unreadable file, not UTF-8, or invalid TOML (key ``""``); the message names the
            file.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as err:
        raise ParamError("", f"parameter file {p} does not exist") from err
    except IsADirectoryError as err:
        raise ParamError("", f"parameter file {p} is a directory") from err
    except UnicodeDecodeError as err:
        raise ParamError("", f"{p} is not UTF-8 text (byte {err.start}); TOML files must be UTF-8") from err
    except tomllib.TOMLDecodeError as err:
        raise ParamError("", f"{p} is not valid TOML: {err}") from err
    except OSError as err:
        raise ParamError("", f"cannot read parameter file {p}: {err.strerror or err}") from err


def load_params(path: str | Path, fields: Iterable[Field]) -> dict[str, Any]:
    """Read a TOML parameter file and check it (see :func:`check_params`)."""
    return check_params(read_toml(path), fields)


def naming_file(path: Path, load: Callable[[Path], T]) -> T:
    """``load(path)``, with a :class:`ParamError` that does not name ``path`` re-raised naming it (``(in PATH)``)."""
    try:
        return load(path)
    except ParamError as err:
        if str(path) in str(err):
            raise
        raise ParamError(err.key, f"{str(err).split(': ', 1)[-1]} (in {path})") from err
