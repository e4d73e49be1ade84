"""CI-sized soak (issue #12): rounds of every networked market on the in-memory network with token conservation
checked at every block of every node, independently of the ledger's own counters (tests/fuzz/soak.py), the
stores re-verified from genesis at the end and one head everywhere. The full run is
``python benchmarks/soak.py`` (1,000 rounds per market, or as many as its time budget allows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bazaar.node.markets.registry import market_names

from .soak import soak

ROUNDS = 4
SCALE = 0.5


@pytest.mark.parametrize("market", market_names())
async def test_rounds_conserve_tokens_at_every_block_of_every_node(market: str, tmp_path: Path) -> None:
    report = await soak(market, ROUNDS, tmp_path / "net", scale=SCALE)
    assert report.failures == [], report.failures[:5]
    assert report.rounds == ROUNDS and report.settled == ROUNDS, report.to_json()
    assert report.checks >= report.blocks > 0
    assert report.reverified and report.one_head


def test_the_conservation_watch_catches_a_reward_the_supply_does_not_show() -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from tests.ledger.helpers import Net

    from .soak import Conservation

    net = Net("pos")
    block, _ = net.commit([])
    chain = SimpleNamespace(state=net.state, block=lambda h: block)
    genesis_total = sum(net.genesis.balances.values()) + sum(net.genesis.stakes.values())
    honest = Conservation(SimpleNamespace(chain=chain, name="n"), genesis_total)  # type: ignore[arg-type]
    honest(block)
    assert honest.failures == [] and honest.checks == 1
    inflated = replace(block, header=replace(block.header, reward=block.header.reward + 1))
    watch = Conservation(SimpleNamespace(chain=chain, name="n"), genesis_total)  # type: ignore[arg-type]
    watch(inflated)
    assert watch.failures and "supply.minted" in watch.failures[0]
