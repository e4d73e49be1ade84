"""Regression tests for what the fuzzers found (issue #12); each fails on the code before its fix.

1. A ledger refusal raised by a gossip handler (``chain/cert`` with undecodable certificate bytes raises
   ``InvalidAttestation("malformed")``) was counted as ``handler-error`` (a bug of ours, logged at error level)
   because the router's middleware caught only ``ProtocolError``: it must be counted by its own code.
2. The chain-sync, model and blob protocols refused with free-text sentences ("sync request must be ...",
   "unknown model") or let a ``DecodeError`` reset the stream: every refusal must name a documented code.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from bazaar.ledger.errors import InvalidAttestation, LedgerReason
from bazaar.node.chain.sync import ChainSync
from bazaar.node.markets.cloudchain.common import BlobStore as CloudBlobs
from bazaar.node.markets.tbcim.blobs import BlobStore as TbcimBlobs
from bazaar.node.router import Router
from bazaar.protocol import codec
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.transport import RejectRequest

from .campaign import CODES

ROOT = Path(__file__).resolve().parents[2]


async def test_a_ledger_refusal_from_a_handler_is_counted_by_its_code_not_as_a_handler_error() -> None:
    router = Router("regress", local_key=bytes(32))

    async def handler(env: object) -> None:
        raise InvalidAttestation(LedgerReason.MALFORMED, "certificate fields")

    router.on("chain/cert", handler)
    env = SimpleNamespace(type="chain/cert", sender=KeyPair.generate().public)
    await router.dispatch(env)  # type: ignore[arg-type]
    assert router.rejected == {"malformed": 1}


async def test_the_chain_certificate_handler_refuses_garbage_with_a_code() -> None:
    from tests.fuzz.ledger_targets import LedgerTargets

    targets = LedgerTargets(seed_blocks=1)
    router = Router("ledger-test", local_key=bytes(32))
    targets.service.register(router)
    from bazaar.protocol.envelope import now_ms, seal

    env = seal(targets.users[0], "ledger-test", "chain/cert", {"cert": b"\x93\x01\x02"}, seq=1, ts=now_ms())
    await router.dispatch(router.verify(env.wire))
    assert "handler-error" not in router.rejected and sum(router.rejected.values()) == 1, router.rejected


@pytest.mark.parametrize("request_bytes", [b"\xc1", codec.encode([1, 2]), codec.encode({"from": -1}),
                                           codec.encode({"from": True}), codec.encode({"hash": 3})])
async def test_sync_and_blob_protocols_refuse_with_codes(request_bytes: bytes) -> None:
    svc = SimpleNamespace(chain=SimpleNamespace(height=0, finalized_height=0, blocks_after=lambda h, n: []))
    ctx = SimpleNamespace(key=KeyPair.generate(), set_protocol=lambda protocol, handler: None)
    serves = [ChainSync(svc).serve, TbcimBlobs(ctx).serve, CloudBlobs(ctx).serve]  # type: ignore[arg-type]
    for serve in serves:
        if serve.__self__.__class__ is ChainSync and request_bytes == codec.encode({"hash": 3}):
            continue
        with pytest.raises(RejectRequest) as info:
            await serve(b"\x00" * 32, request_bytes)
        assert info.value.reason in CODES, (serve, info.value.reason)


def test_every_request_refusal_literal_in_the_node_is_a_documented_code() -> None:
    pattern = re.compile(r'RejectRequest\(\s*"([^"]*)"')
    found = {(str(p.relative_to(ROOT)), r) for p in (ROOT / "node").rglob("*.py")
             for r in pattern.findall(p.read_text())}
    assert {(f, r) for f, r in found if r not in CODES} == set()


async def test_a_collab_publisher_refuses_a_book_or_final_without_one_entry_per_device(tmp_path: Path) -> None:
    """3. A ``collab/book`` or ``collab/final`` from the pool whose per-device lists are empty or of another length
    made the publisher's mechanism raise (``MechanismError``: no sellers; residual capacities per seller) and
    the node count a ``handler-error``: it is refused with ``out-of-range``."""
    import trio

    from bazaar.node.markets.registry import get_spec
    from bazaar.node.memnet import open_memory_network
    from bazaar.protocol.chainmsg import market_protocol

    async with open_memory_network(get_spec("collab").small_scenario, tmp_path / "net") as nodes:
        pool = next(n for n in nodes.values() if n.role == "pool")
        publisher = next(n for n in nodes.values() if n.role == "publisher")
        assert pool.engine is not None
        with trio.fail_after(120):
            summary = await pool.engine.play()
        r = summary["round"]
        empty = {"iteration": 0, "compute_capacity": [], "data_capacity": [], "compute_price": [], "data_price": [],
                 "phi": [], "theta": [], "order_deadline_ms": 0}
        await publisher.router.dispatch(pool.seal("collab/book", empty, round=r))
        final = pool.seal("collab/final", {"compute_left": [1.0], "data_left": [], "compute_price": [],
                                           "data_price": []}, round=r)
        serve = publisher.transport._handlers[market_protocol("collab")]  # type: ignore[attr-defined]
        with pytest.raises(RejectRequest) as info:
            await serve(pool.key.public, final.wire)
        assert info.value.reason == "out-of-range"
        await publisher.router.changes.wait_for(lambda: publisher.router.rejected.get("out-of-range", 0) >= 2, 20)
        assert "handler-error" not in publisher.router.rejected, publisher.router.rejected


def test_a_second_transaction_for_a_pending_nonce_replaces_the_first_and_prune_keeps_working() -> None:
    """4. Found by the soak (a hierarchical node died in ``sync_loop``): two transactions of one sender with one
    nonce (a node re-signs a nonce it gave up) were both kept by digest while the sender's queue kept one, so
    pruning them raised ``KeyError`` out of block import and took the node down. The newer now replaces the
    older."""
    from bazaar.ledger.txs import decode_tx
    from bazaar.node.mempool import Mempool
    from tests.ledger.helpers import NID, Net

    net = Net("pos")
    first = net.tx("alice", "transfer", nonce=1, to=net.acct("bob"), amount=5)
    second = net.tx("alice", "transfer", nonce=1, to=net.acct("carol"), amount=7)
    pool = Mempool()
    assert pool.add(decode_tx(first, NID), first, net.state)
    assert pool.add(decode_tx(second, NID), second, net.state)
    assert len(pool) == 1 and pool.ordered() == [second]
    net.commit([second])
    pool.prune(net.state)  # raised KeyError before the fix
    assert len(pool) == 0


def test_chain_verify_accepts_a_store_killed_before_its_genesis_was_written(tmp_path: Path) -> None:
    """5. Found by the kill-during-import run (kill 22 of 100): a node killed after its database file was
    created and before ``Chain`` wrote the genesis into it left a store that ``bazaar chain verify`` reported as
    broken ("no genesis in the database"); a restart was fine. An empty store verifies (nothing is lost), and
    ``finalized.json`` still catches a regression."""
    from bazaar.ledger.store import SqliteStore
    from bazaar.node.chaintools import record_finalized, verify_data_dir

    SqliteStore.in_dir(tmp_path).close()
    (tmp_path / "genesis.json").write_text("{}")
    report = verify_data_dir(tmp_path)
    assert report["ok"] and report["height"] == 0 and report["finalized_height"] == 0, report
    record_finalized(tmp_path, 3, b"\x01" * 32)
    assert not verify_data_dir(tmp_path)["ok"]  # a node that had finalized 3 blocks lost them


async def test_a_collab_device_refuses_a_regulation_without_two_entries_per_device(tmp_path: Path) -> None:
    """6. A ``collab/regulate`` from the pool with fewer ``directions`` or ``gaps`` than two per device made the
    device index past the list (``IndexError``, a ``handler-error``): it is refused with ``out-of-range``."""
    import trio

    from bazaar.node.markets.registry import get_spec
    from bazaar.node.memnet import open_memory_network

    async with open_memory_network(get_spec("collab").small_scenario, tmp_path / "net") as nodes:
        pool = next(n for n in nodes.values() if n.role == "pool")
        device = next(n for n in nodes.values() if n.role == "device")
        assert pool.engine is not None
        with trio.fail_after(120):
            summary = await pool.engine.play()
        n = len(pool.peers("device"))
        body = {"iteration": 1, "compute_price": [1.0] * n, "data_price": [1.0] * n, "directions": [],
                "gaps": [], "price_deadline_ms": 0}
        await device.router.dispatch(pool.seal("collab/regulate", body, round=summary["round"]))
        await device.router.changes.wait_for(lambda: device.router.rejected.get("out-of-range", 0) >= 1, 20)
        assert "handler-error" not in device.router.rejected, device.router.rejected


async def test_a_coded_refusal_in_a_spawned_task_is_a_warning_with_its_reason_not_a_task_failure(
        tmp_path: Path) -> None:
    """7. Found by the CI fuzz: a consumer mining on a lease the PoL driver does not hold it to (a second,
    conflicting lease signed by the CPP) had its own claim refused (``not-leased``) inside its spawned ``mine``
    task, which ``Node.spawn`` logged as ``task.failed`` at error level, as for a bug of ours."""
    import trio.testing

    from bazaar.node.markets.registry import get_spec
    from bazaar.node.memnet import open_memory_network
    from bazaar.protocol.errors import ProtocolError

    from .oracle import watch_events

    async def refused() -> None:
        raise ProtocolError("a claim from a key that leased no compute this round", reason="not-leased")

    async with open_memory_network(get_spec("hierarchical").small_scenario, tmp_path / "net") as nodes:
        node = next(iter(nodes.values()))
        with watch_events() as watch:
            node.spawn("mine", refused)
            await trio.testing.wait_all_tasks_blocked()
        assert watch.errors == [] and watch.reasons["not-leased"] == 1, (watch.errors, watch.reasons)


async def test_a_hierarchical_miner_bids_once_per_round_when_called_twice(tmp_path: Path) -> None:
    """8. Found by the market fuzz: two ``hierarchical/call`` messages for one round (the CCSP re-signing its
    call) ran the miner's slow handler twice; the first to see no MESP accept popped the round's pending lock,
    the second popped it again (``KeyError``, a ``handler-error``). A miner now bids once per round."""
    import trio.testing

    from bazaar.node.markets.registry import get_spec
    from bazaar.node.memnet import open_memory_network
    from bazaar.protocol.envelope import now_ms

    async with open_memory_network(get_spec("hierarchical").small_scenario, tmp_path / "net") as nodes:
        ccsp = next(n for n in nodes.values() if n.engine is not None)
        miner = next(n for n in nodes.values() if n.role == "miner")
        miners = [p.key for p in ccsp.peers("miner")]
        mesps = [p.key for p in ccsp.peers("mesp")]
        soon = now_ms() + 300
        call = {"params": "x", "miners": miners, "mesps": mesps, "bid_deadline_ms": soon, "bundle_deadline_ms": soon,
                "lower_deadline_ms": soon, "expires": 1000}
        sent: list[str] = []

        class Sent(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage() == "bid.sent":
                    sent.append(record.getMessage())

        logger = logging.getLogger("bazaar")
        handler, level = Sent(level=logging.INFO), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            for _ in range(2):
                await miner.router.dispatch(ccsp.seal("hierarchical/call", call, round=77))
            with trio.fail_after(30):
                while not sent and not miner.router.rejected.get("handler-error"):
                    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
                await trio.testing.wait_all_tasks_blocked(cushion=0.3)  # both handlers ran side by side
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        assert "handler-error" not in miner.router.rejected, miner.router.rejected
        assert len(sent) == 1
