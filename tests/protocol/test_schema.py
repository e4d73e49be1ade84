"""The schema DSL and the message registry (validate_basic)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.protocol.envelope import open_envelope, seal
from bazaar.protocol.errors import SchemaError
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.messages import Registry
from bazaar.protocol.schema import Bool, Bytes, Int, List, Map, Num, Optional, Schema, Str

PRICE = Schema(
    {
        "price": Num(low=0),
        "demand": List(Num(low=0), max_len=1000),
        "hash": Bytes(size=32),
        "note": Str(max_len=200),
        "who": Bytes(size=32),
        "k": Int(low=0, high=2**63 - 1),
        "flag": Bool(),
        "opt": Optional(Int(low=1)),
        "nested": Schema({"x": Num(low=-1, high=1), "tags": List(Str(max_len=8), max_len=3)}),
    }
)


def good() -> dict[str, object]:
    return {
        "price": 2.5,
        "demand": [0.0, 1, 3.5],
        "hash": b"\0" * 32,
        "note": "hello",
        "who": b"\1" * 32,
        "k": 5,
        "flag": False,
        "nested": {"x": 0.5, "tags": ["a"]},
    }


def check_fails(body: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError) as info:
        PRICE.check(body)
    assert message in str(info.value), str(info.value)
    assert info.value.reason == "schema"


def test_good_body_passes() -> None:
    PRICE.check(good())
    PRICE.check({**good(), "opt": None})
    PRICE.check({**good(), "opt": 3})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"demand": [1, 2, 3, -1]}, "body.demand[3]: below 0"),
        ({"price": -0.1}, "body.price: below 0"),
        ({"price": math.inf}, "body.price: not finite"),
        ({"price": math.nan}, "body.price: not finite"),
        ({"price": True}, "body.price: expected number, got bool"),
        ({"price": "1"}, "body.price: expected number, got str"),
        ({"k": 1.0}, "body.k: expected int, got float"),
        ({"k": True}, "body.k: expected int, got bool"),
        ({"k": -1}, "body.k: below 0"),
        ({"k": 2**63}, "body.k: above"),
        ({"hash": b"\0" * 31}, "body.hash: expected 32 bytes, got 31"),
        ({"hash": "00" * 32}, "body.hash: expected bytes, got str"),
        ({"note": "x" * 201}, "body.note: length 201 outside"),
        ({"flag": 0}, "body.flag: expected bool, got int"),
        ({"opt": 0}, "body.opt: below 1"),
        ({"demand": [0] * 1001}, "body.demand: length 1001 outside"),
        ({"demand": (1, 2)}, "body.demand: expected list, got tuple"),
        ({"nested": {"x": 2, "tags": []}}, "body.nested.x: above 1"),
        ({"nested": {"x": 0, "tags": ["a", "toolongtag"]}}, "body.nested.tags[1]: length 10"),
        ({"nested": {"x": 0}}, "body.nested.tags: missing"),
        ({"nested": None}, "body.nested: expected map, got nil"),
        ({"extra": 1}, "body: unknown field 'extra'"),
    ],
)
def test_bad_bodies_name_the_path(change: dict[str, object], message: str) -> None:
    check_fails({**good(), **change}, message)


def test_missing_required_field() -> None:
    body = good()
    del body["price"]
    check_fails(body, "body.price: missing")


def test_num_open_bounds() -> None:
    positive = Num(low=0, open_low=True, high=1, open_high=True)
    positive.check(0.5)
    for bad in (0, 0.0, 1):
        with pytest.raises(SchemaError):
            positive.check(bad)


def test_str_choices_and_min_len() -> None:
    side = Str(choices=("buy", "sell"))
    side.check("buy")
    with pytest.raises(SchemaError, match="not one of"):
        side.check("hold")
    with pytest.raises(SchemaError, match="length 0"):
        Str(min_len=1).check("")


def test_map() -> None:
    m = Map(Bytes(size=2), Num(low=0), max_len=2)
    m.check({b"ab": 1.0, b"cd": 0})
    with pytest.raises(SchemaError, match=r"body\[6566\]: below 0"):
        m.check({b"ef": -1})
    with pytest.raises(SchemaError, match="key"):
        m.check({b"abc": 1})
    with pytest.raises(SchemaError, match="3 entries"):
        m.check({b"aa": 1, b"bb": 1, b"cc": 1})


def test_schemas_compare_structurally() -> None:
    assert Schema({"a": Num(low=0)}) == Schema({"a": Num(low=0)})
    assert Schema({"a": Num(low=0)}) != Schema({"a": Num(low=1)})
    assert List(Int(), max_len=3) != List(Int(), max_len=4)
    with pytest.raises(TypeError):
        Schema({"a": int})  # type: ignore[dict-item]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*PRICE.fields, "junk"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=40)
        | st.lists(st.floats(), max_size=3),
        max_size=10,
    )
)
def test_arbitrary_bodies_raise_only_schema_error(body: dict[str, object]) -> None:
    try:
        PRICE.check(body)
    except SchemaError as err:
        assert str(err).startswith("schema: body")


# --- registry -----------------------------------------------------------------------------------


def test_registry_validate_basic() -> None:
    reg = Registry()
    reg.register("test/price", PRICE)
    key = KeyPair.from_label("schema")
    env = open_envelope(seal(key, "n", "test/price", good(), seq=0).wire, "n")
    reg.validate_basic(env)
    bad = open_envelope(seal(key, "n", "test/price", {**good(), "price": -1}, seq=1).wire, "n")
    with pytest.raises(SchemaError, match=r"body\.price"):
        reg.validate_basic(bad)
    unknown = open_envelope(seal(key, "n", "test/other", {}, seq=2).wire, "n")
    with pytest.raises(SchemaError) as info:
        reg.validate_basic(unknown)
    assert info.value.reason == "unknown-type"
    assert reg.registered_types() == ["test/price"]


def test_registry_duplicates() -> None:
    reg = Registry()
    first = reg.register("test/a", Schema({"x": Int()}))
    assert reg.register("test/a", Schema({"x": Int()})) is not None  # equal schema: idempotent
    assert reg.schema("test/a") == first
    with pytest.raises(ValueError, match="different schema"):
        reg.register("test/a", Schema({"x": Num()}))


@pytest.mark.parametrize("name", ["noslash", "Upper/case", "a/", "/a", "a b/c", "a/" + "x" * 70])
def test_registry_rejects_bad_type_names(name: str) -> None:
    with pytest.raises(ValueError):
        Registry().register(name, Schema({}))


def test_registry_requires_a_schema() -> None:
    with pytest.raises(TypeError):
        Registry().register("a/b", Num())  # type: ignore[arg-type]
