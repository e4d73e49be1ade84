"""Signed envelope: sign/verify, domain separation, tampering, header checks, golden vectors."""

from __future__ import annotations

import contextlib
import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.protocol import codec
from bazaar.protocol.envelope import DOMAIN, VERSION, open_envelope, seal, sign_bytes
from bazaar.protocol.errors import DecodeError, OversizeError, ProtocolError, SchemaError, SignatureError
from bazaar.protocol.keys import KeyPair, verify

from .vectors import CASES, NETWORK_ID, VECTOR_FILE, build, from_json, seal_case

NET = "bazaar-test"
ALICE = KeyPair.from_label("alice")
MALLORY = KeyPair.from_label("mallory")


def make(**kw: object) -> bytes:
    args: dict[str, object] = {"seq": 1, "market": "ai-bazaar", "round": 2, "ts": 1_000}
    args.update(kw)
    return seal(ALICE, NET, "ai-bazaar/price", {"price": 1.5}, **args).wire  # type: ignore[arg-type]


def resign(header: dict[str, object], key: KeyPair = ALICE, *, raw_payload: bytes | None = None) -> bytes:
    payload = codec.encode(header) if raw_payload is None else raw_payload
    sig = key.sign(sign_bytes(NET, payload))
    return codec.encode({"k": key.public, "p": payload, "s": sig})


def header(**kw: object) -> dict[str, object]:
    h: dict[str, object] = {
        "v": VERSION, "type": "a/b", "market": "", "round": 0, "sender": ALICE.public, "seq": 0, "ts": 0,
        "body": {},
    }
    h.update(kw)
    return h


def test_round_trip() -> None:
    env = open_envelope(make(), NET)
    assert (env.type, env.market, env.round, env.seq, env.ts) == ("ai-bazaar/price", "ai-bazaar", 2, 1, 1_000)
    assert env.sender == ALICE.public and env.body == {"price": 1.5}
    assert env.wire == make()
    assert len(env.digest) == 32


def test_wrong_network_id_fails_the_signature() -> None:
    with pytest.raises(SignatureError):
        open_envelope(make(), "bazaar-other")


def test_signature_covers_domain_and_network() -> None:
    env = open_envelope(make(), NET)
    verify(ALICE.public, DOMAIN + NET.encode() + b"\x00" + env.payload, env.signature)
    with pytest.raises(SignatureError):
        verify(ALICE.public, env.payload, env.signature)


@pytest.mark.parametrize("bad", ["", "x" * 65, "a\x00b"])
def test_bad_network_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        sign_bytes(bad, b"")


def test_tampered_payload_fails() -> None:
    outer = codec.decode(make())
    payload = bytearray(outer["p"])
    payload[-1] ^= 1
    outer["p"] = bytes(payload)
    with pytest.raises(SignatureError):
        open_envelope(codec.encode(outer), NET)


def test_swapped_sender_key_fails() -> None:
    outer = codec.decode(make())
    outer["k"] = MALLORY.public
    with pytest.raises(SignatureError):
        open_envelope(codec.encode(outer), NET)


def test_payload_sender_must_be_the_signer() -> None:
    with pytest.raises(SchemaError, match="sender"):
        open_envelope(resign(header(sender=MALLORY.public), ALICE), NET)


