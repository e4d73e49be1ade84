"""Canonical msgpack: one byte string per value, bounded decoding.

Canonical means: map keys are str or bytes, sorted by their encoded bytes; bytes as ``bin``, strings as
``str``, integers in the smallest msgpack form, floats always as float64, no extension types. Two encoders
that follow these rules produce the same bytes for the same value, so hashes and signatures are reproducible
across nodes.

Decoding is bounded before anything is allocated: the total size, and the length of every string, bin, array
and map (py-libp2p's msgio and STYLE §4: "bound before you decode").
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import DecodeError, OversizeError

MAX_MESSAGE = 8 << 20
"""Default cap on one encoded value (8 MiB): large enough for a model update of the demo's models."""

_MAX_CONTAINER = 100_000


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, (str, bytes)):
                raise TypeError(f"map keys must be str or bytes, got {type(k).__name__}")
        items = [(_canonical(k), _canonical(v)) for k, v in value.items()]
        items.sort(key=lambda kv: msgpack.packb(kv[0], use_bin_type=True))
        return dict(items)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str, bytes)):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    # numpy scalars and similar: accept plain Python conversions only.
    item = getattr(value, "item", None)
    if callable(item):
        converted = item()
        if isinstance(converted, (int, float, bool)):
            return converted
    raise TypeError(f"cannot encode {type(value).__name__} canonically")


def encode(value: Any) -> bytes:
    """Encode ``value`` as canonical msgpack.

    Args:
        value: nested dicts, lists/tuples, str, bytes, int, float, bool, None.

    Returns:
        The canonical byte string.

    Raises:
        TypeError: for a value with no canonical form (sets, objects, non-str/bytes map keys, ...).
        OverflowError: an integer outside the 64-bit msgpack range.
    """
    return msgpack.packb(_canonical(value), use_bin_type=True, strict_types=False)


def decode(data: bytes, *, max_size: int = MAX_MESSAGE) -> Any:
    """Decode bytes from a peer, bounded, into Python values.

    Args:
        data: the received bytes.
        max_size: maximum accepted length of ``data``.

    Returns:
        The decoded value (maps with str/bytes keys, lists for arrays).

    Raises:
        OversizeError: ``data`` longer than ``max_size``.
        DecodeError: not a single well-formed msgpack value within the limits.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise OversizeError(f"{len(data)} bytes > cap {max_size}")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=_MAX_CONTAINER,
            max_map_len=_MAX_CONTAINER,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise DecodeError(str(err) or type(err).__name__) from err
    except Exception as err:  # msgpack raises several undocumented types on garbage
        raise DecodeError(f"{type(err).__name__}: {err}") from err


def decode_canonical(data: bytes, *, max_size: int = MAX_MESSAGE) -> Any:
    """Decode and insist that ``data`` is the canonical encoding of what it holds.

    Used for signed payloads and blocks, whose hash must be unique for their content.

    Raises:
        DecodeError: well-formed but not canonical (unsorted keys, non-minimal ints, ...).
    """
    value = decode(data, max_size=max_size)
    if encode(value) != bytes(data):
        raise DecodeError("not canonical msgpack")
    return value
