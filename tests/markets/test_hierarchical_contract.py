"""The settlement contract every validator re-executes: a block whose escrow settlement differs from the signed
round it claims to settle is refused (`market-contract`), so no escrow moves without its signed result."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.txs import decode_tx, make_tx
from bazaar.node.markets.hierarchical import clearing
from bazaar.node.memnet import open_memory_network
from bazaar.protocol import codec
from bazaar.protocol.markets import hierarchical as msg
from bazaar.protocol.verified import forget_checked


async def test_a_forged_payment_or_a_settlement_without_its_record_is_refused(tmp_path: Path) -> None:
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        ccsp, mesp = nodes["ccsp"], nodes["mesp-0"]
        with trio.fail_after(60):
            summary = await ccsp.engine.play()
        assert summary["height"] == 1  # the first round's settlement is the first block: its parent is genesis
        block = mesp.chain.block(1)
        parent = type(mesp.chain.state).from_genesis(mesp.genesis)
        txs = [decode_tx(raw, mesp.network_id) for raw in block.txs]
        settles = [t for t in txs if t.type == "tx/escrow_settle" and t.body["amount"] > 0]
        assert settles
        role = mesp.app
        role.settlement_matches(parent, SimpleNamespace(txs=block.txs))  # the real block passes

        victim = settles[0]
        forged = make_tx(ccsp.key, ccsp.network_id, "escrow_settle",
                         {**victim.body, "amount": victim.body["amount"] + 1}, market=msg.MARKET,
                         round=victim.round).wire
        tampered = [forged if raw == victim.wire else raw for raw in block.txs]
        with pytest.raises(InvalidBlock, match="market-contract"):
            role.settlement_matches(parent, SimpleNamespace(txs=tampered))
        no_record = [raw for raw, t in zip(block.txs, txs, strict=True)
                     if not (t.type == "tx/record" and t.body["kind"] == msg.SETTLEMENT_RECORD)]
        with pytest.raises(InvalidBlock, match="market-contract"):
            role.settlement_matches(parent, SimpleNamespace(txs=no_record))


async def test_the_remembered_parse_and_clearing_equal_a_cold_one(tmp_path: Path) -> None:
    """Parsed offers and clearings are remembered per process by their exact inputs (docs/adr/0177): the warm
    settlement equals the cold one, and a caller that mutates its copy of a clearing does not change the next."""
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        ccsp, miner = nodes["ccsp"], nodes["miner-0"]
        with trio.fail_after(60):
            await ccsp.engine.play()
        block = miner.chain.block(1)
        rec = next(t for t in (decode_tx(raw, miner.network_id) for raw in block.txs)
                   if t.type == "tx/record" and t.body["kind"] == msg.SETTLEMENT_RECORD)
        role = miner.app
        for memo in (clearing.BIDS, clearing.OFFERS, clearing.CLEARED):
            memo.clear()
        forget_checked()
        cold_cleared, cold = role.settlement_of(rec.round, rec.body["data"])
        cold_cleared.miner_payments[:] = -1.0
        cold_cleared.book.clear()
        warm_cleared, warm = role.settlement_of(rec.round, rec.body["data"])
        assert clearing.OFFERS.hits >= 2 and clearing.CLEARED.hits >= 1
        assert warm == cold and warm_cleared.book and (warm_cleared.miner_payments >= 0).all()


async def test_the_validators_run_the_contract_on_every_block_a_miner_only_on_its_own(tmp_path: Path) -> None:
    """docs/adr/0179: CCSPs and MESPs (the validators) refuse a forged settlement whoever proposed it; a miner
    re-derives only a block it proposes itself (others' blocks are final only with the validators'
    certificate)."""
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        ccsp, mesp, miner = nodes["ccsp"], nodes["mesp-0"], nodes["miner-0"]
        with trio.fail_after(60):
            await ccsp.engine.play()
        block = mesp.chain.block(1)
        parent = type(mesp.chain.state).from_genesis(mesp.genesis)
        txs = [decode_tx(raw, mesp.network_id) for raw in block.txs]
        victim = next(t for t in txs if t.type == "tx/escrow_settle" and t.body["amount"] > 0)
        body = {**victim.body, "amount": victim.body["amount"] + 1}
        forged = make_tx(ccsp.key, ccsp.network_id, "escrow_settle", body, market=msg.MARKET, round=victim.round).wire
        tampered = [forged if raw == victim.wire else raw for raw in block.txs]
        by_other = SimpleNamespace(txs=tampered, header=SimpleNamespace(proposer=ccsp.key.public))
        by_miner = SimpleNamespace(txs=tampered, header=SimpleNamespace(proposer=miner.key.public))
        for node in (ccsp, mesp, miner):  # the contract itself refuses it on every role
            for b in (by_other, by_miner):
                with pytest.raises(InvalidBlock, match="market-contract"):
                    node.app.contract(parent, b)
        for validator in (ccsp, mesp):  # live, through the node's block hooks
            for b in (by_other, by_miner):
                with pytest.raises(InvalidBlock, match="market-contract"):
                    _market_check(validator)(parent, b)
        _market_check(miner)(parent, by_other)  # not ours: the certificate decides
        with pytest.raises(InvalidBlock, match="market-contract"):
            _market_check(miner)(parent, by_miner)


def _market_check(node: Any) -> Any:
    """The block check the node's market role put into its chain service's hooks."""
    (check,) = [h.check for h in node.chain.hooks if h.check is not None]
    return check


def test_a_settlement_record_too_large_for_one_transaction_is_split_in_order() -> None:
    offers, lowers = [bytes([i]) * 100 for i in range(3)], [b"L" * 40]
    one = clearing.record_parts(offers, lowers)
    assert one == [{"offers": offers, "lowers": lowers}]
    parts = clearing.record_parts(offers, lowers, cap=250)
    assert parts is not None and len(parts) >= 2
    assert all(len(codec.encode(p)) <= 250 for p in parts)
    assert clearing.joined_record(parts) == {"offers": offers, "lowers": lowers}
    assert clearing.record_parts(offers, [b"L" * 200], cap=250)[-1] == {"offers": [], "lowers": [b"L" * 200]}
    assert clearing.record_parts([b"x" * 300], lowers, cap=250) is None  # one offer alone does not fit


async def test_a_round_whose_record_comes_in_parts_settles_and_re_derives(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/adr/0182: with a record cap below two offers, the settlement goes out as one record per offer; every
    validator joins the parts and re-derives the round, and every node finalizes it."""
    from bazaar.node.markets.hierarchical import ccsp as ccsp_app

    monkeypatch.setattr(ccsp_app, "record_parts", lambda offers, lowers: clearing.record_parts(
        offers, lowers, cap=max(len(codec.encode({"offers": [w], "lowers": lowers})) for w in offers)))
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        ccsp = nodes["ccsp"]
        with trio.fail_after(60):
            summary = await ccsp.engine.play()
        assert summary["final"], summary
        block = ccsp.chain.block(summary["height"])
        records = [t for t in (decode_tx(raw, ccsp.network_id) for raw in block.txs)
                   if t.type == "tx/record" and t.body["kind"] == msg.SETTLEMENT_RECORD]
        assert len(records) >= 2
        moved = [t for t in (decode_tx(raw, ccsp.network_id) for raw in block.txs)
                 if t.type == "tx/escrow_settle" and t.body["amount"] > 0]
        assert moved  # the joined record re-derives a settlement that pays
        with trio.fail_after(30):
            for node in nodes.values():
                await node.chain.wait_for(lambda n=node: n.chain.finalized_height >= summary["height"], timeout=30)
