"""Hypothesis strategies derived from the registered message schemas, and byte-level envelope mutations.

``valid(field)`` draws a value the descriptor accepts; ``hostile(field)`` draws one it must refuse (out of
range, wrong type, too long, not finite); ``bodies(schema)`` draws a valid-shaped body and then, most of the
time, breaks it: a hostile value somewhere (nested fields included), a required field missing, an extra field.
Every value drawn has a canonical msgpack form (a peer can only send what msgpack carries), so the fuzzer
exercises the receiver, never our own encoder.

``mutations(wire)`` turns valid signed envelope bytes into near misses: bit flips, truncations, splices of two
envelopes, insertions, and msgpack length fields that lie (a ``bin 32`` that claims more bytes than follow).

``Pool`` holds "interesting" byte strings (real account keys, real signed transactions, a real block) that the
``Bytes`` strategy mixes in, so valid-shaped bodies reach past the first "unknown account" check into deeper
handler code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from bazaar.ledger.txs import RecordData
from bazaar.protocol.schema import Bool, Bytes, Field, Int, List, Map, Num, Optional, Schema, Str

MSGPACK_LOW = -(2**63)
MSGPACK_HIGH = 2**64 - 1
SMALL = 6
"""Longest container drawn for a valid value (the caps themselves are probed by ``hostile``)."""
BIG_COPY = 4096
"""Containers longer than this are never built to probe a cap (memory and time); a cap above it is probed by
its boundary only when the list is cheap to build (one shared element)."""


@dataclass
class Pool:
    """Byte strings worth mixing into ``Bytes`` fields: real keys (32 B), real transactions, a block."""

    keys: list[bytes] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)

    def fitting(self, size: int | None, max_len: int) -> list[bytes]:
        """The pool entries a ``Bytes(size, max_len)`` accepts."""
        every = self.keys + self.blobs
        if size is not None:
            return [b for b in every if len(b) == size]
        return [b for b in every if len(b) <= max_len]


_EMPTY = Pool()


def _ints(low: int | None, high: int | None) -> st.SearchStrategy[int]:
    lo = MSGPACK_LOW if low is None else max(low, MSGPACK_LOW)
    hi = MSGPACK_HIGH if high is None else min(high, MSGPACK_HIGH)
    return st.integers(lo, hi)


def scalar_junk() -> st.SearchStrategy[Any]:
    """Any msgpack scalar: the wrong-type values of every field."""
    return st.one_of(
        st.none(), st.booleans(), _ints(None, None), st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8), st.binary(max_size=8),
    )


def msgpack_values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Arbitrary msgpack values (maps with str keys), a few levels deep."""
    return st.recursive(
        scalar_junk(),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
        max_leaves=8 if depth else 1,
    )


def valid(f: Field, pool: Pool = _EMPTY) -> st.SearchStrategy[Any]:
    """Values ``f`` accepts."""
    if isinstance(f, Bool):
        return st.booleans()
    if isinstance(f, Int):
        return _ints(f.low, f.high)
    if isinstance(f, Num):
        floats = st.floats(
            min_value=f.low, max_value=f.high, allow_nan=False, allow_infinity=False,
            exclude_min=f.open_low and f.low is not None, exclude_max=f.open_high and f.high is not None,
        )
        return floats
    if isinstance(f, Str):
        if f.choices is not None:
            return st.sampled_from(f.choices)
        return st.text(min_size=f.min_len, max_size=max(f.min_len, min(f.max_len, 12)))
    if isinstance(f, Bytes):
        fit = pool.fitting(f.size, f.max_len)
        plain = st.binary(min_size=f.size, max_size=f.size) if f.size is not None \
            else st.binary(max_size=min(f.max_len, 64))
        return st.one_of(plain, st.sampled_from(fit)) if fit else plain
    if isinstance(f, List):
        return st.lists(valid(f.item, pool), min_size=f.min_len, max_size=max(f.min_len, min(f.max_len, SMALL)))
    if isinstance(f, Map):
        return st.dictionaries(valid(f.key, pool), valid(f.value, pool), max_size=min(f.max_len, 4))
    if isinstance(f, Optional):
        return st.one_of(st.none(), valid(f.inner, pool))
    if isinstance(f, Schema):
        return _valid_schema(f, pool) if f.fields else st.just({})
    if isinstance(f, RecordData):
        return st.dictionaries(st.text(max_size=8), msgpack_values(), max_size=4)
    return msgpack_values()  # a descriptor this module does not know: anything


