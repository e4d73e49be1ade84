"""Byzantine nodes on the in-memory network (issue 12; docs/byzantine.md): for every behaviour a node can be
started with, the honest nodes stay safe — one finalized head, tokens conserved, rounds still settle — and the
act leaves its evidence: a ``tx/evidence`` and the slashing it calls for, the next draw's block, a coded PoL
refusal, the FL filter's rejection, an oracle's recorded fault, the router's coded rejects."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.deploy import scenario_file
from bazaar.ledger.chain import Chain
from bazaar.ledger.consensus import lottery_next, pos_proposer
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import MemoryStore
from bazaar.ledger.txs import decode_tx
from bazaar.node.launcher import NetDir, prepare_network
from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until_async

from .harness import small_scenario

HIER = "hierarchical-small"


def _hierarchical(folder: Path, consensus: str) -> Path:
    src = scenario_file(HIER)
    (folder / "params").mkdir(parents=True, exist_ok=True)
    for f in (src.parent / "params").glob("hierarchical-*.toml"):
        (folder / "params" / f.name).write_text(f.read_text())
    path = folder / f"{HIER}-{consensus}.toml"
    path.write_text(src.read_text().replace('consensus = "lottery"', f'consensus = "{consensus}"'))
    return path


def _first_proposer(scenario: Path, root: Path) -> str:
    """The node drawn (attempt 0) to propose block 1 of a fresh network folder (keys and genesis made now)."""
    configs = prepare_network(load_scenario(scenario), NetDir(root), log_json=False)
    genesis = Genesis.from_dict(json.loads(NetDir(root).genesis.read_text()))
    state = Chain(MemoryStore(), genesis).state
    drawn = pos_proposer(state, 1, 0) if genesis.consensus == "pos" else lottery_next(state, 0)
    keys = {c.name: next(p.key for p in configs[n].peers if p.name == c.name)
            for c in configs.values() for n in configs if n != c.name}
    return next(name for name, key in keys.items() if key == drawn)


def _leader(nodes: dict[str, Node]) -> Node:
    return next(n for n in nodes.values() if n.engine is not None)


async def _rounds(nodes: dict[str, Node], n: int, *, timeout: float = 60,
                  final: bool = True) -> list[dict[str, Any]]:
    """Play ``n`` rounds; each must have settled and (unless ``final`` is False) been finalized in its deadlines."""
    out = []
    for _ in range(n):
        with trio.fail_after(timeout):
            out.append(await _leader(nodes).engine.play())  # type: ignore[union-attr]
        assert out[-1]["final"] or not final, out[-1]
    return out


async def _safe(honest: Iterable[Node], *, timeout: float = 30) -> None:
    """Every honest node has finalized a block, their finalized chains agree (the same block at the lowest finalized
    height among them, and so below it: blocks link by parent hash), and tokens are conserved in every one's state.
    Not the same finalized height: a last round whose votes split leaves some a height behind until the next."""
    nodes = list(honest)

    def agreed() -> bool:
        if not all(n.chain.finalized_height for n in nodes):
            return False
        low = min(n.chain.finalized_height for n in nodes)
        return len({n.chain.chain.block(low).hash for n in nodes}) == 1

    await wait_until_async(agreed, timeout=timeout, what="agreeing finalized chains on every honest node")
    for n in nodes:
        assert n.chain.state.conserved(), n.name


async def _until(predicate: Callable[[], bool], what: str, *, timeout: float = 30) -> None:
    """Wait (bounded) until ``predicate()`` holds (router counters change without a chain change: polled)."""
    await wait_until_async(predicate, timeout=timeout, what=what)


def _rejected(nodes: Iterable[Node], reason: str) -> int:
    return sum(n.router.rejected.get(reason, 0) for n in nodes)


# ------------------------------------------------------------------------------------------------ proposers
async def test_an_equivocating_proposer_leaves_evidence_and_is_slashed(tmp_path: Path) -> None:
    path, root = _hierarchical(tmp_path, "pos"), tmp_path / "net"
    cheat_name = _first_proposer(path, root)
    async with open_memory_network(path, root, byzantine={cheat_name: ["equivocate"]}) as nodes:
        cheat = nodes[cheat_name]
        honest = [n for n in nodes.values() if n is not cheat]
        stake = cheat.chain.state.stake(cheat.key.public)
        await _rounds(nodes, 1)
        await _until(lambda: all(n.chain.state.is_slashed(cheat.key.public) for n in honest), "the slashing")
        for n in honest:
            st = n.chain.state
            assert st.stake(cheat.key.public) < stake and st.supply.burned > 0
            assert cheat.key.public not in st.validator_set()
        assert any(e.proposer == cheat.key.public and e.height == 1 for n in honest for e in n.chain.chain.evidence)
        carried = [decode_tx(raw, cheat.network_id) for h in range(1, honest[0].chain.height + 1)
                   for raw in honest[0].chain.block(h).txs]
        assert [t for t in carried if t.type == "tx/evidence"], "no block carries the evidence"
        await _rounds(nodes, 1)  # the network goes on without the slashed proposer
        await _safe(honest)
        assert cheat.consensus.status()["proposed"] >= 1


async def test_an_equivocating_pol_winner_is_slashed(tmp_path: Path) -> None:
    every = {f"consumer-{i}": ["equivocate"] for i in range(3)}  # whoever wins the PoL race equivocates
    async with open_memory_network(small_scenario(tmp_path), tmp_path / "net", byzantine=every) as nodes:
        # PoL blocks come with rounds: the next one carries the evidence. Its winner equivocates as well, and when
        # its two blocks split the votes the round is not final within its deadline (3 of 12 runs at 88d3d4b):
        # what this test holds is the slashing and safety, waited for below, bounded.
        summary, _ = await _rounds(nodes, 2, timeout=30, final=False)
        cheat = nodes[summary["winner"]]
        honest = [n for n in nodes.values() if n is not cheat]
        await _until(lambda: all(n.chain.state.is_slashed(cheat.key.public) for n in honest), "the slashing")
        await _safe(honest)


async def test_a_withheld_block_is_proposed_by_the_next_draw(tmp_path: Path) -> None:
    path, root = _hierarchical(tmp_path, "lottery"), tmp_path / "net"
    cheat_name = _first_proposer(path, root)
    async with open_memory_network(path, root, byzantine={cheat_name: ["withhold-block"]}) as nodes:
        cheat = nodes[cheat_name]
        honest = [n for n in nodes.values() if n is not cheat]
        # A fallback draw under CI load can take the round past its own settle/final deadlines (summary 'final'
        # False): what this test holds is who proposed block 1, so it waits for that block, bounded, instead.
        await _rounds(nodes, 1, timeout=90, final=False)
        await _until(lambda: all(n.chain.finalized_height >= 1 for n in honest), "block 1 finalized", timeout=60)
        first = honest[0].chain.block(1)
        assert first is not None and first.header.proposer != cheat.key.public
        assert first.header.consensus.get("attempt", 0) >= 1
        assert sum(n.consensus.status()["fallbacks"] for n in honest) >= 1
        assert cheat.consensus.status()["proposed"] == 0
        await _safe(nodes.values())


# ------------------------------------------------------------------------------------------------ the wire
async def test_a_replay_flood_is_refused_and_rounds_still_settle(tmp_path: Path) -> None:
    path = _hierarchical(tmp_path, "pos")
    async with open_memory_network(path, tmp_path / "net", byzantine={"miner-1": ["replay-flood"]}) as nodes:
        flooder = nodes["miner-1"]
        honest = [n for n in nodes.values() if n is not flooder]
        await _rounds(nodes, 1)
        await _until(lambda: _rejected(honest, "replay") >= 100, "replay refusals")
        await _rounds(nodes, 1)
        await _safe(honest)
        assert len(honest[0].chain.mempool) < 64  # re-gossiped transactions are refused, not kept


async def test_malformed_and_oversize_frames_are_refused_with_coded_reasons(tmp_path: Path) -> None:
    path = _hierarchical(tmp_path, "pos")
    bad = ["malformed-frames", "oversize-frames"]
    async with open_memory_network(path, tmp_path / "net", byzantine={"mesp-1": bad}) as nodes:
        sender = nodes["mesp-1"]
        honest = [n for n in nodes.values() if n is not sender]
        await _until(lambda: all(_rejected(honest, r) for r in ("malformed", "oversize", "schema")), "coded rejects")
        await _rounds(nodes, 2)
        await _safe(honest)
        assert _rejected(honest, "handler-error") == 0


# ------------------------------------------------------------------------------------------------ the markets
async def test_a_false_pol_claim_fails_verification_with_a_coded_reason(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bazaar.pol")
    async with open_memory_network(small_scenario(tmp_path), tmp_path / "net",
                                   byzantine={"consumer-0": ["false-claim"]}) as nodes:
        cheat = nodes["consumer-0"]
        honest = [n for n in nodes.values() if n is not cheat]
        (summary,) = await _rounds(nodes, 1, timeout=30)
        assert summary["winner"] != "consumer-0"
        await _safe(honest)
        for n in honest:
            assert (summary["round"], cheat.key.public) in n.app.pol.cheaters  # type: ignore[union-attr]
    refusals = [r for r in caplog.records if r.getMessage() == "pol.false_claim"]
    assert refusals and {getattr(r, "fields", {}).get("reason") for r in refusals} == {"pol-loss"}
    assert all(getattr(r, "fields", {}).get("claimed") == 0.0 for r in refusals)


async def test_a_poisoned_update_is_rejected_by_the_filter_on_the_ledger(tmp_path: Path) -> None:
    async with open_memory_network("tbcim-small", tmp_path / "net", byzantine={"ed-0": ["poison-update"]}) as nodes:
        rounds = await _rounds(nodes, 3)  # the auction and epochs 0, 1, 2 (the attack starts at epoch 2)
        rejected = rounds[-1]["outcome"]["rejected_updates"]
        assert {r["ed"] for r in rejected} == {"ed-0"}, rejected
        await _safe(n for n in nodes.values() if n.name != "ed-0")


async def test_a_lying_oracle_is_outvoted_and_its_fault_recorded(tmp_path: Path) -> None:
    text = scenario_file("cloudchain-small").read_text().replace("probes = 3", "probes = 1")
    path = tmp_path / "cloudchain-test.toml"
    path.write_text(text)
    async with open_memory_network(path, tmp_path / "net", byzantine={"oracle-2": ["lying-oracle"]}) as nodes:
        (summary,) = await _rounds(nodes, 1, timeout=90)
        quorum = summary["outcome"]["quorum"]
        assert quorum and all(q["dissent"] == ["oracle-2"] for q in quorum.values()), quorum
        leader = _leader(nodes)
        liar = nodes["oracle-2"].key.public
        assert leader.app.book.faults[liar] == len(quorum)  # type: ignore[union-attr]
        assert "provider-0" in summary["outcome"]["payments"]  # the honest majority's verdict pays
        await _safe(n for n in nodes.values() if n.name != "oracle-2")
