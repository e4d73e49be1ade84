"""Finality of one node's chain: our attestations, counting others', certificates, and fork choice by
certificate (2/3 of the stake finalized another block at a height we hold: rewind and sync it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bazaar.ledger import errors as lerr
from bazaar.ledger.block import Block
from bazaar.ledger.finality import Attestation, Certificate, FinalityTracker, make_attestation, verify_certificate
from bazaar.protocol import Envelope
from bazaar.protocol.chainmsg import MSG_ATTEST

from ..logs import Events
from ..reasons import NodeReason

if TYPE_CHECKING:
    from .service import ChainService

_events = Events("chain")
ATTEST_WINDOW = 64
"""Votes for heights further than this past our head are not counted (their tallies would be unbounded)."""


class Finality:
    """Attestations in, certificates out; certificates that arrive before their block wait in ``pending``."""

    def __init__(self, svc: ChainService) -> None:
        self.svc = svc
        self.tracker = FinalityTracker(svc.network_id)
        self.pending: dict[int, Certificate] = {}
        self.rewinds = 0
        self.on_final: Callable[[int, bytes], None] | None = None
        """Called with (height, hash) when our finalized height advances (the node notes it durably)."""

    async def attest(self, block: Block) -> None:
        if not self.svc.sync.synced:  # a (re)started node votes only once it holds the certified head
            return
        if self.svc.key.public not in self.svc.validator_set(block.header.height):
            return
        svc = self.svc
        att = make_attestation(svc.bls_secret, svc.key.public, svc.network_id, block.header.height, block.hash)
        await self.svc.publish(MSG_ATTEST, {"height": att.height, "hash": att.block_hash, "sig": att.signature})
        self.count(att)

    async def on_attestation(self, env: Envelope) -> None:
        """Gossip handler: a validator's vote for a block. Believed (it may make us sync) only once its signer
        is a registered validator and its signature verifies, and then only as far as the block after our
        head: one vote proves no more than that its signer holds a block we lack."""
        body = env.body
        att = Attestation(body["height"], body["hash"], env.sender, body["sig"])
        head = self.svc.chain.height
        if att.height > head + ATTEST_WINDOW:
            _events.warning("attestation.rejected", reason=NodeReason.TOO_FAR, height=att.height, head=head)
            return
        if self.count(att):
            self.svc.highest_seen = max(self.svc.highest_seen, min(att.height, head + 1))

    def count(self, att: Attestation) -> bool:
        """Count a vote; whether it verified (a registered validator's valid signature)."""
        if att.height <= self.svc.chain.finalized_height:
            return False
        try:
            cert = self.tracker.add(att, self.svc.validator_set(att.height))
        except lerr.LedgerError as err:
            _events.warning("attestation.rejected", reason=getattr(err, "reason", "invalid"), detail=str(err)[:200])
            return False
        if cert is not None:
            self.finalize(cert)
        return True

    def finalize(self, cert: Certificate) -> None:
        if cert.height > self.svc.chain.height:
            self.pending[cert.height] = cert
            return
        try:
            advanced = self.svc.chain.add_certificate(cert)
        except lerr.InvalidAttestation as err:
            if err.reason == "wrong-block" and self._certifies_height(cert):
                self._switch_to(cert)
            else:
                _events.warning("certificate.rejected", height=cert.height, reason=err.reason,
                                detail=str(err)[:200])
            return
        except lerr.LedgerError as err:
            _events.warning("certificate.rejected", height=cert.height, detail=str(err)[:200])
            return
        if advanced:
            _events.info("block.final", height=cert.height, hash=cert.block_hash, signers=len(cert.signers))
            if self.on_final is not None:
                self.on_final(cert.height, cert.block_hash)
            self.tracker.prune(cert.height + 1)
            self.svc.changes.notify()

    def _certifies_height(self, cert: Certificate) -> bool:
        """Whether ``cert`` is a valid certificate for some block at a height we hold unfinalized."""
        if not self.svc.chain.finalized_height < cert.height <= self.svc.chain.height:
            return False
        try:
            verify_certificate(cert, self.svc.validator_set(cert.height), self.svc.network_id)
        except lerr.LedgerError:
            return False
        return True

    def _switch_to(self, cert: Certificate) -> None:
        """Fork choice: 2/3 of the stake finalized another block at a height we hold unfinalized, so drop our
        tail from that height and sync the certified block from peers."""
        ours = self.svc.chain.block(cert.height)
        removed = self.svc.chain.rewind(cert.height - 1)
        self.rewinds += 1
        _events.warning("chain.rewound", height=cert.height, removed=removed, dropped=ours.hash if ours else None,
                        certified=cert.block_hash)
        self.pending[cert.height] = cert
        self.svc.highest_seen = max(self.svc.highest_seen, cert.height)
        self.svc.sync.saw_certified(cert.height)
        self.svc.changes.notify()

    def cert_ok(self, cert: Certificate, block: Block) -> bool:
        try:
            verify_certificate(cert, self.svc.validator_set(cert.height), self.svc.network_id)
        except lerr.LedgerError:
            return False
        return cert.height == block.header.height and cert.block_hash == block.hash

    async def on_certificate(self, env: Envelope) -> None:
        """Gossip handler: an aggregated finality certificate."""
        cert = Certificate.decode(env.body["cert"])
        if cert.height <= self.svc.chain.finalized_height:
            return
        try:  # a height is believed only from a certificate that verifies against the validators we know
            verify_certificate(cert, self.svc.validator_set(cert.height), self.svc.network_id)
            self.svc.highest_seen = max(self.svc.highest_seen, cert.height)
            self.svc.sync.saw_certified(cert.height)
        except lerr.LedgerError as err:
            _events.warning("certificate.unverified", height=cert.height, reason=getattr(err, "reason", "invalid"))
        self.finalize(cert)  # checked again against its block when we hold it (``pending`` is bounded)

