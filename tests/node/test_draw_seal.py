"""A sealed transaction batch lets a ``pos``/``lottery`` proposer seal its block at once; without a seal it waits
for a quiet mempool as before (docs/adr/0155). Times are trio's virtual clock (``autojump_clock``), not the
machine's: the test reads what the driver waited for, not how fast the machine is."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from bazaar.node.consensus.draw import MAX_BATCH_WAIT_S, QUIET_S, DrawDriver
from bazaar.node.notify import Changes
from bazaar.protocol import ProtocolError
from bazaar.protocol.chainmsg import MSG_TXS
from bazaar.protocol.messages import REGISTRY


class _Pool(list):  # type: ignore[type-arg]
    """A mempool whose every transaction applies."""

    def has_applicable(self, state: object) -> bool:
        return bool(self)


class _Chain:
    """The parts of a ChainService the quiet wait reads."""

    def __init__(self) -> None:
        self.mempool = _Pool()
        self.state = None
        self.sealed = False
        self.complete: bool | None = None
        self.changes = Changes()

    def batch_complete(self) -> bool | None:
        return self.complete

    def arrive(self, n: int = 1, *, seal: bool = False) -> None:
        self.mempool += [b"tx"] * n
        self.sealed = self.sealed or seal
        self.changes.notify()


def _driver(chain: _Chain) -> DrawDriver:
    node: Any = SimpleNamespace(chain=chain)
    return DrawDriver(node, "lottery", fallback_s=2.0)


async def test_a_sealed_batch_is_sealed_at_once(autojump_clock: trio.testing.MockClock) -> None:
    chain = _Chain()
    chain.arrive(3, seal=True)
    t0 = trio.current_time()
    await _driver(chain)._quiet()
    assert trio.current_time() == t0


async def test_a_seal_ends_the_wait_when_it_arrives(autojump_clock: trio.testing.MockClock) -> None:
    chain = _Chain()
    chain.arrive(1)
    t0 = trio.current_time()
    done: list[float] = []

    async def wait() -> None:
        await _driver(chain)._quiet()
        done.append(trio.current_time() - t0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        for _ in range(3):  # a trickle faster than the quiet window keeps the proposer waiting
            await trio.sleep(QUIET_S / 2)
            chain.arrive(1)
        await trio.sleep(QUIET_S / 4)
        chain.arrive(2, seal=True)
    assert done == [pytest.approx(3 * QUIET_S / 2 + QUIET_S / 4)]


async def test_without_a_seal_the_proposer_waits_for_quiet(autojump_clock: trio.testing.MockClock) -> None:
    chain = _Chain()
    chain.arrive(1)
    t0 = trio.current_time()
    await _driver(chain)._quiet()
    assert trio.current_time() - t0 == pytest.approx(QUIET_S)

    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:  # an endless trickle: bounded by MAX_BATCH_WAIT_S
        async def trickle() -> None:
            while True:
                await trio.sleep(QUIET_S / 2)
                chain.arrive(1)

        nursery.start_soon(trickle)
        await _driver(chain)._quiet()
        waited = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    assert waited == pytest.approx(MAX_BATCH_WAIT_S)


async def test_a_block_for_the_contract_work_alone_does_not_wait(autojump_clock: trio.testing.MockClock) -> None:
    chain = _Chain()  # nothing in the mempool applies: the block is wanted for the market contract's own work
    t0 = trio.current_time()
    await _driver(chain)._quiet()
    assert trio.current_time() == t0


async def test_a_batch_a_market_calls_complete_ends_the_wait_when_it_completes(
        autojump_clock: trio.testing.MockClock) -> None:
    """docs/adr/0185: the market says the mempool holds its whole batch (``@batch_complete``)."""
    chain = _Chain()
    chain.arrive(1)
    driver = _driver(chain)
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        async def last_arrives() -> None:
            await trio.sleep(QUIET_S / 3)
            chain.complete = True
            chain.arrive(1)

        nursery.start_soon(last_arrives)
        await driver._quiet()
    assert trio.current_time() - t0 == pytest.approx(QUIET_S / 3)  # not a quiet window after it
    assert driver.status()["batch_seals"] == 1


async def test_a_batch_a_market_knows_incomplete_holds_the_block_past_a_quiet_mempool(
        autojump_clock: trio.testing.MockClock) -> None:
    """docs/adr/0185: half a round's tasks are not sealed because the rest is one quiet window late; a batch that
    never completes holds the block at most ``MAX_BATCH_WAIT_S``."""
    chain = _Chain()
    chain.complete = False
    chain.arrive(1)
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        async def rest_arrives_late() -> None:
            await trio.sleep(QUIET_S * 3)
            chain.complete = True
            chain.arrive(1)

        nursery.start_soon(rest_arrives_late)
        await _driver(chain)._quiet()
    assert trio.current_time() - t0 == pytest.approx(QUIET_S * 3)
    never = _Chain()
    never.complete = False
    never.arrive(1)
    t0 = trio.current_time()
    await _driver(never)._quiet()
    assert trio.current_time() - t0 == pytest.approx(MAX_BATCH_WAIT_S)


def test_the_seal_field_is_optional_and_boolean() -> None:
    schema = REGISTRY.schema(MSG_TXS)
    schema.check({"txs": [b"x"]})
    schema.check({"txs": [b"x"], "seal": True})
    with pytest.raises(ProtocolError):
        schema.check({"txs": [b"x"], "seal": 1})


def test_round_latency_is_the_last_nodes_own_finality_stamp() -> None:
    from bazaar.node.rounds.driver import latency_final_ms

    assert latency_final_ms(1000.0, [1_000_250, 1_000_400, 1_000_300]) == 400.0
    assert latency_final_ms(1000.0, [1_000_250, None]) is None  # a node that synced the height has no stamp
    assert latency_final_ms(1000.0, []) is None


def test_the_markets_answers_fold_into_one() -> None:
    from bazaar.node.chain.hooks import batch_verdict

    assert batch_verdict([]) is None and batch_verdict([None, None]) is None
    assert batch_verdict([None, False]) is False
    assert batch_verdict([False, True, None]) is True  # one complete batch seals the block
