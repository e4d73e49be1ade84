"""Market collab on the in-memory network, with both round protocols (``declared``, the default, and the
paper's ``iterative``, docs/adr/0160): the regulation and the trades equal `bazaar solve collab-pricing` on the
same file, a device that vanishes mid-round is dropped and the market settles, a pool that dies moves no token,
and every bad declaration, order or price is refused with a coded reason."""

from __future__ import annotations

import contextlib
import dataclasses
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

from .collab_scenarios import with_protocol

KEYS = ("iterations", "cleared", "prices", "price_path", "trades", "payoff", "gap")


def _offline(scenario: str) -> dict[str, Any]:
    return solve_file.solve_pricing(get_spec("collab").settings(load_scenario(scenario)).params)


async def _play(nodes: dict[str, Node]) -> dict[str, Any]:
    leader = nodes["pool"]
    assert leader.engine is not None
    with trio.fail_after(90):
        return await leader.engine.play()


@pytest.mark.parametrize(("scenario", "protocol", "max_iter"), [
    ("collab-small", "declared", None), ("collab", "declared", None), ("collab-tapa", "declared", None),
    ("collab-small", "iterative", None), ("collab-small", "declared", 0)])  # 0: the offers are the final prices
async def test_the_network_regulates_and_trades_as_the_offline_solver(scenario: str, protocol: str,
                                                                      max_iter: int | None, tmp_path: Path) -> None:
    ref = with_protocol(scenario, protocol, tmp_path, max_iter)
    offline = solve_file.solve_pricing(get_spec("collab").settings(load_scenario(ref)).params)
    async with open_memory_network(ref, tmp_path / "net") as nodes:
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
    """Iterative: dropped at the regulation it misses, and the market goes on without it."""
    net = MemoryNetwork(seed=3)
    async with open_memory_network(with_protocol("collab", "iterative", tmp_path), tmp_path / "net",
                                   network=net) as nodes:
        pool, gone = nodes["pool"], nodes["device-2"]
        app: Any = pool.app

        async def vanish() -> None:
            while app.current is None or app.current.iteration < 3:
                await trio.sleep(0)  # every scheduler step: never past the iteration between two looks
            for node in nodes.values():
                if node is not gone:
                    net.disconnect(node.key.public, gone.key.public)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(vanish)
                summary = await _play(nodes)
                nursery.cancel_scope.cancel()  # a watcher that missed its moment fails below, never hangs
        assert summary["final"] and "device-2" in summary["left_out"], summary
        assert all(t["compute"][2] == 0 and t["data"][2] == 0 for t in summary["outcome"]["trades"])
        state = pool.chain.state
        assert state.conserved() and not state.escrows


async def test_a_device_that_vanishes_after_its_offer_is_dropped_and_the_round_is_the_market_without_it(
        tmp_path: Path) -> None:
    """Declared: a device that offered but does not sign its final price leaves the book; the pool regulates
    again without it, and the round equals the offline solver on the file with that device's capacity 0."""
    net = MemoryNetwork(seed=3)
    params = get_spec("collab").settings(load_scenario("collab")).params
    without = {**params, "sellers": {k: list(v) for k, v in params["sellers"].items()}}
    without["sellers"]["compute_capacity"][2] = without["sellers"]["data_capacity"][2] = 0.0
    offline = solve_file.solve_pricing(without)
    async with open_memory_network("collab", tmp_path / "net", network=net) as nodes:
        pool, gone = nodes["pool"], nodes["device-2"]
        app: Any = pool.app
        real = app.regulate_locally
        runs = []

        async def vanish_then_regulate(*args: Any) -> Any:  # the offers are in: device-2 vanishes
            if not runs:
                for node in nodes.values():
                    if node is not gone:
                        net.disconnect(node.key.public, gone.key.public)
            runs.append(args[1].caps_f[2])
            return await real(*args)

        app.regulate_locally = vanish_then_regulate
        summary = await _play(nodes)
        assert summary["final"] and summary["left_out"] == ["device-2"], summary
        assert runs[0] > 0 and runs[1:] == [0.0]  # regulated with it, then once more without it
        for key in KEYS:
            assert summary["outcome"][key] == offline[key], key
        state = pool.chain.state
        assert state.conserved() and not state.escrows