def test_non_canonical_payload_is_rejected_even_if_signed() -> None:
    canonical = codec.encode(header())
    # same map, keys in the reverse order: a second byte string for one message
    import msgpack

    h = header()
    reordered = msgpack.packb(dict(reversed(list(h.items()))), use_bin_type=True)
    assert reordered != canonical
    with pytest.raises(DecodeError, match="canonical"):
        open_envelope(resign(h, raw_payload=reordered), NET)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"v": 2}, "version"),
        ({"v": True}, "type bool"),
        ({"type": ""}, "length"),
        ({"type": "x" * 65}, "length"),
        ({"round": -1}, "non-negative"),
        ({"seq": 1.0}, "type float"),
        ({"body": [1]}, "type list"),
        ({"extra": 1}, "unknown envelope fields"),
    ],
)
def test_header_checks(kw: dict[str, object], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        open_envelope(resign(header(**kw)), NET)


def test_missing_header_field() -> None:
    h = header()
    del h["ts"]
    with pytest.raises(SchemaError, match="lacks 'ts'"):
        open_envelope(resign(h), NET)


@pytest.mark.parametrize(
    "outer",
    [
        [1, 2, 3],
        {"k": b"", "p": b"", "s": b""},
        {"k": ALICE.public, "p": "str", "s": b"\0" * 64},
        {"k": ALICE.public, "p": b"", "s": b"\0" * 64, "x": 1},
    ],
)
def test_malformed_outer(outer: object) -> None:
    with pytest.raises(DecodeError):
        open_envelope(codec.encode(outer), NET)


def test_oversize_envelope() -> None:
    with pytest.raises(OversizeError):
        open_envelope(make(), NET, max_size=50)


def test_seal_refuses_bad_headers() -> None:
    with pytest.raises(ValueError):
        seal(ALICE, NET, "", {}, seq=0)
    with pytest.raises(ValueError):
        seal(ALICE, NET, "a/b", {}, seq=-1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_only_raises_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        open_envelope(data, NET)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_bit_flips_never_verify_or_crash(pos: int, byte: int) -> None:
    wire = bytearray(make())
    i = pos % len(wire)
    if wire[i] == byte:
        return
    wire[i] = byte
    with pytest.raises(ProtocolError):
        open_envelope(bytes(wire), NET)


# --- golden vectors -------------------------------------------------------------------------------


def test_golden_vectors_file_matches_the_generator() -> None:
    assert json.loads(VECTOR_FILE.read_text()) == json.loads(json.dumps(build(), ensure_ascii=False))


@pytest.mark.parametrize("index", range(len(CASES)))
def test_golden_vectors_open_and_reseal(index: int) -> None:
    stored = json.loads(VECTOR_FILE.read_text())
    assert stored["network_id"] == NETWORK_ID and stored["version"] == VERSION
    vec = stored["vectors"][index]
    wire = bytes.fromhex(vec["wire"])
    env = open_envelope(wire, NETWORK_ID)
    assert env.sender.hex() == vec["public_key"]
    assert env.body == from_json(vec["body"])
    assert {k: getattr(env, k) for k in vec["header"]} == vec["header"]
    assert env.payload.hex() == vec["payload"] and env.signature.hex() == vec["signature"]
    assert env.digest.hex() == vec["digest"]
    assert sign_bytes(NETWORK_ID, env.payload).hex() == vec["sign_bytes"]
    assert KeyPair(bytes.fromhex(vec["seed"])).public == env.sender
    assert seal_case(CASES[index]).wire == wire


# --- the import path's shortcuts (docs/adr/0161) --------------------------------------------------


def test_header_wire_order_is_the_canonical_key_order() -> None:
    """``_payload`` unpacks ``header.values()`` in this order; it must be the order decode_canonical leaves."""
    from bazaar.protocol.envelope import HEADER_FIELDS, HEADER_WIRE_ORDER

    assert tuple(codec.decode_canonical(codec.encode(header()))) == HEADER_WIRE_ORDER
    assert sorted(HEADER_WIRE_ORDER) == sorted(HEADER_FIELDS)


def _wire_variants() -> st.SearchStrategy[bytes]:
    def sealed(size: int) -> bytes:
        return seal(ALICE, NET, "a/b", {"d": b"x" * size}, seq=1).wire

    sizes = st.sampled_from([0, 1, 180, 250, 300, 65_600]) | st.integers(min_value=0, max_value=600)
    base = sizes.map(sealed)

    def mutate(data: bytes, pos: int, byte: int, cut: int, tail: bytes) -> bytes:
        out = bytearray(data)
        out[pos % len(out)] = byte
        return bytes(out[: len(out) - cut % 3]) + tail

    mutated = st.builds(mutate, base, st.integers(0, 1_000), st.integers(0, 255), st.integers(0, 5),
                        st.sampled_from([b"", b"\x00", b"\xc0"]))
    prefixed = st.binary(max_size=200).map(lambda b: b"\x83\xa1k\xc4\x20" + b)
    return base | mutated | prefixed


@settings(max_examples=400, deadline=None)
@given(_wire_variants())
def test_outer_read_by_position_equals_the_decoder(data: bytes) -> None:
    """The positional read of a sealed envelope's outer map returns what msgpack decoding returns, or declines."""
    from bazaar.protocol.envelope import _outer, _outer_decoded, _sliced

    try:
        expected: object = _outer_decoded(data, 1 << 20)
    except ProtocolError as err:
        expected = type(err)
    if _sliced(data) is not None:
        assert _sliced(data) == expected
    try:
        got: object = _outer(data, 1 << 20)
    except ProtocolError as err:
        got = type(err)
    assert got == expected


@pytest.mark.parametrize("malformed", [True, False])  # a malformed payload sends every item down the one-by-one path
def test_open_envelopes_equals_open_envelope_item_by_item(malformed: bool) -> None:
    from bazaar.protocol.envelope import open_envelopes

    good = [make(seq=i) for i in range(4)]
    bad_sig = bytearray(good[1])
    bad_sig[-1] ^= 1
    items = [good[0], bytes(bad_sig), b"\xc1", resign(header(v=2)), good[2],
             resign(header(), raw_payload=msgpack_reordered(header())), make(seq=9) + b"x",
             resign(header(), raw_payload=codec.encode(header())[:-3])]
    if not malformed:
        items = items[:2] + items[3:-1]
    results = open_envelopes(items, NET)
    assert len(results) == len(items)
    for item, result in zip(items, results, strict=True):
        try:
            expected: object = open_envelope(item, NET)
        except ProtocolError as err:
            assert type(result) is type(err) and str(result) == str(err)
        else:
            assert result == expected
    # an item marked verified skips only its signature check
    skipped = open_envelopes([bytes(bad_sig)], NET, verified=[True])[0]
    assert not isinstance(skipped, ProtocolError) and skipped.seq == 1


def msgpack_reordered(h: dict[str, object]) -> bytes:
    return msgpack.packb(dict(reversed(list(h.items()))), use_bin_type=True)  # type: ignore[no-any-return]


def _payload_variants() -> st.SearchStrategy[bytes]:
    odd = {
        "v": [2, True, 1.0],
        "type": ["", "x" * 65, 3],
        "market": ["m", "x" * 65, b"m"],
        "round": [5, -1, 2**64 - 1],
        "sender": [MALLORY.public, "k", b""],
        "seq": [7, -3, 1.5],
        "ts": [1_700_000_000_000, -1],
        "body": [{"b": 1, "a": 2}, {"a": [{"y": 1, "x": 2}]}, {"a": {"x": [1.5]}}, {"a": [1, {"b": 2}]}, [1], None],
        "extra": [1],
    }
    edits = st.lists(
        st.sampled_from(sorted(odd)).flatmap(
            lambda k: st.sampled_from([*odd[k], _DROP]).map(lambda v: (k, v))
        ),
        max_size=2,
    )

    def build(changes: list[tuple[str, object]]) -> dict[str, object]:
        h = header(body={"a": 1, "b": [2.5, b"x"]})
        for key, value in changes:
            if value is _DROP:
                h.pop(key, None)
            else:
                h[key] = value
        return h

    headers = edits.map(build)
    return (headers.map(codec.encode) | headers.map(lambda h: msgpack.packb(h, use_bin_type=True))
            | headers.map(msgpack_reordered) | st.binary(max_size=60))


_DROP = object()


@settings(max_examples=500, deadline=None)
@given(_payload_variants())
def test_payload_fast_path_equals_the_checked_path(payload: bytes) -> None:
    """The hook-free header check returns the checked path's envelope, or the same error."""
    from bazaar.protocol.envelope import _payload, _payload_checked

    sig = b"\x00" * 64
    try:
        expected: object = _payload_checked(ALICE.public, payload, sig, 1 << 20)
    except ProtocolError as err:
        expected = (type(err), str(err))
    try:
        got: object = _payload(ALICE.public, payload, sig, 1 << 20)
    except ProtocolError as err:
        got = (type(err), str(err))
    assert got == expected
