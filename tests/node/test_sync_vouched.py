"""A certificate vouches for the blocks it descends from: a pulled height that never got its own certificate is
imported without the market's re-execution check when a later certified block of the batch descends from it
(docs/adr/0199). A node paused through a PoL round lacks that round's submissions, so the check refused the
block, and every later pull stopped at that height."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from bazaar.node.chain.sync import ChainSync

from .fake_chain import FakeBlock, FakeChain, FakeHeader, branch


@dataclass
class _Finality:
    chain: FakeChain
    good: set[bytes]
    checked: list[int] = field(default_factory=list)

    def cert_ok(self, cert: Any, block: FakeBlock) -> bool:
        self.checked.append(block.height)
        return cert == "cert" and block.hash in self.good

    def finalize(self, cert: Any) -> None:
        return None


@dataclass
class _Svc:
    chain: FakeChain
    finality: _Finality
    recheck: set[int]  # heights the market's re-execution check refuses (what the node missed)
    imports: list[tuple[int, bool]] = field(default_factory=list)

    async def import_block(self, block: FakeBlock, *, announce: bool, certified: bool = False) -> bool:
        self.imports.append((block.height, certified))
        if not certified and block.height in self.recheck:
            return False
        self.chain.blocks.append(block)
        return True


def _sync(ours: list[FakeBlock], good: set[bytes], recheck: frozenset[int] = frozenset()) -> tuple[ChainSync, _Svc]:
    chain = FakeChain(list(ours))
    svc = _Svc(chain, _Finality(chain, good), set(recheck))
    sync = ChainSync.__new__(ChainSync)
    sync.svc = svc  # type: ignore[assignment]
    return sync, svc


def test_a_certificate_vouches_for_the_ancestors_of_its_block_in_the_batch() -> None:
    ours = branch(b"a", bytes(32), 1, 2)
    batch: list[Any] = branch(b"a", ours[-1].hash, 3, 7)  # heights 3..7; 5 is certified, 7 is not
    sync, svc = _sync(ours, {batch[2].hash})
    assert sync._vouched(batch, [None, None, "cert", None, "cert"]) == {0, 1, 2}  # 7's cert does not verify
    assert svc.finality.checked == [7, 5]  # from the top down; 3 and 4 need no check of their own
    sync, _ = _sync(ours, {batch[2].hash, batch[4].hash})
    assert sync._vouched(batch, [None, None, "cert", None, "cert"]) == {0, 1, 2, 3, 4}
    sync, _ = _sync(ours, set())
    assert sync._vouched(batch, [None] * 5) == set()  # nothing certified: every block is checked as before

    broken: list[Any] = [batch[0], FakeBlock(4, b"x" * 32, FakeHeader(b"y" * 32))]  # 4 does not descend from 3
    sync, _ = _sync(ours, {broken[1].hash})
    assert sync._vouched(broken, [None, "cert"]) == {1}
    sync, svc = _sync(ours + batch[:3], {batch[2].hash})  # a certificate of a height we hold vouches for nothing
    assert sync._vouched(batch, [None, None, "cert", None, None]) == set() and svc.finality.checked == []


def test_a_node_that_missed_a_round_pulls_past_the_height_it_cannot_recheck() -> None:
    ours = branch(b"a", bytes(32), 1, 2)
    batch: list[Any] = branch(b"a", ours[-1].hash, 3, 4)  # 3 never got a certificate (the round left us out)
    certs: list[Any] = [None, "cert"]
    for good, imported in (({batch[1].hash}, [(3, True), (4, True)]),  # 4's certificate vouches for 3
                           (set(), [(3, False)])):  # without it 3 is rechecked, refused, and the pull stops
        sync, svc = _sync(ours, good, recheck=frozenset({3}))

        async def ask(peer: bytes, start: int, limit: int, timeout: float) -> Any:
            blocks = [b for b in batch if b.height > start]
            return blocks, certs[len(certs) - len(blocks):], 4

        sync._ask = ask  # type: ignore[method-assign]
        count, reached = trio.run(sync._pull, b"peer", 5.0)
        assert svc.imports == imported and reached
        assert count == sum(1 for h, _ in imported if h in {b.height for b in svc.chain.blocks})


def test_an_answer_with_fewer_certificate_slots_than_blocks_is_refused_as_malformed() -> None:
    """One certificate (or empty bytes) per block: the rule reads them by index (a fuzzed answer with none made it
    index past the end)."""
    from types import SimpleNamespace

    import pytest

    from bazaar.protocol import ProtocolError, codec

    async def request(peer: bytes, proto: str, body: bytes, *, timeout: float) -> bytes:
        return codec.encode({"blocks": [b"x"], "certs": [], "finalized": 1})

    sync = ChainSync.__new__(ChainSync)
    sync.requests = 0
    sync.svc = SimpleNamespace(transport=SimpleNamespace(request=request), network_id="n")  # type: ignore[assignment]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bazaar.node.chain.sync.Block.decode", lambda raw, network_id: raw)
        with pytest.raises(ProtocolError) as caught:
            trio.run(sync._ask, b"peer", 0, 64, 5.0)
    assert caught.value.reason == "malformed"
