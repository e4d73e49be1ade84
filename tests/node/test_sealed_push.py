"""A sealed batch goes to the drawn proposer only (docs/adr/0176): it is gossiped when the push fails, or when
some of it is still pending at its sender ``sealed_gossip_delay_s`` later (the drawn proposer stayed silent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from bazaar.ledger import bls
from bazaar.ledger.chain import Chain
from bazaar.ledger.consensus import pos_proposer
from bazaar.ledger.store import MemoryStore
from bazaar.node.chain.service import ChainService
from bazaar.node.memnet import open_memory_network
from bazaar.protocol import codec
from bazaar.protocol.chainmsg import MSG_TXS, PROTO_TXS
from tests.fuzz.ledger_targets import _no_publish, _NoTransport
from tests.ledger.helpers import NID, Net

from .test_draw_driver import _scenario


def _count_txs_gossip(chain: Any) -> list[int]:
    """Wrap ``chain.publish``: the returned list grows by the number of transactions in each ``chain/txs``."""
    sent: list[int] = []
    publish = chain.publish

    async def counting(mtype: str, body: dict[str, Any]) -> None:
        if mtype == MSG_TXS:
            sent.append(len(body["txs"]))
        await publish(mtype, body)

    chain.publish = counting
    return sent


async def test_a_pushed_batch_that_lands_is_never_gossiped(tmp_path: Path) -> None:
    async with open_memory_network(_scenario(tmp_path, "pos"), tmp_path / "net") as nodes:
        ccsp = nodes["ccsp"]
        sent = _count_txs_gossip(ccsp.chain)
        pushed = 0
        for _ in range(3):
            pushed += pos_proposer(ccsp.chain.state) != ccsp.key.public
            with trio.fail_after(60):
                summary = await ccsp.engine.play()
            assert summary["final"], summary
        outcomes = ccsp.chain.sealed_pushes
        # each push (and each batch we draw ourselves for) ends once its block landed: nothing left to gossip
        await ccsp.chain.wait_for(lambda: sum(outcomes.values()) >= 3, 30)
        assert outcomes == {"landed": 3, "gossiped": 0, "failed": 0}, outcomes
        assert sent == [], f"{len(sent)} batch(es) gossiped after {pushed} direct pushes"


async def test_a_silent_proposer_that_took_the_push_gets_the_batch_gossiped_to_its_replacement(
        tmp_path: Path) -> None:
    async with open_memory_network(_scenario(tmp_path, "pos"), tmp_path / "net",
                                   byzantine={"mesp-0": ["withhold-block"]}) as nodes:
        ccsp, silent = nodes["ccsp"], nodes["mesp-0"]
        sent = _count_txs_gossip(ccsp.chain)
        for _ in range(8):  # until a round's first draw names the withholding MESP
            drawn = pos_proposer(ccsp.chain.state)
            served = silent.chain.direct_txs_served
            height = ccsp.chain.height + 1
            with trio.fail_after(90):
                await ccsp.engine.play()
                # each fallback attempt is a new draw by stake, so the withholder may be drawn again (1 in 3 here)
                # and the block come after the round's deadline: wait for it rather than for the round's summary
                await ccsp.chain.wait_for(lambda h=height: ccsp.chain.finalized_height >= h, 60)
            if drawn != silent.key.public:
                continue
            block = ccsp.chain.block(height)
            assert block.header.proposer != silent.key.public
            assert block.header.consensus.get("attempt", 0) >= 1
            assert silent.chain.direct_txs_served > served  # it took the push, then kept silent
            assert sent, "the replacement proposer got the batch from the gossiped copy"
            return
        raise AssertionError("the withholding MESP was never drawn first in 8 rounds")


async def test_a_seal_lasts_until_a_block_carries_its_batch() -> None:
    """The batch pushed to the drawn proposer may arrive before the proposer imported the block before it: that
    import must not drop the seal (the proposer would wait a quiet window for nothing, ADR 0176)."""
    net = Net("pos")
    chain = Chain(MemoryStore(), net.genesis)
    me = net.validators[0]
    svc = ChainService(chain, key=me, bls_secret=bls.bls_keygen(me.seed),
                       transport=_NoTransport(), publish=_no_publish, network_id=NID)  # type: ignore[arg-type]
    sealed = net.tx("alice", "transfer", to=net.acct("bob"), amount=5)
    other = net.tx("carol", "transfer", to=net.acct("bob"), amount=7)
    await svc.serve_txs(net.acct("alice"), codec.encode({"txs": [sealed], "seal": True}))
    assert svc.sealed
    first, _ = net.commit([other])  # the block before ours arrives after the push
    assert await svc.import_block(first, announce=False)
    assert svc.sealed  # still: its batch is pending
    second, _ = net.commit([sealed])
    assert await svc.import_block(second, announce=False)
    assert not svc.sealed  # the block carried it


async def test_a_batch_pushed_to_a_node_not_drawn_next_is_passed_on_once_to_the_one_that_is(tmp_path: Path) -> None:
    """A sender that had not imported the block its drawn proposer just made pushes to the wrong node: that node
    passes the batch on to the node drawn now, once (docs/adr/0195), and the next block carries it."""
    async with open_memory_network(_scenario(tmp_path, "pos"), tmp_path / "net") as nodes:
        with trio.fail_after(60):
            summary = await nodes["ccsp"].engine.play()
        assert summary["final"], summary
        drawn = pos_proposer(nodes["ccsp"].chain.state)
        stale = next(n for n in nodes.values() if n.key.public != drawn)  # not drawn for the next block
        sender = next(n for n in nodes.values() if n.key.public not in (drawn, stale.key.public))
        tx = sender.chain.sign_tx("transfer", {"to": stale.key.public, "amount": 1}).wire
        answer = await sender.transport.request(stale.key.public, PROTO_TXS,
                                                codec.encode({"txs": [tx], "seal": True}), timeout=10)
        assert codec.decode(answer) == {"added": 1} and stale.chain.sealed_forwards == 1
        proposer = next(n for n in nodes.values() if n.key.public == drawn)
        with trio.fail_after(30):  # the drawn node got it and seals a block with it at once
            await proposer.chain.changes.wait_for(
                lambda: any(tx in (proposer.chain.block(h).txs if proposer.chain.block(h) else ())
                            for h in range(1, proposer.chain.height + 1)), timeout=25)
        forwarded = codec.encode({"txs": [tx], "seal": True, "fwd": True})  # a forwarded batch is not passed on
        before = stale.chain.sealed_forwards
        await sender.transport.request(stale.key.public, PROTO_TXS, forwarded, timeout=10)
        assert stale.chain.sealed_forwards == before


async def test_own_pending_transactions_are_gossiped_again_when_asked() -> None:
    """After a silent drawn proposer the driver gossips our own pending transactions again (docs/adr/0195)."""
    net = Net("pos")
    me = net.keys["alice"]
    svc = ChainService(Chain(MemoryStore(), net.genesis), key=me, bls_secret=bls.bls_keygen(me.seed),
                       transport=_NoTransport(), publish=_no_publish, network_id=NID)  # type: ignore[arg-type]
    sent = _count_txs_gossip(svc)
    assert await svc.regossip_own() == 0 and sent == []
    svc.add_tx(net.tx("carol", "transfer", to=net.acct("bob"), amount=7))  # a peer's: not ours to spread again
    svc.add_tx(net.tx("alice", "transfer", to=net.acct("bob"), amount=5))
    assert await svc.regossip_own() == 1 and sent == [1]



def _drawn_service() -> tuple[ChainService, Net, list[bytes], list[tuple[str, bytes, bytes]]]:
    """A chain service drawn to propose the next block (``drawn[0]``: who is drawn), connected to the second
    validator, whose spawned sends are recorded as ``(name, peer, body)``."""
    net = Net("pos")
    me, nxt = net.validators[0], net.validators[1]
    svc = ChainService(Chain(MemoryStore(), net.genesis), key=me, bls_secret=bls.bls_keygen(me.seed),
                       transport=_NoTransport(), publish=_no_publish, network_id=NID)  # type: ignore[arg-type]
    drawn = [me.public, nxt.public]
    svc.next_proposer = lambda: drawn[0]
    spawned: list[tuple[str, bytes, bytes]] = []
    svc.spawn = lambda name, fn, peer, body: spawned.append((name, peer, body))
    svc.transport.peers = lambda: [nxt.public]  # type: ignore[method-assign]
    return svc, net, drawn, spawned


async def test_a_batch_pushed_to_the_drawn_proposer_that_its_block_left_out_is_passed_on_after_it() -> None:
    """docs/adr/0211: at 20 processes a sealed batch reached the drawn proposer while it was building its block; the
    block left it out, the node drawn next did not have it, and it waited a second at its sender for the gossip."""
    svc, net, drawn, spawned = _drawn_service()
    sealed = net.tx("alice", "transfer", to=net.acct("bob"), amount=5)
    other = net.tx("carol", "transfer", to=net.acct("bob"), amount=7)
    await svc.serve_txs(net.acct("alice"), codec.encode({"txs": [sealed], "seal": True}))
    assert spawned == []  # ours to propose: held
    block, _ = net.commit([other])  # our block, built before the batch came, leaves it out
    drawn[0] = drawn[1]
    assert await svc.import_block(block, announce=False)
    assert [(name, peer) for name, peer, _ in spawned] == [("txs.forward", drawn[1])]
    assert codec.decode(spawned[0][2]) == {"txs": [sealed], "seal": True, "fwd": True}
    assert svc.sealed_forwards == 1
    second, _ = net.commit([sealed])
    assert await svc.import_block(second, announce=False)
    assert len(spawned) == 1  # passed on once


async def test_a_held_batch_that_the_next_block_carries_is_not_passed_on() -> None:
    svc, net, drawn, spawned = _drawn_service()
    sealed = net.tx("alice", "transfer", to=net.acct("bob"), amount=5)
    await svc.serve_txs(net.acct("alice"), codec.encode({"txs": [sealed], "seal": True}))
    block, _ = net.commit([sealed])
    drawn[0] = drawn[1]
    assert await svc.import_block(block, announce=False)
    assert spawned == [] and svc.sealed_forwards == 0
