"""What a block import remembers instead of recomputing (ADR 0169): the header's encoding (its hash) and the
proposer signature Block.decode checked; neither may outlive a change of what it covers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bazaar.ledger.apply import apply
from bazaar.ledger.block import Block, Header, check_header_signature
from bazaar.ledger.errors import InvalidBlock
from bazaar.protocol import codec
from bazaar.protocol.keys import verify

from .helpers import NID, Net


def test_header_encoding_is_kept_and_equals_a_fresh_one() -> None:
    net = Net()
    block, _, _ = net.build([net.tx("alice", "transfer", to=net.acct("bob"), amount=5)])
    header = block.header
    assert header.encode() is header.encode()
    assert header.encode() == codec.encode(header.to_map())
    bumped = replace(header, reward=header.reward + 1)  # a new header: encoded afresh
    assert bumped.encode() == codec.encode(bumped.to_map()) != header.encode()
    assert bumped.hash != header.hash
    decoded = Block.decode(block.encode(), NID).header
    assert decoded == header and decoded.hash == header.hash
    assert Header(**{**header.to_map()}).hash == header.hash


def test_a_decoded_block_skips_the_second_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net()
    block, _, _ = net.build([net.tx("alice", "transfer", to=net.acct("bob"), amount=5)])
    decoded = Block.decode(block.encode(), NID)
    calls: list[bytes] = []

    def counting(public: bytes, message: bytes, signature: bytes) -> None:
        calls.append(public)
        verify(public, message, signature)

    monkeypatch.setattr("bazaar.ledger.block.verify", counting)
    apply(net.state, decoded, net.genesis)
    assert decoded.header.proposer not in calls  # Block.decode verified it; transactions do not go through here
    apply(net.state, Block(decoded.header, decoded.txs, decoded.signature), net.genesis)  # a new object: checked
    assert calls == [decoded.header.proposer]


def test_a_remembered_signature_holds_for_its_network_only() -> None:
    net = Net()
    block, _, _ = net.build([])
    decoded = Block.decode(block.encode(), NID)
    decoded.check_signature(NID)
    with pytest.raises(InvalidBlock, match="bad-signature"):
        decoded.check_signature("another-net")
    with pytest.raises(InvalidBlock, match="bad-signature"):
        check_header_signature("another-net", decoded.header, decoded.signature)
    forged = Block(decoded.header, decoded.txs, bytes(64))  # a block built in memory, never decoded
    with pytest.raises(InvalidBlock, match="bad-signature"):
        apply(net.state, forged, net.genesis)
    with pytest.raises(InvalidBlock, match="bad-signature"):
        apply(net.state, replace(decoded, signature=bytes(64)), net.genesis)  # replace forgets what was checked


def test_block_encoding_is_kept_and_a_decoded_block_keeps_its_bytes() -> None:
    net = Net()
    block, _, _ = net.build([net.tx("alice", "transfer", to=net.acct("bob"), amount=5)])
    wire = block.encode()
    assert block.encode() is wire
    assert wire == codec.encode({"h": block.header.to_map(), "t": list(block.txs), "s": block.signature})
    decoded = Block.decode(wire, NID)
    assert decoded.encode() is wire  # the bytes it was read from: canonical, so equal to a fresh encoding
    assert Block.decode(bytearray(wire), NID).encode() == wire  # not bytes: encoded afresh on demand
    other = replace(decoded, signature=bytes(64))  # replace forgets the kept bytes
    assert other.encode() != wire
    assert other.encode() == codec.encode({"h": other.header.to_map(), "t": list(other.txs), "s": bytes(64)})
