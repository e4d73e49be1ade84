"""Canonical msgpack: one byte string per value, bounded decoding.

Canonical means: map keys are str or bytes, sorted by their encoded bytes; bytes as ``bin``, strings as
``str``, integers in the smallest msgpack form, floats always as float64, no extension types. Two encoders
that follow these rules produce the same bytes for the same value, so hashes and signatures are reproducible
across nodes.

Decoding is bounded before anything is allocated: the total size, and the length of every string, bin, array
and map (py-libp2p's msgio and STYLE §4: "bound before you decode").
"""

from __future__ import annotations

from collections.abc import Sequence
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
    return _unpack(data, max_size, None)


def _encoded_key(key: str | bytes) -> bytes:
    """The canonical encoding of a map key, cached: keys are mostly the same few field names."""
    cached = _KEY_BYTES.get(key)
    if cached is None:
        cached = msgpack.packb(key, use_bin_type=True)
        if len(_KEY_BYTES) < _KEY_CACHE:
            _KEY_BYTES[key] = cached
    return cached


_KEY_BYTES: dict[str | bytes, bytes] = {}
_KEY_CACHE = 4096


def _sorted_map(value: dict[Any, Any]) -> dict[Any, Any]:
    """``object_hook``: a map whose keys are not strictly increasing in encoded order is not canonical.

    msgpack builds the dict in C, in wire order; a duplicate key keeps its first position and shrinks the dict,
    which the byte comparison after decoding refuses (the re-packed map announces fewer entries).
    """
    keys = tuple(value)
    if keys not in _SORTED_KEYS and not _keys_sorted(keys):
        raise DecodeError("not canonical msgpack: map keys not strictly sorted")
    return value


def _keys_sorted(keys: tuple[Any, ...]) -> bool:
    """Whether ``keys`` are strictly increasing in encoded order. The verdict for a short key sequence is
    cached in ``_SORTED_KEYS`` (callers look there first): an envelope header or a message body has the same
    keys every time."""
    previous = b""
    for key in keys:
        encoded = _encoded_key(key)
        if encoded <= previous:
            return False
        previous = encoded
    if len(_SORTED_KEYS) < _KEY_CACHE and len(keys) <= _CACHED_KEYS_MAX:
        _SORTED_KEYS.add(keys)
    return True


def maps_sorted(value: Any) -> bool:
    """Whether every map in ``value`` (a decoded value) has its keys strictly increasing in encoded order: the
    key-order half of :func:`decode_canonical`, for a value from :func:`decode_repacked`. Iterative, so any
    depth msgpack decodes is walked without recursion."""
    if type(value) is dict and tuple(value) in _SORTED_KEYS:  # a message body with a known key sequence
        if _SCALARS.issuperset(map(type, value.values())):
            return True  # flat (a transaction body)
        kinds = set(map(type, value.values()))
        if kinds <= _SCALARS_OR_LIST and all(
            _SCALARS.issuperset(map(type, v)) for v in value.values() if type(v) is list
        ):
            return True  # scalars and lists of scalars (prices, demand vectors)
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            keys = tuple(item)
            if keys not in _SORTED_KEYS and not _keys_sorted(keys):
                return False
            values: Any = item.values()
        elif kind is list:
            values = item
        else:
            continue
        if not _SCALARS.issuperset(map(type, values)):
            pending.extend(v for v in values if type(v) is dict or type(v) is list)
    return True


_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
"""What msgpack decodes to besides dict and list (extension types are refused)."""
_SCALARS_OR_LIST = _SCALARS | {list}
_SORTED_KEYS: set[tuple[Any, ...]] = set()
_CACHED_KEYS_MAX = 32
"""Only key sequences this short are cached (a field list, not a data-keyed map such as balances)."""
_repack = msgpack.Packer(use_bin_type=True).pack
"""Plain msgpack re-encoding with one reused packer (``packb`` allocates a packer and its buffer per call). A
call runs in C under the GIL without calling back into Python (no ``default``), and the packer resets itself
after every call, failed or not, so sharing it is safe."""


