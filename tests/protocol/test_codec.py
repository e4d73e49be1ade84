"""Canonical msgpack: one encoding per value, bounded decoding, typed errors only."""

from __future__ import annotations

import contextlib
import itertools
import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.protocol.codec import decode, decode_canonical, encode
from bazaar.protocol.errors import DecodeError, OversizeError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
keys = st.text(max_size=8) | st.binary(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip_and_canonical(value: object) -> None:
    data = encode(value)
    assert decode_canonical(data) == value
    assert encode(decode(data)) == data


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=6), scalars, max_size=8), st.randoms())
def test_key_order_does_not_change_the_bytes(mapping: dict[str, object], rnd: object) -> None:
    items = list(mapping.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert encode(dict(items)) == encode(mapping)


def test_specific_encodings() -> None:
    assert encode({"b": 1, "a": 2}) == b"\x82\xa1a\x02\xa1b\x01"
    assert encode(b"\x00") == b"\xc4\x01\x00"  # bytes as bin, never str
    assert encode(1.5) == b"\xcb" + msgpack.packb(1.5)[1:]  # float64 always
    assert encode((1, 2)) == encode([1, 2])
    assert encode(True) == b"\xc3" and encode(1) == b"\x01"


def test_numpy_scalars_encode_as_python_numbers() -> None:
    np = pytest.importorskip("numpy")
    assert encode({"x": np.float64(0.25), "n": np.int64(3)}) == encode({"x": 0.25, "n": 3})


def test_unencodable_values_raise_type_error() -> None:
    with pytest.raises(TypeError):
        encode({1, 2})
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError, match="map keys"):
        encode({1: "int keys would not decode under strict_map_key"})
    with pytest.raises(OverflowError):
        encode(2**64)


@pytest.mark.parametrize(
    "data",
    [
        b"\x82\xa1b\x01\xa1a\x02",  # keys out of order
        b"\xcd\x00\x01",  # 1 as uint16: not the smallest form
        b"\xca\x3f\xc0\x00\x00",  # float32
        b"\xd9\x01a",  # str8 for a 1-byte string
        b"\x82\xa1a\x01\xa1a\x02",  # duplicate key
    ],
)
def test_non_canonical_encodings_are_rejected(data: bytes) -> None:
    decode(data)  # well-formed
    with pytest.raises(DecodeError, match="canonical"):
        decode_canonical(data)


