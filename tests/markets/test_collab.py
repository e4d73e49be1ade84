"""Market collab on the in-memory network: the regulation and the trades equal `bazaar solve collab-pricing`
on the same file, a device that vanishes mid-regulation is dropped and the market settles, a pool that dies
moves no token, and every bad order or price is refused with a coded reason."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.ledger.amounts import to_units
from bazaar.node.markets.context import RequestFailed
from bazaar.node.markets.registry import get_spec
from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.node.scenario import load_scenario
from bazaar.node.solve import collab as solve_file
from bazaar.protocol.markets import collab as msg
from bazaar.protocol.memory import MemoryNetwork

KEYS = ("iterations", "cleared", "prices", "price_path", "trades", "payoff", "gap")


def _offline(scenario: str) -> dict[str, Any]:
    return solve_file.solve_pricing(get_spec("collab").settings(load_scenario(scenario)).params)


async def _play(nodes: dict[str, Node]) -> dict[str, Any]:
    leader = nodes["pool"]
    assert leader.engine is not None
    with trio.fail_after(90):
        return await leader.engine.play()


@pytest.mark.parametrize("scenario", ["collab-small", "collab", "collab-tapa"])
async def test_the_network_regulates_and_trades_as_the_offline_solver(scenario: str, tmp_path: Path) -> None:
    offline = _offline(scenario)
    async with open_memory_network(scenario, tmp_path / "net") as nodes:
        start = {n.name: n.chain.state.balance(n.key.public) for n in nodes.values()}
        summary = await _play(nodes)
        assert summary["final"] and summary["left_out"] == [], summary
        for key in KEYS:
            assert summary["outcome"][key] == offline[key], key  # the same floats: the same code on the same input
        state = nodes["device-0"].chain.state
        assert state.conserved() and not state.escrows
        minted: dict[bytes, int] = {}
        for h in range(1, state.height + 1):
            block = nodes["pool"].chain.block(h)
            minted[block.header.proposer] = minted.get(block.header.proposer, 0) + block.header.reward
        sc = nodes["pool"].scenario
        paid = [0] * len(sc.names("device"))
        for j, name in enumerate(sc.names("publisher")):
            key = nodes[name].key.public
            trade = offline["trades"][j]
            spent = 0
            for i in range(len(paid)):
                amount = solve_floor(trade["compute"][i] * offline["prices"]["compute"][i]
                                     + trade["data"][i] * offline["prices"]["data"][i])
                paid[i] += amount
                spent += amount
            assert start[name] - state.balance(key) + minted.get(key, 0) == spent
            assert spent <= to_units(trade["cost"]) + len(paid)
        for i, name in enumerate(sc.names("device")):
            key = nodes[name].key.public
            assert state.balance(key) - start[name] - minted.get(key, 0) == paid[i]


def solve_floor(x: float) -> int:
    from bazaar.node.markets.collab.common import floor_units

    return floor_units(x)


async def test_a_device_that_vanishes_mid_regulation_is_dropped_and_the_market_settles(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=3)
    async with open_memory_network("collab", tmp_path / "net", network=net) as nodes:
        pool, gone = nodes["pool"], nodes["device-2"]
        app: Any = pool.app

        async def vanish() -> None:
            while app.current is None or app.current.iteration < 3:
                await trio.sleep(0.01)
            for node in nodes.values():
                if node is not gone:
                    net.disconnect(node.key.public, gone.key.public)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(vanish)
            summary = await _play(nodes)
        assert summary["final"] and "device-2" in summary["left_out"], summary
        assert all(t["compute"][2] == 0 and t["data"][2] == 0 for t in summary["outcome"]["trades"])
        state = pool.chain.state
        assert state.conserved() and not state.escrows


async def test_a_pool_that_dies_mid_regulation_moves_no_token_and_the_next_round_settles(tmp_path: Path) -> None:
    net = MemoryNetwork(seed=4)
    async with open_memory_network("collab-small", tmp_path / "net", network=net) as nodes:
        pool = nodes["pool"]
        others = [n for n in nodes.values() if n is not pool]
        before = {n.name: n.chain.state.balance(n.key.public) for n in others}
        app: Any = pool.app
        real_final = app.final_orders
        died = trio.Event()

        async def crash(*_: object) -> Any:  # the regulation is over, the locks are in hand: the pool crashes
            for node in others:
                net.disconnect(pool.key.public, node.key.public)
            died.set()
            await trio.sleep_forever()

        app.final_orders = crash
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.engine.play)  # type: ignore[union-attr]
            with trio.fail_after(60):
                await died.wait()
            nursery.cancel_scope.cancel()
        for node in others:  # the locks never left the pool: nothing is locked, nothing moved
            assert node.chain.state.height == 0 and not node.chain.state.escrows
            assert node.chain.state.balance(node.key.public) == before[node.name]
        # the pool comes back: the publishers drop the lock nonces that never landed and the next round settles
        app.final_orders = real_final
        for node in others:
            net.reconnect(pool.key.public, node.key.public)
        with trio.fail_after(60):
            again = await pool.engine.play()  # type: ignore[union-attr]
        assert again["final"] and again["outcome"]["trades"] == _offline("collab-small")["trades"], again
        assert pool.chain.state.conserved() and not pool.chain.state.escrows


async def test_bad_prices_and_orders_are_refused_with_reasons(tmp_path: Path) -> None:
    async with open_memory_network("collab-small", tmp_path / "net") as nodes:
        pool, dev, pub, other = nodes["pool"], nodes["device-1"], nodes["publisher-1"], nodes["device-0"]
        real_dev_ask, real_pub_ask = dev.ask, pub.ask

        async def greedy_device(peer: bytes, mtype: str, body: dict[str, Any], **kw: Any) -> Any:
            if mtype == msg.MSG_PRICE:  # raises its price whatever the rule says
                body = {**body, "compute_price": body["compute_price"] + 5.0}
            return await real_dev_ask(peer, mtype, body, **kw)

        async def greedy_publisher(peer: bytes, mtype: str, body: dict[str, Any], **kw: Any) -> Any:
            if mtype == msg.MSG_ORDER and body["iteration"] == 1:  # out of order, over budget, over the CPPI cap,
                for bad in ({"iteration": 99}, {"spent": 1e9}, {"data": body["data"] * 3 + 5}):  # then too much
                    with contextlib.suppress(RequestFailed):
                        await real_pub_ask(peer, mtype, {**body, **bad}, **kw)
                body = {**body, "compute": 1e9}
            return await real_pub_ask(peer, mtype, body, **kw)

        dev.ask = greedy_device  # type: ignore[method-assign]
        pub.ask = greedy_publisher  # type: ignore[method-assign]
        # a device posing as the pool: its book is refused by role
        await other.publish(msg.MSG_BOOK, {"iteration": 0, "compute_capacity": [], "data_capacity": [],
                                           "compute_price": [], "data_price": [], "phi": [], "theta": [],
                                           "order_deadline_ms": 0}, round=9)
        await pub.router.changes.wait_for(lambda: pub.router.rejected.get("not-authorised", 0) >= 1, timeout=10)
        summary = await _play(nodes)
        assert summary["final"], summary
        rejected = pool.router.rejected
        assert rejected.get("over-step", 0) + rejected.get("wrong-direction", 0) >= 1
        assert rejected.get("over-budget", 0) >= 1 and rejected.get("over-offer", 0) >= 1
        assert rejected.get("wrong-iteration", 0) >= 1 and rejected.get("over-cppi", 0) >= 1
        assert "device-1" in summary["left_out"] and "publisher-1" in summary["left_out"]
        for node in nodes.values():
            assert node.router.rejected.get("handler-error", 0) == 0
            assert node.chain.state.conserved()


@pytest.mark.parametrize("scenario", ["collab-qlearning", "collab-evolutionary"])
async def test_device_side_pricers_move_only_with_their_gaps_and_the_market_settles(scenario: str,
                                                                                   tmp_path: Path) -> None:
    async with open_memory_network(scenario, tmp_path / "net") as nodes:
        summary = await _play(nodes)
        assert summary["final"] and summary["left_out"] == [], summary
        out = summary["outcome"]
        assert 1 <= out["iterations"] <= 200 and len(out["price_path"]) == out["iterations"] + 1
        moved = [p["compute"] for p in out["price_path"]]
        assert moved[0] != moved[-1]  # the devices did price themselves
        pool = nodes["pool"]
        assert pool.router.rejected.get("over-step", 0) == 0 and pool.router.rejected.get("wrong-direction", 0) == 0
        state = pool.chain.state
        assert state.conserved() and not state.escrows
