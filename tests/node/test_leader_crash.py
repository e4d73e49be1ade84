"""A round leader that dies after its followers locked escrow strands no tokens, and a restarted leader numbers
its rounds after the one it died in (issue 12, defect 4) — on the in-memory network with the real ai-bazaar
roles: the CPP leads, the consumers lock escrow for their leases."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from bazaar.ledger.txs import decode_tx
from bazaar.node.launcher import NetDir, prepare_network
from bazaar.node.markets.ai_bazaar.common import escrow_id
from bazaar.node.mempool import Mempool
from bazaar.node.rounds.engine import STATE_FILE
from bazaar.node.runtime import Node, open_node
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until_async
from bazaar.protocol.memory import MemoryNetwork

from .harness import memory_net, small_scenario
from .test_mempool import _add, _junk, _State

EXPIRY = 2
"""The consumers' escrow_expiry in blocks (kept short so the test reaches it in a few rounds)."""


def _pending_locks(node: Node) -> set[bytes]:
    return {p.env.body["id"] for p in node.chain.mempool.ordered_pending() if p.env.type == "tx/escrow_lock"}


def _moves(node: Node, ids: set[bytes]) -> dict[str, list[int]]:
    """Heights at which a transaction locked or moved one of ``ids`` on ``node``'s chain."""
    out: dict[str, list[int]] = {}
    for height in range(1, node.chain.height + 1):
        block = node.chain.block(height)
        assert block is not None
        for raw in block.txs:
            env = decode_tx(raw, node.network_id)
            if env.type.startswith("tx/escrow_") and env.body["id"] in ids:
                out.setdefault(env.type, []).append(height)
    return out


def test_a_second_transaction_with_a_pending_nonce_replaces_it_and_pruning_stays_exact() -> None:
    """A restarted leader re-signs a nonce its dead run used (its old transaction still waits in its peers'
    mempools): the newer replaces the older (one slot per sender and nonce, docs/adr/0099), and a block taking
    the nonce prunes cleanly (two for one nonce used to overwrite each other in the sender's queue and crash the
    proposer's prune with a KeyError)."""
    a = b"\x07" * 32
    pool = Mempool()
    first, second = _junk(a, 1), _junk(a, 1)
    assert _add(pool, first, _State())
    assert _add(pool, second, _State()) and len(pool) == 1 and pool.pending_of(a) == 1
    assert [p.env.digest for p in pool.ordered_pending()] == [second.digest]
    assert _add(pool, _junk(a, 2), _State())
    pool.prune(_State(nonces={a: 2}))
    assert len(pool) == 0 and pool.pending_of(a) == 0


async def _play(cpp: Node) -> dict[str, Any]:
    with trio.fail_after(60):
        return await cpp.engine.play()


async def test_a_crashed_cpp_strands_no_escrow_and_its_restart_numbers_rounds_after_it(tmp_path: Path) -> None:
    scenario = small_scenario(tmp_path)
    scenario.write_text(scenario.read_text().replace("max_steps = 50", f"max_steps = 50\nescrow_expiry = {EXPIRY}"))
    net = MemoryNetwork(seed=5)
    configs = prepare_network(load_scenario(scenario), NetDir(tmp_path / "net"), log_json=False)

    def factory(key, cfg, topics):  # type: ignore[no-untyped-def]
        return net.join(key)

    async def connected(nodes: list[Node]) -> None:
        await wait_until_async(lambda: all(len(n.transport.peers()) == len(nodes) - 1 and n.chain.synced
                                           for n in nodes), timeout=10, interval=0.001, what="the mesh to connect")

    async with AsyncExitStack() as stack:
        consumers = [await stack.enter_async_context(open_node(cfg, transport_factory=factory))
                     for name, cfg in configs.items() if name != "cpp"]
        locked = {escrow_id(1, n.key.public) for n in consumers}
        mine = [n.app.mine for n in consumers]

        async def never_mine(env: object) -> None:  # no miner submits: nothing settles round 1's locks
            return None

        for n in consumers:
            n.app.mine = never_mine
        # round 1: every consumer locks escrow for its lease, then the CPP dies before anything settles
        async with open_node(configs["cpp"], transport_factory=factory) as cpp:
            await connected([cpp, *consumers])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cpp.engine.play)
                await wait_until_async(lambda: all(locked <= _pending_locks(n) for n in consumers), timeout=30,
                                       interval=0.01, what="the round-1 locks to reach every consumer")
                nursery.cancel_scope.cancel()  # the CPP is gone mid-round (its node stops with this block)
        assert all(n.chain.height == 0 for n in consumers)  # nothing settled
        for n, fn in zip(consumers, mine, strict=True):
            n.app.mine = fn

        # the CPP restarts with its data dir: it goes on with round 2, and the dead round's locks, which land in
        # the next block with no release behind them, come back to their payers by the ledger's expiry rule
        async with open_node(configs["cpp"], transport_factory=factory) as cpp:
            nodes = [cpp, *consumers]
            await connected(nodes)
            summaries = [await _play(cpp)]
            moves = _moves(cpp, locked)
            assert len(moves.get("tx/escrow_lock", [])) == len(locked), moves  # the dead round's locks landed
            landed = max(moves["tx/escrow_lock"])
            for _ in range(2 * EXPIRY + 4):  # a round makes one block; a few spare for a lost one
                if cpp.chain.height > landed + EXPIRY:
                    break
                summaries.append(await _play(cpp))
            assert cpp.chain.height > landed + EXPIRY
            numbers = [s["round"] for s in summaries]
            assert numbers == list(range(2, 2 + len(numbers))), numbers  # round 1 is never run again
            assert all(s["final"] for s in summaries), summaries
            assert set(_moves(cpp, locked)) == {"tx/escrow_lock"}  # no transaction ever moved them back...
            for n in nodes:  # ...yet every one is back with its payer, and every node's supply is conserved
                await n.chain.wait_for(lambda n=n: n.chain.height >= cpp.chain.height, timeout=20)
                state = n.chain.state
                assert not (locked & set(state.escrows)) and state.conserved()
                assert state.supply.total == state.held()
            last = numbers[-1]

        # the CPP restarts having lost its round counter: the chain still shows the rounds it ran
        (configs["cpp"].data_dir / STATE_FILE).unlink()
        async with open_node(configs["cpp"], transport_factory=factory) as cpp:
            await connected([cpp, *consumers])
            again = await _play(cpp)
            assert again["round"] == last + 1 and again["final"], again


async def test_the_cpp_refuses_a_lock_that_would_not_come_back_in_bounded_time(tmp_path: Path) -> None:
    """A lock whose round never settles returns at expires + 1: the leader takes only locks expiring within
    the market's escrow_expiry, so none can wait (nearly) for ever behind a dead leader."""
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        far = nodes["consumer-0"].app
        far.cfg = replace(far.cfg, escrow_expiry=10**6)
        with trio.fail_after(60):
            summary = await nodes["cpp"].engine.play()
        assert summary["final"] and summary["left_out"] == ["consumer-0"], summary
        state = nodes["cpp"].chain.state
        assert all(e.expires <= summary["height"] + 40 for e in state.escrows.values())
