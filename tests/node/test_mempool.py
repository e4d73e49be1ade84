"""Mempool admission (docs/adr/0082-mempool-admission.md): what a sender can pay for, per-sender and nonce-gap
bounds, eviction by priority and age, and the node's own transactions always get a slot (issue 12, defect 1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio

from bazaar.node.mempool import Mempool
from bazaar.protocol import Envelope

from .harness import memory_net, small_scenario


class _State:
    """The two things admission reads of a state."""

    def __init__(self, balances: dict[bytes, int] | None = None, nonces: dict[bytes, int] | None = None) -> None:
        self.balances = balances or {}
        self.nonces = nonces or {}

    def balance(self, account: bytes) -> int:
        return self.balances.get(account, 0)

    def nonce(self, account: bytes) -> int:
        return self.nonces.get(account, 0)


def _junk(sender: bytes, nonce: int, kind: str = "record", **body: Any) -> Envelope:
    """An unsigned transaction envelope (admission never re-verifies: add_tx did): cheap to make by thousands."""
    body = {"kind": "junk", "data": {}, **body, "nonce": nonce} if kind == "record" else {**body, "nonce": nonce}
    return Envelope(type=f"tx/{kind}", market="", round=0, sender=sender, seq=0, ts=0, body=body,
                    payload=os.urandom(24), signature=bytes(64))


def _add(pool: Mempool, env: Envelope, state: Any, **kw: Any) -> bool:
    return pool.add(env, env.wire, state, **kw)


def test_a_sender_pays_for_everything_it_has_pending() -> None:
    a = os.urandom(32)
    pool, state = Mempool(), _State({a: 100})
    assert _add(pool, _junk(a, 1, "transfer", to=bytes(32), amount=60), state)
    assert not _add(pool, _junk(a, 2, "transfer", to=bytes(32), amount=50), state)
    assert pool.last_refusal == "insufficient-funds"
    assert _add(pool, _junk(a, 2, "transfer", to=bytes(32), amount=40), state)
    assert _add(pool, _junk(a, 3), state)  # a record spends nothing


def test_per_sender_and_nonce_gap_bounds() -> None:
    a, b = os.urandom(32), os.urandom(32)
    pool, state = Mempool(per_sender=4, max_gap=8), _State()
    assert all(_add(pool, _junk(a, n), state) for n in range(1, 5))
    assert not _add(pool, _junk(a, 5), state) and pool.last_refusal == "sender-full"
    assert not _add(pool, _junk(b, 9), state) and pool.last_refusal == "nonce-gap"
    assert _add(pool, _junk(b, 8), state)


def test_a_full_pool_evicts_what_cannot_apply_then_the_heaviest_sender() -> None:
    heavy, gapped, light, me = (os.urandom(32) for _ in range(4))
    pool, state = Mempool(capacity=6, own=me), _State()
    for n in range(1, 5):
        assert _add(pool, _junk(heavy, n), state)
    assert _add(pool, _junk(gapped, 3), state)  # cannot apply: nonces 1 and 2 are missing
    assert _add(pool, _junk(light, 1), state)
    assert _add(pool, _junk(light, 2), state)  # full: the gapped one went
    assert pool.pending_of(gapped) == 0 and pool.pending_of(heavy) == 4
    assert _add(pool, _junk(os.urandom(32), 1), state)  # the heaviest sender's newest went
    assert pool.pending_of(heavy) == 3
    assert max(p.nonce for p in pool.ordered_pending() if p.env.sender == heavy) == 3
    # no sender holds more than the newcomer's would: a peer's transaction cannot displace anything...
    flat = Mempool(capacity=2, own=me)
    assert _add(flat, _junk(os.urandom(32), 1), state) and _add(flat, _junk(os.urandom(32), 1), state)
    assert not _add(flat, _junk(os.urandom(32), 1), state) and flat.last_refusal == "mempool-full"
    # ...but the node's own always gets a slot, even far ahead, over the caps and with nothing to pay with
    assert _add(flat, _junk(me, 500, "transfer", to=bytes(32), amount=10**9), state)
    assert _add(flat, _junk(me, 501), state) and _add(flat, _junk(me, 502), state)
    assert len(flat) == 3 and flat.pending_of(me) == 3


def test_nonce_gapped_transactions_are_not_offered_to_blocks() -> None:
    a = os.urandom(32)
    pool, state = Mempool(), _State()
    assert _add(pool, _junk(a, 1), state) and _add(pool, _junk(a, 3), state)
    assert [p.nonce for p in pool.ordered_pending(state)] == [1]
    assert [p.nonce for p in pool.ordered_pending()] == [1, 3]
    gapped = Mempool()
    assert _add(gapped, _junk(a, 2), state) and not gapped.has_applicable(state)  # no block is wanted for it
    assert pool.has_applicable(state)


async def test_a_junk_flood_never_keeps_out_the_nodes_own_transactions_and_rounds_settle(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        for node in nodes.values():  # ~20k junk transactions from fresh keys with nonce gaps, on every node
            svc = node.chain
            for i in range(20_000):
                env = _junk(os.urandom(32), 2 + i % 200)
                svc.mempool.add(env, env.wire, svc.state)
            assert len(svc.mempool) <= svc.mempool.capacity
        with trio.fail_after(60):
            summary = await nodes["cpp"].engine.play()
        assert summary["final"], summary  # the round's own transactions entered every full pool; a block was built
        leader = nodes["cpp"].chain
        block = leader.block(summary["height"])
        assert block is not None and len(block.txs) > 0
        own = leader.sign_tx("transfer", {"to": nodes["consumer-0"].key.public, "amount": 1})
        assert leader.add_tx(own.wire) is not None  # and the node's own transaction still enters a full pool


def test_capacity_is_the_scenarios_and_the_verified_cache_follows_it(tmp_path: Path) -> None:
    """ADR 0170: ``[chain] mempool`` sizes every node's pool alike; the process remembers twice as many verified
    transactions, so what a full pool admitted is not verified again when its blocks are imported."""
    import pytest

    from bazaar.ledger import txs
    from bazaar.node.params import ParamError
    from bazaar.node.scenario import load_scenario

    pool, state = Mempool(capacity=3), _State()
    senders = [os.urandom(32) for _ in range(4)]
    assert all(_add(pool, _junk(s, 1), state) for s in senders[:3])
    assert not _add(pool, _junk(senders[3], 1), state) and pool.last_refusal == "mempool-full"
    pool.resize(4)
    assert _add(pool, _junk(senders[3], 1), state) and len(pool) == 4
    with pytest.raises(ValueError):
        pool.resize(0)
    Mempool(capacity=40_000)
    assert txs._CACHE_BOUND[0] >= 80_000 and txs.reserve_verified(10) == txs._CACHE_BOUND[0]  # never shrinks
    scenario = small_scenario(tmp_path)
    defaults = {"votes": "aggregator", "blocks": "push", "messages": "push"}
    assert load_scenario(scenario).chain == {"mempool": 10_000, **defaults}
    text = scenario.read_text()
    scenario.write_text(text + "\n[chain]\nmempool = 25000\n")
    assert load_scenario(scenario).chain == {"mempool": 25_000, **defaults}
    scenario.write_text(text + "\n[chain]\nmempool = 0\n")
    with pytest.raises(ParamError, match=r"chain\.mempool"):
        load_scenario(scenario)


def _random_pool(*, seed: int, senders: int, txs: int, max_nonce: int, max_done: int) -> tuple[Mempool, Any]:
    """A pool of ``txs`` random transactions (nonces 1..``max_nonce``, gaps and repeats included) over ``senders``
    senders, and a state in which each sender has used a random 0..``max_done`` nonces."""
    import random

    rng = random.Random(seed)
    keys = [os.urandom(32) for _ in range(senders)]
    pool, empty = Mempool(), _State()
    for _ in range(txs):
        _add(pool, _junk(rng.choice(keys), rng.randint(1, max_nonce)), empty)
    return pool, _State(nonces={k: rng.randint(0, max_done) for k in keys})


def test_one_pass_per_sender_agrees_with_the_per_transaction_rule() -> None:
    """ordered_pending(state) and prune's gapped set (one pass per sender) select exactly the transactions
    :meth:`Mempool._applies` accepts, on random queues with gaps and stale nonces."""
    pool, state = _random_pool(seed=5, senders=12, txs=300, max_nonce=20, max_done=8)
    pool.prune(state)
    pending = list(pool._txs.values())
    assert all(p.nonce > state.nonce(p.env.sender) for p in pending)
    assert {p.digest for p in pool.ordered_pending(state)} == {p.digest for p in pending if pool._applies(p, state)}
    assert set(pool._gapped) == {p.digest for p in pending if not pool._applies(p, state)}
    assert list(pool._gapped) == [d for d in pool._txs if d in set(pool._gapped)]  # arrival order kept


def _whole_pool_order(pool: Mempool, state: Any) -> list[bytes]:
    """The block order as it was computed before iter_pending: every pending transaction sorted per proposal."""
    arrived = list(pool._txs.values())
    if state is not None:
        missing = {sender: pool._first_missing(sender, state) for sender in pool._by_sender}
        arrived = [p for p in arrived if p.nonce < missing[p.env.sender]]
    queues: dict[bytes, list[Any]] = {}
    for p in sorted(arrived, key=lambda p: (p.nonce, p.digest), reverse=True):
        queues.setdefault(p.env.sender, []).append(p)
    return [queues[p.env.sender].pop().digest for p in arrived]


def test_the_walk_sorting_each_sender_on_first_sight_gives_the_whole_pools_order() -> None:
    """iter_pending (a sender's queue sorted when the walk meets it; docs/adr/0167) yields the order the whole
    pool's sort gave, with and without a state, and any prefix of it."""
    import itertools

    pool, state = _random_pool(seed=11, senders=15, txs=400, max_nonce=25, max_done=6)
    for st in (None, state):
        want = _whole_pool_order(pool, st)
        assert [p.digest for p in pool.iter_pending(st)] == want
        assert [p.digest for p in itertools.islice(pool.iter_pending(st), 37)] == want[:37]
        assert [p.digest for p in pool.ordered_pending(st)] == want
