"""A MESP takes a miner's bid that arrives before the CCSP's gossiped call (the miner heard the call a hop before
the MESP): the bid waits up to ``EARLY_BID_S`` for the call instead of being refused — a refused bid left the MESP
waiting out its whole bid deadline for a miner that had already bid elsewhere."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from bazaar.node.markets.context import Refuse
from bazaar.node.markets.hierarchical import mesp as mesp_mod
from bazaar.node.markets.hierarchical.mesp import EARLY_BID_S, Mesp, _Round
from bazaar.node.notify import Changes
from bazaar.node.rounds.collector import Collector

MINER = b"m" * 32


def _mesp(monkeypatch: pytest.MonkeyPatch) -> Any:
    m = Mesp.__new__(Mesp)  # the handler alone: no node behind it
    m.current, m.called = None, Changes()
    m.ctx = SimpleNamespace(network_id="n", chain=SimpleNamespace(state=SimpleNamespace(balance=lambda k: 10**12)))
    m.roster, m.cfg = None, SimpleNamespace(max_bid=10.0)
    monkeypatch.setattr(Mesp, "index", property(lambda self: 0))
    monkeypatch.setattr(mesp_mod, "parse_bid", lambda *a: SimpleNamespace(reach=[0], bid=1.0))
    return m


def _call(m: Any, number: int) -> None:
    m.current = _Round(number, {}, Collector([MINER], 60.0))
    m.called.notify()


async def test_a_bid_that_overtakes_the_call_waits_for_it(monkeypatch: pytest.MonkeyPatch,
                                                         autojump_clock: trio.testing.MockClock) -> None:
    m = _mesp(monkeypatch)
    _call(m, 4)  # the previous round
    answers: list[dict[str, Any]] = []
    env = SimpleNamespace(round=5, sender=MINER, wire=b"")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _record(m, env, answers))
        await trio.sleep(EARLY_BID_S / 2)
        assert answers == []  # still waiting for round 5's call
        _call(m, 5)
    assert answers == [{"accepted": True, "reason": ""}]
    assert MINER in m.current.bids.answers


async def test_a_bid_for_a_round_never_called_is_refused_after_the_wait(
        monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock) -> None:
    m = _mesp(monkeypatch)
    start = trio.current_time()
    with pytest.raises(Refuse, match="no round open"):
        await m.on_bid(SimpleNamespace(round=5, sender=MINER, wire=b""))
    assert trio.current_time() - start == pytest.approx(EARLY_BID_S)
    _call(m, 6)
    with pytest.raises(Refuse, match="no round open"):  # a bid for a past round is refused at once
        await m.on_bid(SimpleNamespace(round=5, sender=MINER, wire=b""))
    assert trio.current_time() - start == pytest.approx(EARLY_BID_S)


async def _record(m: Any, env: Any, answers: list[dict[str, Any]]) -> None:
    answers.append(await m.on_bid(env))