@pytest.mark.parametrize(("protocol", "stage"), [("declared", "confirm_outcome"), ("iterative", "final_orders")])
async def test_a_pool_that_dies_mid_regulation_moves_no_token_and_the_next_round_settles(protocol: str, stage: str,
                                                                                          tmp_path: Path) -> None:
    net = MemoryNetwork(seed=4)
    async with open_memory_network(with_protocol("collab-small", protocol, tmp_path), tmp_path / "net",
                                   network=net) as nodes:
        pool = nodes["pool"]
        others = [n for n in nodes.values() if n is not pool]
        before = {n.name: n.chain.state.balance(n.key.public) for n in others}
        app: Any = pool.app
        real_stage = getattr(app, stage)
        died = trio.Event()

        async def crash(*_: object) -> Any:  # the regulation is over, the locks are in hand: the pool crashes
            for node in others:
                net.disconnect(pool.key.public, node.key.public)
            died.set()
            await trio.sleep_forever()

        setattr(app, stage, crash)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.engine.play)  # type: ignore[union-attr]
            with trio.fail_after(60):
                await died.wait()
            nursery.cancel_scope.cancel()
        for node in others:  # the locks never left the pool: nothing is locked, nothing moved
            assert node.chain.state.height == 0 and not node.chain.state.escrows
            assert node.chain.state.balance(node.key.public) == before[node.name]
        # the pool comes back: the publishers drop the lock nonces that never landed and the next round settles
        setattr(app, stage, real_stage)
        for node in others:
            net.reconnect(pool.key.public, node.key.public)
        with trio.fail_after(60):
            again = await pool.engine.play()  # type: ignore[union-attr]
        assert again["final"] and again["outcome"]["trades"] == _offline("collab-small")["trades"], again
        assert pool.chain.state.conserved() and not pool.chain.state.escrows


@pytest.mark.parametrize("protocol", ["iterative", "declared"])
async def test_a_repeated_or_older_call_mid_round_changes_nothing(protocol: str, tmp_path: Path) -> None:
    """Found by the fuzz campaign (a collab round stalled ~50 s with a device and a publisher left out): a second
    ``call`` for the round in progress reset the device's prices to its offer (its next regulation then moved
    "against its gap") and made the publisher forget its lock (it stopped ordering, and every iteration waited
    out ``order_s`` for it). Both now ignore a call for a round already called or older."""
    async with open_memory_network(with_protocol("collab-small", protocol, tmp_path), tmp_path / "net") as nodes:
        pool, dev, pub = nodes["pool"], nodes["device-0"], nodes["publisher-1"]
        app: Any = pool.app
        roster = app.roster
        stage = "confirm" if protocol == "declared" else "regulate"

        fired: list[int] = []

        async def repeat_calls() -> None:
            # checked at every scheduler step (sleep(0)), not every 5 ms: a fast round could pass through the
            # stage between two looks, and this task then waited forever with the round long over
            while app.current is None or app.current.stage != stage or (protocol == "iterative"
                                                                          and app.current.iteration < 2):
                await trio.sleep(0)
            r = app.current.number
            for number in (r, r - 1):
                body = {"devices": list(roster.devices), "publishers": list(roster.publishers),
                        "offer_deadline_ms": 0, "expires": 1}
                for node in (dev, pub):
                    await node.router.dispatch(pool.seal(msg.MSG_CALL, body, round=number))
            fired.append(r)

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(repeat_calls)
                summary = await _play(nodes)
                nursery.cancel_scope.cancel()  # never left waiting for a stage the round is past
        assert fired, f"the round never showed stage {stage!r} to the test"
        assert summary["final"] and summary["left_out"] == [], summary
        assert summary["outcome"]["trades"] == _offline("collab-small")["trades"]


async def test_bad_prices_and_orders_are_refused_with_reasons(tmp_path: Path) -> None:
    async with open_memory_network(with_protocol("collab-small", "iterative", tmp_path), tmp_path / "net") as nodes:
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


