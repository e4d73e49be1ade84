"""A drawn proposer's block that is only late does not get a competitor, and a node that took the losing block
of a split height takes the certified branch (docs/adr/0196)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bazaar.ledger.block import Block
from bazaar.node.chain.sync import ChainSync
from bazaar.node.memnet import open_memory_network

from .fake_chain import FakeBlock, FakeChain, FakeHeader, branch


async def test_a_fallback_proposer_takes_the_late_block_of_the_drawn_one_instead_of_forking(tmp_path: Path) -> None:
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        ccsp = nodes["ccsp"]
        driver: Any = ccsp.consensus
        for node in nodes.values():  # a 1 s fallback wait keeps a take-over at attempt 3 within the round
            node.consensus.fallback_s = 1.0  # type: ignore[union-attr]
            node.chain.sealed_gossip_delay_s = 0.5  # the others get a round's batch this late (docs/adr/0176)
        by_key = {n.key.public: n for n in nodes.values()}
        with trio.fail_after(120):
            while driver.drawn(0) == ccsp.key.public:  # the CCSP sends the round's batch: had it drawn, nobody
                done = int((await ccsp.engine.play())["height"])  # type: ignore[union-attr]  # else would want a block
                for node in nodes.values():
                    await node.chain.changes.wait_for(lambda n=node, d=done: n.chain.finalized_height >= d,
                                                      timeout=60)
        start = ccsp.chain.height + 1
        before = sum(n.consensus.proposed for n in nodes.values())  # type: ignore[union-attr]
        first = by_key[driver.drawn(0)]  # the proposer drawn for the round's first block
        attempt = next(k for k in range(1, 50) if driver.drawn(k) != first.key.public)
        fallback = by_key[driver.drawn(attempt)]  # the first other node drawn to take over
        announce, ask = first.chain.blockpush.announce, fallback.consensus._ask_drawn  # type: ignore[union-attr]
        asked = trio.Event()

        async def asking(height: int, attempt: int) -> bool:
            asked.set()
            return bool(await ask(height, attempt))

        async def late(block: Block) -> None:  # its block reaches the others only once the fallback's turn came
            async def send() -> None:
                with trio.move_on_after(60):
                    await asked.wait()
                await announce(block)

            first.spawn("test.late", send)

        fallback.consensus._ask_drawn = asking  # type: ignore[union-attr]
        first.chain.blockpush.announce = late  # type: ignore[method-assign]
        await fallback.chain.changes.wait_for(lambda: fallback.chain.synced, timeout=30)  # its first sweep is done
        fallback.chain.sync.sweep = _no_sweep  # type: ignore[method-assign]  # it could fetch it by asking only
        with trio.fail_after(120):
            summary = await ccsp.engine.play()  # type: ignore[union-attr]  # final or not by its deadline
        del fallback.chain.sync.sweep
        height = int(summary["height"])
        for node in nodes.values():
            await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=60)
        block = ccsp.chain.chain.block(start)
        assert block is not None and block.header.proposer == first.key.public
        assert block.header.consensus.get("attempt", 0) == 0  # the drawn proposer's block, no fallback's
        status = fallback.consensus.status()  # type: ignore[union-attr]
        # when its turn came before the block reached it some other way (a certificate of the validators that
        # had it), it asked and fetched the block instead of proposing one
        assert status["found_late"] == status["asked_earlier"], status
        heights = range(start, height + 1)
        assert sum(n.consensus.proposed for n in nodes.values()) - before == len(heights)  # type: ignore[union-attr]
        assert len({n.chain.chain.block(height).hash for n in nodes.values()}) == 1


async def _no_sweep(*args: Any, **kwargs: Any) -> None:
    return None


# -- the certified branch on a pulled batch: the fork choice's rule alone, on a chain that records what it did --


@dataclass
class _Finality:
    chain: FakeChain
    good: set[bytes]
    rewinds: int = 0

    def cert_ok(self, cert: Any, block: FakeBlock) -> bool:
        return cert == "cert" and block.hash in self.good

    def drop_from(self, height: int, certified: bytes, **fields: object) -> int:
        self.rewinds += 1
        return self.chain.rewind(height - 1)


@dataclass
class _Svc:
    chain: FakeChain
    finality: _Finality


def _sync(ours: list[FakeBlock], finalized: int, good: set[bytes]) -> tuple[ChainSync, FakeChain]:
    chain = FakeChain(list(ours), finalized)
    sync = ChainSync.__new__(ChainSync)
    sync.svc = _Svc(chain, _Finality(chain, good))  # type: ignore[assignment]
    return sync, chain


def test_a_node_on_the_losing_block_of_an_uncertified_height_takes_the_certified_branch() -> None:
    common = branch(b"c", bytes(32), 1, 1)
    ours = common + branch(b"o", common[-1].hash, 2, 2)  # we took the losing block at height 2
    theirs = branch(b"t", common[-1].hash, 2, 4)  # height 2 never got a certificate; height 3 did
    batch: list[Any] = theirs
    sync, chain = _sync(ours, 1, {theirs[1].hash})
    sync._take_certified_branch(batch, [None, "cert", None], b"peer")
    assert chain.rewound_to == [1] and chain.height == 1  # the batch now imports from height 2
    assert sync.svc.finality.rewinds == 1

    for certs, good, finalized in (([None, None, None], set(), 1),  # nothing certified: first-seen stands
                                   ([None, "cert", None], set(), 1),  # a certificate that does not verify
                                   ([None, "cert", None], {theirs[1].hash}, 2)):  # the fork is at a final height
        sync, chain = _sync(ours, finalized, good)
        sync._take_certified_branch(batch, certs, b"peer")
        assert chain.rewound_to == [] and chain.height == 2
    broken: list[Any] = [theirs[0], FakeBlock(3, b"x" * 32, FakeHeader(b"y" * 32))]  # not a descendant of the fork
    sync, chain = _sync(ours, 1, {broken[1].hash})
    sync._take_certified_branch(broken, [None, "cert"], b"peer")
    assert chain.rewound_to == []


def test_the_fallback_wait_backs_off_after_false_alarms_and_eases_back() -> None:
    """docs/adr/0197: a block of an attempt we had declared silent doubles the wait (up to MAX_BACKOFF); a height
    that needed no fallback eases it back by a quarter, never below block_s; a really silent proposer (the block
    comes from a later attempt) changes nothing."""
    from types import SimpleNamespace

    from bazaar.node.consensus.draw import MAX_BACKOFF, DrawDriver

    chain = SimpleNamespace(clock=SimpleNamespace(now_ms=lambda: 0))
    driver = DrawDriver(SimpleNamespace(chain=chain), "pos", fallback_s=2.0)  # type: ignore[arg-type]

    def block(height: int, attempt: int) -> Any:
        return SimpleNamespace(header=SimpleNamespace(height=height, consensus={"attempt": attempt}, timestamp_ms=0))

    driver._declared[5] = 0  # we declared attempt 0 silent at height 5 ...
    driver._observe(block(5, 0))  # ... and its block came after all: a false alarm
    assert driver.backoff == 2.0
    driver._declared[6] = 0
    driver._observe(block(6, 1))  # attempt 0 really was silent: attempt 1's block
    assert driver.backoff == 2.0
    for h in range(7, 12):
        driver._declared[h] = 1
        driver._observe(block(h, 1))
    assert driver.backoff == MAX_BACKOFF
    driver._declared[20] = 0  # a declaration at a height the chain passed without our seeing its block
    driver._observe(block(21, 0))
    assert 20 not in driver._declared and driver.backoff == MAX_BACKOFF * 0.75
    for h in range(22, 60):
        driver._observe(block(h, 0))
    assert driver.backoff == 1.0
    assert driver.status()["backoff"] == 1.0


# -- a proposer that fell behind asks the next attempts' proposers first (docs/adr/0204) --


class _Sync:
    def __init__(self, chain: Any, blocks: dict[bytes, Any], pulled: bool) -> None:
        self.chain, self.blocks, self.pulled, self.asked = chain, blocks, pulled, []

    def caught_up(self) -> bool:
        return self.pulled

    async def fetch_next(self, peer: bytes, *, timeout: float) -> bool:
        self.asked.append(peer)
        block = self.blocks.get(peer)
        if block is None:
            return False
        self.chain.height += 1
        self.chain.chain.stored[self.chain.height] = block
        return True


def _driver(*, pulled: bool = False, late_s: float = 0.0, holder: int | None = None) -> tuple[Any, _Sync]:
    """A driver at height 9 whose attempt ``k`` draws the key ``bytes([k])`` (ours is attempt 0's), with the
    proposer drawn at attempt ``holder`` holding a block of that attempt for height 10."""
    from types import SimpleNamespace

    from bazaar.node.consensus.draw import DrawDriver

    stored: dict[int, Any] = {}
    chain = SimpleNamespace(height=9, chain=SimpleNamespace(stored=stored, block=stored.get))
    blocks = {} if holder is None else {
        bytes([holder]): SimpleNamespace(header=SimpleNamespace(height=10, consensus={"attempt": holder}))}
    sync = _Sync(chain, blocks, pulled)
    chain.sync = sync
    chain.clock = SimpleNamespace(now_ms=lambda: 100_000)
    node = SimpleNamespace(chain=chain, key=SimpleNamespace(public=bytes([0])))
    driver = DrawDriver(node, "pos", fallback_s=2.0)  # type: ignore[arg-type]
    driver.drawn = lambda attempt: bytes([attempt])  # type: ignore[method-assign]
    head = SimpleNamespace(height=9, consensus={}, timestamp_ms=100_000 - int(late_s * 1000))
    driver._observe(SimpleNamespace(header=head))  # type: ignore[arg-type]
    return driver, sync


async def test_a_proposer_that_kept_up_asks_nobody_before_attempt_0() -> None:
    driver, sync = _driver(late_s=0.5, holder=1)
    assert not driver.behind()
    assert not await driver._ask_drawn(10, 0)
    assert sync.asked == [] and driver.status()["asked_ahead"] == 0


async def test_a_proposer_that_caught_up_takes_the_next_attempts_block_instead_of_forking() -> None:
    """At 50 processes a node that had fallen 17 s behind proposed as attempt 0 a block the others had replaced
    by attempt 1's 2.5 s earlier: the height's votes split in half and no certificate ever formed."""
    for kwargs in ({"pulled": True}, {"late_s": 1.5}):  # a sync pull brought our head; or it came 1.5 s late
        driver, sync = _driver(holder=1, **kwargs)  # type: ignore[arg-type]
        assert driver.behind()
        with trio.fail_after(5):
            assert await driver._ask_drawn(10, 0)
        assert bytes([1]) in sync.asked and set(sync.asked) <= {bytes([1]), bytes([2])}
        status = driver.status()
        assert (status["asked_ahead"], status["found_ahead"], status["found_late"]) == (1, 1, 0)
    driver, sync = _driver(pulled=True)  # nobody took over: we propose after asking
    with trio.fail_after(5):
        assert not await driver._ask_drawn(10, 0)
    assert sorted(sync.asked) == [bytes([1]), bytes([2])]


async def test_a_fallback_that_fell_behind_asks_both_ways() -> None:
    driver, sync = _driver(pulled=True, holder=4)
    with trio.fail_after(5):
        assert await driver._ask_drawn(10, 2)
    assert set(sync.asked) <= {bytes([1]), bytes([3]), bytes([4])} and bytes([4]) in sync.asked
    status = driver.status()
    assert (status["asked_earlier"], status["asked_ahead"], status["found_ahead"]) == (1, 1, 1)


def test_fallback_attempts_count_from_the_parents_finality_up_to_a_cap() -> None:
    """docs/adr/0205: nodes that got the parent block 8 s apart count the same attempt numbers once the parent's
    certificate reached them; a parent never certified on its own delays the count by the cap at most."""
    from bazaar.node.consensus.draw import attempt_anchor

    assert attempt_anchor(10.0, 10.0, 10.0, 8.0) == 10.0  # the parent was final when we wanted the block: as before
    early, late = attempt_anchor(10.0, 25.4, 26.0, 16.0), attempt_anchor(17.4, 25.6, 26.0, 16.0)
    assert early is not None and late is not None and abs(early - late) < 0.5  # were 7.4 s apart
    assert attempt_anchor(10.0, None, 17.9, 8.0) is None  # attempt 0's turn while the parent is not final
    assert attempt_anchor(10.0, None, 18.0, 8.0) == 18.0  # the cap: a split parent does not stall the height
    assert attempt_anchor(10.0, 30.0, 31.0, 8.0) == 18.0  # final after the cap: the count that began stays
    for now in (12.0, 17.0, 19.0, 25.0, 31.0):  # the anchor never moves once the count has begun
        first = attempt_anchor(10.0, None, now, 8.0)
        assert first is None or first == attempt_anchor(10.0, now + 1.0, now + 1.0, 8.0)


# -- a block ready only after our turn passed: ask the later attempts' proposers first (docs/adr/0209) --


def _preparing_driver(holder: int | None, prepare_s: float) -> tuple[Any, _Sync, list[int]]:
    """:func:`_driver`'s driver (kept up), whose chain takes ``prepare_s`` to prepare a candidate and records the
    attempts it was asked to propose at."""
    from types import SimpleNamespace

    driver, sync = _driver(holder=holder)
    chain = driver.node.chain
    proposed: list[int] = []
    chain.synced = True
    chain.dry_run = lambda proof, timestamp_ms: SimpleNamespace(txs=[b"tx"])

    async def prepare_candidate(candidate: Any) -> None:
        await trio.sleep(prepare_s)

    chain.prepare_candidate = prepare_candidate
    driver.proof = lambda attempt: {"attempt": attempt}
    return driver, sync, proposed


async def _propose_at_0(driver: Any, proposed: list[int], monkeypatch: Any) -> None:
    """Run ``_propose`` for attempt 0 at height 10 with a 2 s fallback wait counted from now."""
    from types import SimpleNamespace

    from bazaar.node.consensus import draw

    async def propose(node: Any, proof: dict[str, Any], *, timestamp_ms: int) -> Any:
        proposed.append(proof["attempt"])
        return SimpleNamespace(height=10, txs=[b"tx"])

    monkeypatch.setattr(draw.byzantine, "propose", propose)
    start = trio.current_time()
    with trio.fail_after(60):
        await driver._propose(10, 0, lambda: (start, int((trio.current_time() - start) // 2.0)))


async def test_a_block_prepared_past_its_turn_gives_way_to_a_later_attempts_block(autojump_clock: Any,
                                                                                  monkeypatch: Any) -> None:
    """At 50 processes the attempt-0 proposer had its block ready 11 s after its turn began and proposed it 0.5 s
    after attempt 3's: the votes split 5 to 6 of 11 and no certificate ever formed."""
    driver, sync, proposed = _preparing_driver(holder=3, prepare_s=7.0)  # attempt 3's turn runs when it is ready
    await _propose_at_0(driver, proposed, monkeypatch)
    assert proposed == [] and driver.node.chain.height == 10  # took attempt 3's block
    assert bytes([3]) in sync.asked and set(sync.asked) <= {bytes([k]) for k in range(1, 6)}
    status = driver.status()
    assert (status["past_turn"], status["asked_ahead"], status["found_ahead"]) == (1, 1, 1)


async def test_a_block_prepared_past_its_turn_is_proposed_when_no_later_attempt_has_one(autojump_clock: Any,
                                                                                        monkeypatch: Any) -> None:
    driver, sync, proposed = _preparing_driver(holder=None, prepare_s=7.0)
    await _propose_at_0(driver, proposed, monkeypatch)
    assert proposed == [0] and sorted(sync.asked) == [bytes([k]) for k in range(1, 6)]
    assert driver.status()["past_turn"] == 1


async def test_a_block_prepared_within_its_turn_asks_nobody(autojump_clock: Any, monkeypatch: Any) -> None:
    driver, sync, proposed = _preparing_driver(holder=1, prepare_s=0.5)
    await _propose_at_0(driver, proposed, monkeypatch)
    assert proposed == [0] and sync.asked == [] and driver.status()["past_turn"] == 0
