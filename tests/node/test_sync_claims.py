"""A peer's claim of a height cannot start a sync storm (issue 12, defect 2): votes are believed only once
their signer is a registered validator and the signature verifies, only as far as the block after our head,
and a sweep that no peer substantiates forgets the claim; a peer that had nothing is not asked again at once."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from bazaar.ledger.finality import make_attestation
from bazaar.protocol import KeyPair, seal
from bazaar.protocol.chainmsg import MSG_ATTEST, MSG_CERT, PROTO_CERT

from .harness import memory_net, small_scenario

TOP = 2**63 - 1


async def test_a_fake_attestation_is_not_believed(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        victim, other = nodes["consumer-0"], nodes["consumer-1"]
        svc = victim.chain
        seen = svc.highest_seen
        stranger = KeyPair(os.urandom(32))  # not a validator: any signature
        fake = make_attestation(other.bls_secret, stranger.public, victim.network_id, TOP, bytes(32))
        await svc.on_attestation(seal(stranger, victim.network_id, MSG_ATTEST,
                                      {"height": TOP, "hash": bytes(32), "sig": fake.signature}, seq=1))
        assert svc.highest_seen == seen
        validators = svc.validator_set(svc.height + 1)
        signer = next(n for n in nodes.values() if n.key.public in validators and n is not victim)
        forged = make_attestation(victim.bls_secret, signer.key.public, victim.network_id, svc.height + 1,
                                  bytes(32))  # a validator's account, someone else's BLS key
        await svc.on_attestation(seal(signer.key, victim.network_id, MSG_ATTEST,
                                      {"height": svc.height + 1, "hash": bytes(32), "sig": forged.signature},
                                      seq=1))
        # A registered validator's own vote (its envelope is signed by its account) is believed one past our
        # head before its BLS signature is checked, as an unverified block is: a validator can sign any hash, so
        # a valid signature would prove no more; its signature is checked when its block's votes reach a quorum
        # (docs/adr/0146), and a height nobody substantiates costs one sync sweep.
        assert svc.highest_seen == svc.height + 1
        svc.highest_seen = seen
        far = make_attestation(signer.bls_secret, signer.key.public, victim.network_id, TOP, bytes(32))
        await svc.on_attestation(seal(signer.key, victim.network_id, MSG_ATTEST,
                                      {"height": TOP, "hash": bytes(32), "sig": far.signature}, seq=2))
        assert svc.highest_seen == seen  # a real validator's vote for an absurd height is not counted either
        near = make_attestation(signer.bls_secret, signer.key.public, victim.network_id, svc.height + 5, bytes(32))
        await svc.on_attestation(seal(signer.key, victim.network_id, MSG_ATTEST,
                                      {"height": svc.height + 5, "hash": bytes(32), "sig": near.signature}, seq=3))
        assert svc.highest_seen == svc.height + 1  # a valid vote shows we lack a block, no more


async def test_an_unsubstantiated_height_costs_one_sweep(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        svc = nodes["consumer-0"].chain
        svc.highest_seen = TOP  # as if a lie had got in
        peers = svc.transport.peers()
        before = svc.sync.requests
        await svc.sync.sweep(peers, 0, behind=True)
        assert svc.highest_seen <= svc.finalized_height  # no peer had it: the claim is forgotten
        svc.highest_seen = TOP  # the liar repeats itself at once
        await svc.sync.sweep(peers, 1, behind=True)
        for peer in peers:
            await svc.sync_from(peer)
        assert svc.sync.requests - before <= len(peers)  # each peer is asked at most once for it


async def test_a_missing_certificate_is_synced_after_one_quiet_tick_not_at_once(tmp_path: Path) -> None:
    """A block waits a moment for its certificate: the sync loop goes to its peers for it only once the finalized
    height has not moved for a whole tick (docs/adr/0193), and then it does catch up."""
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        deaf = nodes["consumer-2"]

        async def ignore(*_: object) -> bytes:
            return b""

        deaf.transport.set_handler(PROTO_CERT, ignore)  # neither the aggregator's push nor the gossiped copy
        deaf.router.handlers[MSG_CERT] = ignore
        with trio.fail_after(60):
            summary = await nodes["cpp"].engine.play()
            height = summary["height"]
            await deaf.chain.changes.wait_for(lambda: deaf.chain.height >= height, timeout=20)
        sync = deaf.chain.sync
        assert deaf.chain.finalized_height < height <= deaf.chain.highest_seen
        sync._stuck_at = None
        assert not sync.behind()  # the certificate may be on its way
        assert sync.behind()  # a tick later nothing moved: go and get it
        with trio.fail_after(30):  # the node's own loop (every 2 s) syncs it from a peer
            await deaf.chain.changes.wait_for(lambda: deaf.chain.finalized_height >= height, timeout=25)