async def test_bad_declarations_paths_prices_and_final_orders_are_refused_and_the_round_settles(
        tmp_path: Path) -> None:
    """Declared: a declaration that makes no publisher or whose lock is not its budget is refused; a device
    refuses a path that moves its price against its gap (so the pool cannot sign for it) and the pool refuses a
    final price other than the path's: both devices leave the book; a final order taking more than is left is
    refused and the later publisher is asked again with what is really left."""
    async with open_memory_network("collab-small", tmp_path / "net") as nodes:
        pool, pub0, pub1 = nodes["pool"], nodes["publisher-0"], nodes["publisher-1"]
        dev0, dev1 = nodes["device-0"], nodes["device-1"]
        real_pub_ask, real_pool_ask = pub1.ask, pool.ask
        pub0_app: Any = pub0.app
        real_plan = pub0_app.plan

        async def sloppy_publisher(peer: bytes, mtype: str, body: dict[str, Any], **kw: Any) -> Any:
            if mtype == msg.MSG_DECLARE:
                for bad in ({"omega": 1.0}, {"budget": body["budget"] + 1}):
                    with pytest.raises(RequestFailed):
                        await real_pub_ask(peer, mtype, {**body, **bad}, **kw)
            return await real_pub_ask(peer, mtype, body, **kw)

        async def greedy_plan(book: Any, *args: Any) -> Any:
            port = await real_plan(book, *args)
            if len(args) == 3:  # the final order: take more than is offered
                port = dataclasses.replace(port, compute_purchases=tuple(x + 5.0 for x in args[1]))
            return port

        async def lying_pool(peer: bytes, mtype: str, body: dict[str, Any], **kw: Any) -> Any:
            if mtype == msg.MSG_OUTCOME and peer == dev1.key.public and body["iteration"] > 0:
                d = body["compute_directions"][0] or 1
                body = {**body, "compute_path": [body["compute_path"][0],
                                                 body["compute_path"][0] - d * 0.5, *body["compute_path"][2:]]}
            ans = await real_pool_ask(peer, mtype, body, **kw)
            if mtype == msg.MSG_OUTCOME and peer == dev0.key.public:  # device-0 signs a higher price
                return dev0.seal(msg.MSG_PRICE, {**ans.body, "compute_price": ans.body["compute_price"] + 1.0},
                                 round=ans.round)
            return ans

        pub1.ask = sloppy_publisher  # type: ignore[method-assign]
        pub0_app.plan = greedy_plan
        pool.ask = lying_pool  # type: ignore[method-assign]
        summary = await _play(nodes)
        assert summary["final"], summary
        assert sorted(summary["left_out"]) == ["device-0", "device-1"], summary
        rejected = pool.router.rejected
        assert rejected.get("bad-declaration", 0) == 1 and rejected.get("bad-escrow", 0) == 1, rejected
        assert dev1.router.rejected.get("wrong-direction", 0) >= 1, dev1.router.rejected
        trades = summary["outcome"]["trades"]
        assert trades[0]["cost"] == 0 and trades[1]["cost"] > 0  # publisher-0's order refused; publisher-1 bought
        assert all(t["compute"][i] == 0 and t["data"][i] == 0 for t in trades for i in (0, 1))
        for node in nodes.values():
            assert node.router.rejected.get("handler-error", 0) == 0
            assert node.chain.state.conserved() and not node.chain.state.escrows


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


def test_device_side_pricers_refuse_the_declared_protocol(tmp_path: Path) -> None:
    """The devices' own pricers move their prices by their private strategies: only ``iterative`` runs them."""
    from bazaar.node.params import ParamError

    with pytest.raises(ParamError) as err:
        get_spec("collab").settings(load_scenario(with_protocol("collab-qlearning", "declared", tmp_path)))
    assert err.value.key == "mechanism.protocol"
    assert not get_spec("collab").settings(load_scenario("collab-qlearning")).declared
    assert get_spec("collab").settings(load_scenario("collab")).declared