@st.composite
def _valid_schema(draw: st.DrawFn, schema: Schema, pool: Pool) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, f in schema.fields.items():
        if isinstance(f, Optional) and draw(st.booleans()):
            continue  # an Optional key may be absent
        body[name] = draw(valid(f, pool))
    return body


def hostile(f: Field, pool: Pool = _EMPTY) -> st.SearchStrategy[Any]:
    """Values ``f`` must refuse (or, for a container, a container with one refused element)."""
    options: list[st.SearchStrategy[Any]] = []
    if isinstance(f, Bool):
        options.append(st.sampled_from([0, 1, "true", None]))
    elif isinstance(f, Int):
        if f.low is not None and f.low > MSGPACK_LOW:
            options.append(st.integers(max(MSGPACK_LOW, f.low - 2**64), f.low - 1))
        if f.high is not None and f.high < MSGPACK_HIGH:
            options.append(st.integers(f.high + 1, MSGPACK_HIGH))
        options.append(st.sampled_from([True, False, 1.0, 0.5, "1", b"\x01", None]))
    elif isinstance(f, Num):
        options.append(st.sampled_from([math.nan, math.inf, -math.inf, True, "1.0", None]))
        if f.low is not None:
            options.append(st.floats(max_value=f.low, allow_nan=False, allow_infinity=False,
                                     exclude_max=not f.open_low))
        if f.high is not None:
            options.append(st.floats(min_value=f.high, allow_nan=False, allow_infinity=False,
                                     exclude_min=not f.open_high))
    elif isinstance(f, Str):
        options.append(st.sampled_from([b"bytes", 7, None, ["x"]]))
        options.append(st.just("x" * (f.max_len + 1)))
        if f.min_len > 0:
            options.append(st.text(max_size=f.min_len - 1))
        if f.choices is not None:
            options.append(st.text(max_size=10).filter(lambda s: s not in (f.choices or ())))
    elif isinstance(f, Bytes):
        options.append(st.sampled_from(["text", 7, None, [b"x"]]))
        if f.size is not None:
            options.append(st.binary(max_size=f.size + 4).filter(lambda b: len(b) != f.size))
        elif f.max_len <= 1 << 20:
            options.append(st.just(b"\x00" * (f.max_len + 1)))
    elif isinstance(f, List):
        options.append(st.sampled_from([{}, b"list", 3, None]))
        item = valid(f.item, pool)
        options.append(st.builds(lambda x: [x] * (f.max_len + 1), item) if f.max_len < BIG_COPY
                       else st.builds(lambda x: [x] * min(f.max_len + 1, 100_001), item))
        if f.min_len > 0:
            options.append(st.lists(item, max_size=f.min_len - 1))
        options.append(st.lists(hostile(f.item, pool), min_size=1, max_size=3))
    elif isinstance(f, Map):
        options.append(st.sampled_from([[], b"map", 3, None]))
        options.append(st.dictionaries(hostile(f.key, pool).filter(_hashable), valid(f.value, pool), min_size=1,
                                       max_size=2))
        options.append(st.dictionaries(valid(f.key, pool), hostile(f.value, pool), min_size=1, max_size=2))
    elif isinstance(f, Optional):
        return hostile(f.inner, pool)
    elif isinstance(f, Schema):
        return bodies(f, pool, always_break=True)
    elif isinstance(f, RecordData):
        options.append(st.sampled_from([[], 3, None, {"x": b"\x00" * (f.max_bytes + 1)}]))
    else:
        options.append(scalar_junk())
    return st.one_of(options)