def test_size_limit_is_checked_before_decoding() -> None:
    with pytest.raises(OversizeError):
        decode(b"\xc0" * 11, max_size=10)
    with pytest.raises(DecodeError):
        decode(b"\xdd\xff\xff\xff\xff")  # array header announcing 4 billion items
    with pytest.raises(DecodeError):
        decode(b"\xc6\x7f\xff\xff\xff", max_size=100)  # bin32 longer than the cap


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x91", b"\x01\x02", b"\xd4\x00\x00", b"\x81\x90\x01"])
def test_malformed_inputs(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_non_bytes_input() -> None:
    with pytest.raises(DecodeError):
        decode("text")  # type: ignore[arg-type]


def test_nan_is_encodable_but_stays_nan() -> None:
    assert math.isnan(decode(encode(float("nan"))))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_only_raises_protocol_errors(data: bytes) -> None:
    for fn in (decode, decode_canonical):
        with contextlib.suppress(DecodeError, OversizeError):
            fn(data, max_size=48)


@settings(max_examples=200, deadline=None)
@given(values, st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_mutated_valid_encodings_only_raise_protocol_errors(value: object, pos: int, byte: int) -> None:
    data = bytearray(encode(value))
    data[pos % len(data)] = byte
    with contextlib.suppress(DecodeError, OversizeError):
        decode_canonical(bytes(data))


def _reference_is_canonical(data: bytes) -> bool:
    """The slow definition the fast check must equal: decode, re-encode canonically, compare."""
    try:
        return encode(decode(data)) == data
    except (DecodeError, OversizeError, TypeError, ValueError, OverflowError):
        return False


def _fast_is_canonical(data: bytes) -> bool:
    try:
        decode_canonical(data)
    except (DecodeError, OversizeError):
        return False
    return True


unsorted_maps = st.dictionaries(keys, scalars, min_size=2, max_size=5).map(
    lambda m: msgpack.packb(dict(reversed(list(m.items()))), use_bin_type=True)
)


@settings(max_examples=400, deadline=None)
@given(
    values.map(encode)
    | values.map(lambda v: msgpack.packb(v, use_bin_type=True))
    | st.lists(st.floats(width=32, allow_nan=False), max_size=4).map(
        lambda v: msgpack.packb(v, use_bin_type=True, use_single_float=True)
    )
    | unsorted_maps
    | st.binary(max_size=40)
)
def test_fast_canonical_check_equals_the_reference(data: bytes) -> None:
    """decode_canonical's one-pass check accepts exactly what decode + canonical re-encode reproduces."""
    assert _fast_is_canonical(data) == _reference_is_canonical(data)


def test_duplicate_map_keys_are_not_canonical() -> None:
    data = b"\x82\xa1a\x01\xa1a\x02"  # {"a": 1, "a": 2} on the wire
    with pytest.raises(DecodeError):
        decode_canonical(data)


nested_unsorted = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(keys, inner, min_size=2, max_size=4).map(lambda m: dict(reversed(list(m.items())))),
    max_leaves=12,
).map(lambda v: msgpack.packb(v, use_bin_type=True))


@settings(max_examples=400, deadline=None)
@given(
    values.map(encode)
    | values.map(lambda v: msgpack.packb(v, use_bin_type=True))
    | nested_unsorted
    | unsorted_maps
    | st.binary(max_size=40)
)
def test_repacked_plus_maps_sorted_equals_decode_canonical(data: bytes) -> None:
    """decode_repacked + maps_sorted (the envelope's fast path) accept exactly what decode_canonical accepts,
    with the same value."""
    from bazaar.protocol.codec import decode_repacked, maps_sorted

    try:
        expected: object = decode_canonical(data)
    except (DecodeError, OversizeError):
        expected = DecodeError
    try:
        value = decode_repacked(data)
        got: object = value if maps_sorted(value) else DecodeError
    except (DecodeError, OversizeError):
        got = DecodeError
    if expected is DecodeError or got is DecodeError:
        assert got is expected
    else:  # compared by encoding: a NaN inside compares unequal to itself
        assert msgpack.packb(got, use_bin_type=True) == msgpack.packb(expected, use_bin_type=True)


def test_maps_sorted_walks_deep_values_without_recursion() -> None:
    from bazaar.protocol.codec import maps_sorted

    deep: object = {"a": 1}
    for _ in range(5_000):
        deep = [deep]
    assert maps_sorted(deep)
    bad: object = {"b": 1, "a": 2}
    for _ in range(5_000):
        bad = [bad]
    assert not maps_sorted(bad)


def _split_variants() -> st.SearchStrategy[list[bytes]]:
    """Lists of items: canonical and plain encodings, random bytes, and encodings cut at random places (so that
    an item's value runs on into the next item when the items are decoded joined)."""
    whole = values.map(encode) | values.map(lambda v: msgpack.packb(v, use_bin_type=True)) | nested_unsorted

    @st.composite
    def cut(draw: st.DrawFn) -> list[bytes]:
        joined = b"".join(draw(st.lists(whole, min_size=1, max_size=4)))
        points = sorted(draw(st.lists(st.integers(0, len(joined)), max_size=4)))
        edges = [0, *points, len(joined)]
        return [joined[a:b] for a, b in itertools.pairwise(edges)]

    return st.lists(whole | st.binary(max_size=12), max_size=6) | cut()


@settings(max_examples=400, deadline=None)
@given(_split_variants())
def test_decode_repacked_many_equals_decode_repacked_item_by_item(items: list[bytes]) -> None:
    """Each value decode_repacked_many vouches for is decode_repacked's value of that item alone; the rest is
    left to the per-item path, which raises for it or decodes it."""
    from bazaar.protocol.codec import NOT_DECODED, decode_repacked, decode_repacked_many

    got = decode_repacked_many(items)
    assert len(got) == len(items)
    for item, value in zip(items, got, strict=True):
        try:
            expected: object = decode_repacked(item)
        except (DecodeError, OversizeError):
            assert value is NOT_DECODED
            continue
        if value is not NOT_DECODED:  # compared by encoding: a NaN inside compares unequal to itself
            assert msgpack.packb(value, use_bin_type=True) == msgpack.packb(expected, use_bin_type=True)


def test_decode_repacked_many_decodes_every_well_formed_item() -> None:
    from bazaar.protocol.codec import decode_repacked_many

    items = [encode({"a": i, "b": [1.5, b"x"]}) for i in range(5)]
    assert decode_repacked_many(items) == [{"a": i, "b": [1.5, b"x"]} for i in range(5)]
    from bazaar.protocol.codec import NOT_DECODED

    assert all(v is NOT_DECODED for v in decode_repacked_many(items, max_size=3))  # over the cap: item by item
