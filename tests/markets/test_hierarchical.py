"""The hierarchical auction on in-memory nodes: the network's settled outcome equals the offline solver's, the
escrows move exactly the published payments, bad messages are refused with coded reasons."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import make_tx
from bazaar.node.markets.context import RequestFailed
from bazaar.node.markets.hierarchical.clearing import escrow_id
from bazaar.node.markets.registry import get_spec
from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.node.scenario import load_scenario
from bazaar.node.solve import hierarchical as solve_file
from bazaar.protocol.markets import hierarchical as msg
from bazaar.protocol.memory import MemoryNetwork

SMALL = "hierarchical-small"
MULTI = "hierarchical-multi"
KEYS = ("assignment", "bundles", "miner_payments", "mesp_payments", "welfare", "optimum_welfare", "utilisation")


def _offline(scenario: str) -> dict:
    """What `bazaar solve hierarchical --params P.toml --json` prints for the scenario's parameter file."""
    cfg = get_spec("hierarchical").settings(load_scenario(scenario))
    return solve_file.solve_params(solve_file.load(str(cfg.params_path)))


def _same(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))  # type: ignore[arg-type]
    return a == b


async def _play(nodes: dict[str, Node]) -> dict:
    leader = next(n for n in nodes.values() if n.engine is not None)
    with trio.fail_after(60):
        return await leader.engine.play()


@pytest.mark.parametrize("scenario", [SMALL, MULTI, "hierarchical"])
async def test_the_network_settles_what_the_offline_solver_computes(scenario: str, tmp_path: Path) -> None:
    offline = _offline(scenario)
    async with open_memory_network(scenario, tmp_path / "net") as nodes:
        start = {n.name: n.chain.state.balance(n.key.public) for n in nodes.values()}
        summary = await _play(nodes)
        assert summary["final"] and summary["left_out"] == [], summary
        outcome = summary["outcome"]
        for key in KEYS:
            assert _same(outcome[key], offline[key]), (key, outcome[key], offline[key])
        if "lottery_weights" in offline:
            assert outcome["lottery_weights"] == offline["lottery_weights"]
        if scenario == MULTI:
            assert outcome["duality_gap"] is not None and outcome["ccsp_of"] == offline["ccsp_of"]
        # the chain moved exactly the published payments (block rewards aside)
        state = nodes["mesp-0"].chain.state
        height = summary["height"]
        minted = {}
        for h in range(1, height + 1):
            block = nodes["mesp-0"].chain.block(h)
            minted[block.header.proposer] = minted.get(block.header.proposer, 0) + block.header.reward
        scen = nodes["mesp-0"].scenario
        miners, mesps = scen.names("miner"), scen.names("mesp")
        ccsps = scen.names("ccsp")
        for i, name in enumerate(miners):
            key = nodes[name].key.public
            paid = to_units(offline["miner_payments"][i]) if offline["assignment"][i] is not None else 0
            assert state.balance(key) == start[name] - paid + minted.get(key, 0)
            assert escrow_id(summary["round"], key) not in state.escrows
        for j, name in enumerate(mesps):
            key = nodes[name].key.public
            got = sum(to_units(offline["miner_payments"][i]) for i, a in enumerate(offline["assignment"]) if a == j)
            assert state.balance(key) == start[name] + got - to_units(offline["mesp_payments"][j]) + minted.get(key, 0)
        revenue = sum(to_units(p) for p in offline["mesp_payments"])
        assert sum(state.balance(nodes[c].key.public) - start[c] - minted.get(nodes[c].key.public, 0)
                   for c in ccsps) == revenue
        assert state.conserved()