def _unpack(data: bytes, max_size: int, object_hook: Any) -> Any:
    """Bounded ``msgpack.unpackb`` whose every failure is a :class:`DecodeError` (or :class:`OversizeError`)."""
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
            object_hook=object_hook,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=_MAX_CONTAINER,
            max_map_len=_MAX_CONTAINER,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise DecodeError(str(err) or type(err).__name__) from err
    except Exception as err:  # msgpack raises several undocumented types on garbage
        raise DecodeError(f"{type(err).__name__}: {err}") from err


def decode_canonical(data: bytes, *, max_size: int = MAX_MESSAGE) -> Any:
    """Decode and insist that ``data`` is the canonical encoding of what it holds.

    Used for signed payloads and blocks, whose hash must be unique for their content. Two checks, both in C
    but for one small Python call per map: while decoding, every map's keys must be strictly increasing in
    encoded order (an ``object_hook`` on the dict msgpack built); after decoding, plain msgpack re-encoding
    (which keeps the decoded key order and writes minimal integers, float64 and ``bin``/``str`` by type) must
    give ``data`` back byte for byte, which also refuses duplicate keys (the decoded dict holds fewer entries
    than the wire map announces). Together they equal ``encode(decode(data)) == data`` (the test suite holds
    the two equal on random values).

    Raises:
        DecodeError: well-formed but not canonical (unsorted or duplicate keys, non-minimal ints, float32, ...).
    """
    value = _unpack(data, max_size, _sorted_map)
    if _repack(value) != data:
        raise DecodeError("not canonical msgpack")
    return value


def decode_repacked(data: bytes, *, max_size: int = MAX_MESSAGE) -> Any:
    """:func:`decode_canonical` but for the order of map keys: ``data`` must be what plain msgpack re-encoding
    of its value gives (minimal integers and lengths, float64, no duplicate keys), but a map's keys may come in
    any order. ``decode_canonical(data)`` succeeds exactly when this does and :func:`maps_sorted` holds for the
    value; a caller that knows where the maps are checks them for less than an ``object_hook`` costs
    (protocol/envelope.py: the header's keys against their fixed order, then the body).

    Raises:
        OversizeError, DecodeError: as :func:`decode_canonical`, but for unsorted keys.
    """
    if type(data) is bytes and len(data) <= max_size:  # _unpack's checks passed: decode in this frame
        try:
            value = msgpack.unpackb(
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
        except Exception:  # the exact error, as _unpack words it
            value = _unpack(data, max_size, None)
    else:
        value = _unpack(data, max_size, None)
    if _repack(value) != data:
        raise DecodeError("not canonical msgpack")
    return value


def decode_repacked_many(items: Sequence[bytes], *, max_size: int = MAX_MESSAGE) -> list[Any]:
    """:func:`decode_repacked` of each of ``items`` (a block's transaction payloads), decoded in one msgpack
    call: for each item its value, or :data:`NOT_DECODED` where this cannot vouch for it (the caller then calls
    :func:`decode_repacked` on that item alone, which decodes it or names its error).

    The items are decoded as the elements of one array (their concatenation after an array header), then each
    value must re-pack to exactly its item. That equals decoding each alone: re-packing ``value[i]`` gives
    ``items[i]``, a complete msgpack value, so the decoder, reading the same bytes from the same offset, ended
    value ``i`` exactly where ``items[i]`` ends; every limit is the per-item one (a string or container inside an
    item is no longer than the item). Any failure of the joint decode (a malformed item, one nested at the
    decoder's depth limit) leaves every item to the per-item path.
    """
    values: list[Any] = [NOT_DECODED] * len(items)
    if not items or not {bytes}.issuperset(map(type, items)) or max(map(len, items)) > max_size:
        return values
    try:
        decoded = msgpack.unpackb(
            b"\xdd" + len(items).to_bytes(4, "big") + b"".join(items),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=max(_MAX_CONTAINER, len(items)),
            max_map_len=_MAX_CONTAINER,
            max_ext_len=0,
        )
    except Exception:  # any refusal: every item alone, with its own error
        return values
    for i, (value, item) in enumerate(zip(decoded, items, strict=True)):
        if _repack(value) == item:
            values[i] = value
    return values


NOT_DECODED: Any = object()
"""What :func:`decode_repacked_many` leaves for an item it could not vouch for."""
