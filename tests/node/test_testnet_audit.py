"""``bazaar chain audit`` (docs/adr/0097): ai-bazaar's equilibrium lease re-derives with the market's own solver and
a forged price, demand or escrow lock does not; a contract market's chain re-verifies offline, node by node."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from bazaar.ledger.amounts import to_units
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.txs import make_tx
from bazaar.mechanisms.ai_bazaar import follower_equilibrium, solve_stackelberg
from bazaar.node.audit import audit_data_dir
from bazaar.node.config import PeerEntry
from bazaar.node.launcher import NetDir
from bazaar.node.markets.ai_bazaar.audit import audit_block
from bazaar.node.markets.ai_bazaar.common import escrow_id
from bazaar.node.markets.registry import get_spec
from bazaar.node.memnet import open_memory_network
from bazaar.node.scenario import load_scenario
from bazaar.protocol import KeyPair

NET = "bazaar-small"


def _block(price: float | None = None, demand_shift: float = 0.0, lock_shift: int = 0, mode: str = "equilibrium",
           ) -> tuple[Any, list[PeerEntry], Any]:
    scenario = load_scenario("ai-bazaar-small")
    cfg = get_spec("ai-bazaar").settings(scenario)
    keys = {name: KeyPair(bytes([i + 1]) * 32) for i, (name, _) in enumerate(scenario.nodes)}
    peers = [PeerEntry(name, role, keys[name].public, "") for name, role in scenario.nodes]
    params = cfg.param_sets["p3"]
    p = float(solve_stackelberg(params).price) if price is None else price
    demands = [float(f) for f in follower_equilibrium(params, p)]
    demands[0] += demand_shift
    consumers = [e for e in peers if e.role == "consumer"]
    lease = make_tx(keys["cpp"], NET, "record", {"nonce": 1, "kind": "lease", "data": {
        "price": p, "mode": mode, "params": "p3", "demands": {c.key.hex(): f for c, f in zip(consumers, demands,
                                                                                            strict=True)}}},
        market="ai-bazaar", round=4)
    locks = [make_tx(keys[c.name], NET, "escrow_lock", {
        "nonce": 1, "id": escrow_id(4, c.key), "payee": keys["cpp"].public,
        "amount": to_units(p * f) + (lock_shift if i == 1 else 0), "expires": 40, "ref": b"ai-bazaar/4"},
        market="ai-bazaar", round=4) for i, (c, f) in enumerate(zip(consumers, demands, strict=True))]
    return cfg, peers, SimpleNamespace(txs=[lease.wire] + [t.wire for t in locks], height=3)


def test_an_equilibrium_lease_re_derives() -> None:
    cfg, peers, block = _block()
    audit_block(cfg, peers, NET, None, block)  # type: ignore[arg-type]


@pytest.mark.parametrize("forgery", [{"price": 1.0}, {"demand_shift": 0.5}, {"lock_shift": 7}])
def test_a_forged_price_demand_or_lock_does_not(forgery: dict[str, Any]) -> None:
    cfg, peers, block = _block(**forgery)
    with pytest.raises(InvalidBlock) as err:
        audit_block(cfg, peers, NET, None, block)  # type: ignore[arg-type]
    assert err.value.reason == "market-contract" and "round 4" in str(err.value)


def test_a_learning_round_is_not_re_derived() -> None:
    cfg, peers, block = _block(price=1.0, mode="learning")
    audit_block(cfg, peers, NET, None, block)  # type: ignore[arg-type]


@pytest.mark.parametrize("market", ["hierarchical", "collab"])
async def test_the_audit_re_runs_a_contract_market_s_settlements_offline(market: str, tmp_path: Path) -> None:
    """After a round on the in-memory mesh, every node's data directory re-verifies offline: tokens conserved at
    every block, and the settlement contract (re-run on a read-only context) accepts every stored block."""
    spec = get_spec(market)
    async with open_memory_network(spec.small_scenario, tmp_path / "net") as nodes:
        leader = next(n for n in nodes.values() if n.engine is not None)
        with trio.fail_after(120):
            summary = await leader.engine.play()
        assert summary["final"]
        height = summary["height"]
        with trio.fail_after(30):
            for node in nodes.values():
                await node.chain.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=30)
    for name in nodes:
        report = audit_data_dir(NetDir(tmp_path / "net").node_dir(name))
        assert report["ok"] and report["conserved"] and report["covered"], report
        assert report["checked"] == report["blocks"] >= height and report["first_bad"] is None