def _hashable(value: Any) -> bool:
    """Map keys a peer can send: msgpack ``str`` and ``bin`` (the codec refuses other key types)."""
    return isinstance(value, (str, bytes))


@st.composite
def bodies(draw: st.DrawFn, schema: Schema, pool: Pool = _EMPTY, *, always_break: bool = False) -> Any:
    """A body of ``schema``'s shape, broken most of the time: a hostile value (at any depth), a required key
    missing, an extra key, or not a map at all. One draw in five is left valid (unless ``always_break``)."""
    body = dict(draw(valid(schema, pool)))
    how = draw(st.sampled_from(["hostile", "hostile", "missing", "extra", "not-a-map", "valid"]))
    if how == "valid" and always_break:
        how = "extra"
    if how == "hostile" and schema.fields:
        name = draw(st.sampled_from(sorted(schema.fields)))
        body[name] = draw(hostile(schema.fields[name], pool))
    elif how == "missing":
        required = sorted(n for n, f in schema.fields.items() if not isinstance(f, Optional))
        if required:
            del body[draw(st.sampled_from(required))]
        else:
            body["zz-extra"] = 1
    elif how == "extra" or (how == "hostile" and not schema.fields):
        body[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in schema.fields))] = draw(scalar_junk())
    elif how == "not-a-map":
        return draw(st.one_of(st.lists(scalar_junk(), max_size=3), scalar_junk()))
    return body


def shaped(schema: Schema, pool: Pool = _EMPTY) -> st.SearchStrategy[Any]:
    """Bodies for reaching handlers: about half valid (they pass ``validate_basic`` and run the handler's own
    checks), half broken as by :func:`bodies`."""
    return st.one_of(valid(schema, pool), bodies(schema, pool))


def _lying_lengths(wire: bytes, at: int, claim: int) -> bytes:
    """Rewrite the first msgpack length header at or after ``at`` (bin8/16/32, str8/16/32, array16/32,
    map16/32) to claim ``claim`` instead of the true length."""
    heads = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}
    for i in range(at, len(wire)):
        width = heads.get(wire[i])
        if width is not None and i + 1 + width <= len(wire):
            value = claim % (1 << (8 * width))
            return wire[:i + 1] + value.to_bytes(width, "big") + wire[i + 1 + width:]
    return wire


@st.composite
def mutations(draw: st.DrawFn, wires: Sequence[bytes]) -> bytes:
    """A byte-level mutation of one of ``wires`` (valid signed envelopes or blocks)."""
    wire = draw(st.sampled_from(list(wires)))
    n = len(wire)
    how = draw(st.sampled_from(["flip", "flips", "truncate", "splice", "insert", "length-lie", "zero-run",
                                "duplicate-tail"]))
    if how == "flip":
        i = draw(st.integers(0, n * 8 - 1))
        return wire[:i // 8] + bytes([wire[i // 8] ^ (1 << (i % 8))]) + wire[i // 8 + 1:]
    if how == "flips":
        out = bytearray(wire)
        for _ in range(draw(st.integers(2, 16))):
            out[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if how == "truncate":
        return wire[:draw(st.integers(0, n - 1))]
    if how == "splice":
        other = draw(st.sampled_from(list(wires)))
        return wire[:draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))):]
    if how == "insert":
        at = draw(st.integers(0, n))
        return wire[:at] + draw(st.binary(min_size=1, max_size=16)) + wire[at:]
    if how == "length-lie":
        claim = draw(st.one_of(st.integers(0, 64), st.sampled_from([2**16 - 1, 2**31, 2**32 - 1])))
        return _lying_lengths(wire, draw(st.integers(0, n - 1)), claim)
    if how == "zero-run":
        at = draw(st.integers(0, n - 1))
        length = draw(st.integers(1, 64))
        return wire[:at] + bytes(min(length, n - at)) + wire[at + length:]
    return wire + wire[draw(st.integers(0, n - 1)):]
