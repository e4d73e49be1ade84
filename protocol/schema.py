"""A small declarative schema language for envelope bodies (the stateless half of validation, STYLE §5).

A schema is a tree of field descriptors; :meth:`Schema.check` walks a decoded body and raises
:class:`~.errors.SchemaError` naming the first offending path, e.g. ``body.demand[3]: below 0``::

    PRICE = Schema({
        "price": Num(low=0),
        "demand": List(Num(low=0), max_len=1000),
        "task": Bytes(size=32),
        "note": Optional(Str(max_len=200)),
    })
    PRICE.check(env.body)

Rules every descriptor keeps: unknown map keys are rejected; floats must be finite; ``Int`` rejects ``bool``
and ``float`` (msgpack keeps them distinct, and so do we: "no floats where an integer is meant", docs/protocol.md);
every container has an explicit length cap. Descriptors are frozen dataclasses, so two schemas compare equal
exactly when they accept the same shapes (``messages.register`` relies on that).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SchemaError

__all__ = [
    "Bool",
    "Bytes",
    "Field",
    "Int",
    "List",
    "Map",
    "Num",
    "Optional",
    "Schema",
    "Str",
]


class Field(abc.ABC):
    """Base class of all descriptors."""

    @abc.abstractmethod
    def check(self, value: Any, path: str = "body") -> None:
        """Validate ``value``.

        Args:
            value: a decoded msgpack value.
            path: where the value sits, for the error message.

        Raises:
            SchemaError: the value does not match; the message starts with ``path``.
        """


def _fail(path: str, what: str) -> SchemaError:
    return SchemaError(f"{path}: {what}")


def _typename(value: Any) -> str:
    return "nil" if value is None else type(value).__name__


@dataclass(frozen=True)
class Bool(Field):
    """``True`` or ``False`` (not 0/1)."""

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, bool):
            raise _fail(path, f"expected bool, got {_typename(value)}")


@dataclass(frozen=True)
class Int(Field):
    """An integer in ``[low, high]`` (inclusive; ``None`` for unbounded). Rejects bool and float.

    Msgpack integers are limited to the 64-bit range anyway; the default bounds say so explicitly.
    """

    low: int | None = -(2**63)
    high: int | None = 2**64 - 1

    def check(self, value: Any, path: str = "body") -> None:
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise _fail(path, f"expected int, got {_typename(value)}")
        if self.low is not None and value < self.low:
            raise _fail(path, f"below {self.low}")
        if self.high is not None and value > self.high:
            raise _fail(path, f"above {self.high}")


@dataclass(frozen=True)
class Num(Field):
    """A finite real number (float or int, never bool) in ``[low, high]``.

    Args:
        low: lower bound, or ``None``.
        high: upper bound, or ``None``.
        open_low: exclude ``low`` itself (e.g. a price that must be strictly positive).
        open_high: exclude ``high`` itself.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def check(self, value: Any, path: str = "body") -> None:
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise _fail(path, "not finite")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _fail(path, f"expected number, got {_typename(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, "not finite")
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            raise _fail(path, f"{'not above' if self.open_low else 'below'} {self.low:g}")
        if self.high is not None and (value >= self.high if self.open_high else value > self.high):
            raise _fail(path, f"{'not below' if self.open_high else 'above'} {self.high:g}")


_PLAIN_NUMBERS = frozenset({float, int})


def _all_numbers_within(values: list[Any], num: Num) -> bool:
    """True when every element is a finite int/float inside ``num``'s bounds, decided without a Python loop.

    A finite sum implies finite elements (one inf or NaN makes the sum inf or NaN), and then ``min`` and
    ``max`` are exact. False means "not certain", never "invalid": the caller then checks element by element,
    which also names the offending index.
    """
    if not set(map(type, values)) <= _PLAIN_NUMBERS:  # bool is its own type, so it is refused here
        return False
    try:
        if not math.isfinite(sum(values)):
            return False
    except OverflowError:
        return False
    lo, hi = min(values), max(values)
    if num.low is not None and (lo <= num.low if num.open_low else lo < num.low):
        return False
    return not (num.high is not None and (hi >= num.high if num.open_high else hi > num.high))


@dataclass(frozen=True)
class Str(Field):
    """A UTF-8 string of ``min_len..max_len`` characters, optionally one of ``choices``."""

    max_len: int = 256
    min_len: int = 0
    choices: tuple[str, ...] | None = None

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, str):
            raise _fail(path, f"expected str, got {_typename(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise _fail(path, f"length {len(value)} outside [{self.min_len}, {self.max_len}]")
        if self.choices is not None and value not in self.choices:
            raise _fail(path, f"{value[:40]!r} not one of {list(self.choices)}")


@dataclass(frozen=True)
class Bytes(Field):
    """A byte string (msgpack ``bin``): exactly ``size`` bytes, or at most ``max_len``."""

    size: int | None = None
    max_len: int = 1 << 20

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, bytes):
            raise _fail(path, f"expected bytes, got {_typename(value)}")
        if self.size is not None and len(value) != self.size:
            raise _fail(path, f"expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max_len:
            raise _fail(path, f"{len(value)} bytes > max {self.max_len}")


@dataclass(frozen=True)
class List(Field):
    """An array of ``item`` with ``min_len..max_len`` elements."""

    item: Field
    max_len: int
    min_len: int = 0

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, list):
            raise _fail(path, f"expected list, got {_typename(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise _fail(path, f"length {len(value)} outside [{self.min_len}, {self.max_len}]")
        if type(self.item) is Num and value and _all_numbers_within(value, self.item):
            return  # a numeric vector (prices, demands, model weights): checked in C, no per-element calls
        check = self.item.check
        try:
            for element in value:  # the fast path builds no per-element path strings
                check(element, path)
        except SchemaError:
            for i, element in enumerate(value):  # name the first offending element
                check(element, f"{path}[{i}]")
            raise


@dataclass(frozen=True)
class Map(Field):
    """A map with free keys (e.g. provider key -> demand), at most ``max_len`` entries."""

    key: Field
    value: Field
    max_len: int

    def check(self, value: Any, path: str = "body") -> None:
        if not isinstance(value, dict):
            raise _fail(path, f"expected map, got {_typename(value)}")
        if len(value) > self.max_len:
            raise _fail(path, f"{len(value)} entries > max {self.max_len}")
        for k, v in value.items():
            label = k.hex()[:16] if isinstance(k, bytes) else repr(k)[:40]
            self.key.check(k, f"{path}<key {label}>")
            self.value.check(v, f"{path}[{label}]")


@dataclass(frozen=True)
class Optional(Field):
    """``inner`` or nil; inside a :class:`Schema` the key may also be absent."""

    inner: Field

    def check(self, value: Any, path: str = "body") -> None:
        if value is not None:
            self.inner.check(value, path)


@dataclass(frozen=True)
class Schema(Field):
    """A map with a fixed set of string keys; unknown keys are rejected, non-Optional keys required."""

    fields: Mapping[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, descriptor in self.fields.items():
            if not isinstance(name, str) or not isinstance(descriptor, Field):
                raise TypeError(f"schema entry {name!r} must map a str to a Field")
        object.__setattr__(self, "fields", dict(self.fields))
        names = frozenset(self.fields)
        required = frozenset(n for n, d in self.fields.items() if not isinstance(d, Optional))
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_required", required)
        object.__setattr__(self, "_checks", {name: d.check for name, d in self.fields.items()})

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.fields)))

    def check(self, value: Any, path: str = "body") -> None:
        """Validate a decoded map against this schema (see :meth:`Field.check`)."""
        if not isinstance(value, dict):
            raise _fail(path, f"expected map, got {_typename(value)}")
        keys = value.keys()
        names: frozenset[str] = self._names  # type: ignore[attr-defined]
        if keys != names:  # every field present (the common case) passes both checks below at once
            if not keys <= names:
                unknown = [k for k in value if k not in names]
                raise _fail(path, f"unknown field {sorted(map(repr, unknown))[0]}")
            required: frozenset[str] = self._required  # type: ignore[attr-defined]
            if not required <= keys:
                missing = sorted(required - keys)[0]
                raise _fail(f"{path}.{missing}", "missing")
        checks = self._checks  # type: ignore[attr-defined]
        try:
            for name, item in value.items():  # the fast path builds no per-field path strings
                checks[name](item, path)
        except SchemaError:
            fields = self.fields
            for name in fields:  # name the offending field, in declaration order
                if name in value:
                    fields[name].check(value[name], f"{path}.{name}")
            raise
