"""The pos and lottery drivers over in-memory nodes: blocks come from the drawn proposer, and when the drawn
proposer is silent the next draw takes over after ``block_s``."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from bazaar.deploy import scenario_file
from bazaar.ledger.consensus import lottery_next
from bazaar.node.memnet import open_memory_network
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.transport import RejectRequest

SMALL = "hierarchical-small"


def _scenario(folder: Path, consensus: str) -> Path:
    src = scenario_file(SMALL)
    (folder / "params").mkdir(parents=True, exist_ok=True)
    for f in (src.parent / "params").glob("hierarchical-*.toml"):
        (folder / "params" / f.name).write_text(f.read_text())
    path = folder / f"{SMALL}-{consensus}.toml"
    path.write_text(src.read_text().replace('consensus = "lottery"', f'consensus = "{consensus}"'))
    return path


async def test_pos_rounds_settle_with_drawn_proposers(tmp_path: Path) -> None:
    async with open_memory_network(_scenario(tmp_path, "pos"), tmp_path / "net") as nodes:
        ccsp = nodes["ccsp"]
        for _ in range(2):
            served = {n.chain: n.chain.direct_txs_served for n in nodes.values()}
            with trio.fail_after(60):
                summary = await ccsp.engine.play()
            assert summary["final"], summary
            block = ccsp.chain.block(summary["height"])
            assert block.header.consensus["rule"] == "pos"
            assert ccsp.role_of(block.header.proposer) in ("ccsp", "mesp")  # pos draws from the validators' stake
            if block.header.proposer != ccsp.key.public:  # the sealed settlement went to the drawn proposer directly
                drawn = nodes[ccsp.name_of(block.header.proposer)].chain  # (its gossiped copy may have come first)
                await drawn.wait_for(lambda c=drawn, n=served[drawn]: c.direct_txs_served > n, 30)
            for node in nodes.values():  # each node stamps when the round's block became final here (ADR 0156)
                await node.chain.wait_for(lambda n=node, h=summary["height"]: n.chain.finalized_height >= h, 30)
                assert str(summary["height"]) in node.chain.finality.final_at_status()
        with pytest.raises(RejectRequest):  # a direct batch is checked like a gossiped one
            await nodes["mesp-0"].chain.serve_txs(ccsp.key.public, b"\x81\xa3txs\x90")


async def test_a_silent_lottery_winner_is_replaced_by_the_next_draw(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=9)
    async with open_memory_network(_scenario(tmp_path, "lottery"), tmp_path / "net", network=net) as nodes:
        ccsp = nodes["ccsp"]
        with trio.fail_after(60):
            first = await ccsp.engine.play()
        assert first["final"]
        silent_key = lottery_next(ccsp.chain.state, 0)  # who the next block's first draw names
        silent = next(n for n in nodes.values() if n.key.public == silent_key)
        for node in nodes.values():
            if node is not silent:
                net.disconnect(node.key.public, silent.key.public)
        live = [n for n in nodes.values() if n is not silent]
        with trio.fail_after(90):
            second = await ccsp.engine.play()
        assert second["final"], second
        block = ccsp.chain.block(second["height"])
        assert block.header.proposer != silent_key
        assert block.header.consensus.get("attempt", 0) >= 1
        assert sum(n.consensus.status()["fallbacks"] for n in live) >= 1