async def test_the_next_block_is_drawn_from_the_allocation(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        first = await _play(nodes)
        weights = nodes["ccsp"].chain.state.proposer_weights()
        served = {nodes[f"miner-{i}"].key.public for i, a in enumerate(first["outcome"]["assignment"])
                  if a is not None}
        assert set(weights) == served
        second = await _play(nodes)
        assert second["final"]
        block = nodes["ccsp"].chain.block(second["height"])
        assert block.header.proposer in served
        assert block.header.consensus["rule"] == "lottery"


async def test_a_ccsp_that_dies_mid_round_moves_no_token(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=2)
    async with open_memory_network(SMALL, tmp_path / "net", network=net) as nodes:
        ccsp = nodes["ccsp"]
        others = [n for n in nodes.values() if n is not ccsp]
        before = {n.name: n.chain.state.balance(n.key.public) for n in others}
        died = trio.Event()

        async def die(*_: object) -> None:  # the CCSP cleared and published, then vanished before settling
            for node in others:
                net.disconnect(ccsp.key.public, node.key.public)
            died.set()
            await trio.sleep_forever()

        ccsp.app._settle = die  # type: ignore[attr-defined]
        with trio.move_on_after(30):
            await ccsp.engine.play()
        assert died.is_set()
        for node in others:  # the MESPs saw the upper result; nothing reached the chain, nothing is locked
            state = node.chain.state
            assert state.height == 0 and not state.escrows
            assert state.balance(node.key.public) == before[node.name]
        assert any(n.router.accepted for n in others if n.role == "mesp")


async def test_bad_bids_and_forged_results_are_refused_with_reasons(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        await _play(nodes)
        mesp, miner, ccsp = nodes["mesp-0"], nodes["miner-0"], nodes["ccsp"]
        # a MESP posing as the CCSP: its upper result is refused by role (a direct request to the other MESP)
        other = nodes["mesp-1"]
        with pytest.raises(RequestFailed) as forged:
            await mesp.ask(other.key.public, msg.MSG_UPPER, {"offers": [], "bundles": [], "ccsp_of": [],
                                                              "payments": [], "upper_welfare": 0.0,
                                                              "upper_bound": None}, round=99, timeout=5)
        assert forged.value.reason == "refused" and "not-authorised" in forged.value.detail
        assert other.router.rejected["not-authorised"] >= 1
        # a bid for a round that is not open
        lock = miner.chain.sign_tx("escrow_lock", {"id": escrow_id(99, miner.key.public), "payee": ccsp.key.public,
                                                   "amount": 1, "expires": 99, "arbiter": ccsp.key.public,
                                                   "ref": b"hierarchical/99"}, round=99)
        with pytest.raises(RequestFailed) as err:
            await miner.ask(mesp.key.public, msg.MSG_BID, {"demand": 1.0, "bid": 1e9, "block_size": 1.0,
                                                           "reach": [0], "escrow": lock.wire}, round=99, timeout=5)
        assert err.value.reason == "refused" and "wrong-round" in err.value.detail
        miner.chain.forget_nonce(lock.body["nonce"])
        second = await _play(nodes)
        assert second["final"]


async def test_a_miner_that_empties_its_account_after_bidding_does_not_stall_the_settlement(tmp_path: Path) -> None:
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        ccsp, cheat, other = nodes["ccsp"], nodes["miner-0"], nodes["miner-1"]
        original = ccsp.app._settle  # type: ignore[attr-defined]

        async def settle_after_the_double_spend(round_no, offers, *rest):  # type: ignore[no-untyped-def]
            lock_nonce = cheat.chain.state.nonce(cheat.key.public) + 1  # its bid's lock, not on chain yet
            cheat.chain.forget_nonce(lock_nonce)  # sign a transfer with the lock's nonce: only one can land
            drain = cheat.chain.sign_tx("transfer", {"to": other.key.public,
                                                     "amount": cheat.chain.state.balance(cheat.key.public)})
            assert drain.body["nonce"] == lock_nonce
            await cheat.chain.submit([drain.wire])
            await ccsp.chain.wait_for(lambda: ccsp.chain.state.nonce(cheat.key.public) >= lock_nonce, timeout=20)
            return await original(round_no, offers, *rest)

        ccsp.app._settle = settle_after_the_double_spend  # type: ignore[attr-defined]
        with trio.fail_after(90):
            summary = await ccsp.engine.play()
        assert summary["final"], summary
        state = ccsp.chain.state
        assert state.balance(cheat.key.public) == 0 and not state.escrows and state.conserved()
        served = [i for i, a in enumerate(summary["outcome"]["assignment"]) if a is not None and i != 0]
        assert served  # everyone else's escrows settled in the same block


async def test_a_miner_learns_it_was_left_out_from_the_settlement_block(tmp_path: Path) -> None:
    """The upper result goes to the MESPs only (docs/adr/0177): a miner whose lock is not in the block that
    carries its round's settlement record, and whose bid is in none of the record's offers, gives the nonce back."""
    async with open_memory_network(SMALL, tmp_path / "net") as nodes:
        ccsp, miner = nodes["ccsp"], nodes["miner-0"]
        role = miner.app
        nid = miner.network_id

        def record(round_no: int) -> bytes:
            return make_tx(ccsp.key, nid, "record", {"kind": msg.SETTLEMENT_RECORD, "nonce": 1,
                                                     "data": {"offers": [], "lowers": []}},
                           market=msg.MARKET, round=round_no).wire

        def pending(round_no: int) -> tuple[int, bytes]:
            lock = miner.chain.sign_tx("escrow_lock", {
                "id": escrow_id(round_no, miner.key.public), "payee": ccsp.key.public, "amount": 1,
                "expires": 99, "arbiter": ccsp.key.public, "ref": f"hierarchical/{round_no}".encode()},
                round=round_no)
            role.pending[round_no] = (int(lock.body["nonce"]), b"our signed bid", lock.wire)
            return int(lock.body["nonce"]), lock.wire

        nonce, _ = pending(7)
        role.left_out(SimpleNamespace(txs=[record(8)]))  # another round's settlement: still waiting
        assert 7 in role.pending
        role.left_out(SimpleNamespace(txs=[record(7)]))  # ours, without our lock or bid: left out
        assert 7 not in role.pending
        assert miner.chain.next_nonce() == nonce  # the nonce is handed out again
        miner.chain.forget_nonce(nonce)

        nonce, lock = pending(9)
        role.left_out(SimpleNamespace(txs=[lock, record(9)]))  # our lock is settled: in the book
        assert 9 not in role.pending
        assert miner.chain.next_nonce() == nonce + 1
