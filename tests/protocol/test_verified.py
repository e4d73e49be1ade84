"""Embedded envelopes checked once per process (protocol/verified.py, docs/adr/0177): a repeat skips the
signature only for the identical bytes under the same network id; a failure is never remembered."""

from __future__ import annotations

from unittest import mock

import pytest

import bazaar.protocol.markets.hierarchical  # noqa: F401  (registers the message types used below)
from bazaar.protocol import codec
from bazaar.protocol.envelope import seal
from bazaar.protocol.errors import SchemaError, SignatureError
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.verified import forget_checked, open_checked

NET = "bazaar-test"
ALICE = KeyPair.from_label("alice")
LOWER = {"served": {}, "surplus": 0.0}


def _verify_calls(wire: bytes, network_id: str) -> int:
    with mock.patch("bazaar.protocol.envelope.verify") as verify:
        open_checked(wire, network_id)
        return verify.call_count


def test_the_same_bytes_under_the_same_network_are_verified_once() -> None:
    forget_checked()
    wire = seal(ALICE, NET, "hierarchical/lower", LOWER, seq=1, market="hierarchical", round=3).wire
    first = open_checked(wire, NET)
    assert _verify_calls(wire, NET) == 0
    again = open_checked(wire, NET)
    assert again == first and again is not first and again.body is not first.body  # a fresh envelope each time


def test_other_bytes_or_another_network_are_checked_in_full() -> None:
    forget_checked()
    wire = seal(ALICE, NET, "hierarchical/lower", LOWER, seq=1, market="hierarchical", round=3).wire
    open_checked(wire, NET)
    with pytest.raises(SignatureError):
        open_checked(wire, "bazaar-other")  # signed for NET only: not a cache hit elsewhere
    outer = codec.decode(wire)
    tampered = codec.encode({**outer, "s": bytes(64)})
    for _ in range(2):  # a failure is not remembered
        with pytest.raises(SignatureError):
            open_checked(tampered, NET)


def test_a_body_that_fails_its_schema_is_not_remembered() -> None:
    forget_checked()
    wire = seal(ALICE, NET, "hierarchical/lower", {"served": {}}, seq=1, market="hierarchical", round=3).wire
    for _ in range(2):
        with pytest.raises(SchemaError):
            open_checked(wire, NET)
