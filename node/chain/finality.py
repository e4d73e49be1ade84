"""Finality of one node's chain: our attestations, counting others', certificates, and fork choice by
certificate (2/3 of the stake finalized another block at a height we hold: rewind and sync it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from bazaar.ledger import errors as lerr
from bazaar.ledger.block import Block
from bazaar.ledger.finality import Attestation, Certificate, FinalityTracker, make_attestation, verify_certificate
from bazaar.protocol import Envelope, ProtocolError, codec
from bazaar.protocol.chainmsg import MAX_CERT, MSG_ATTEST, MSG_CERT, PROTO_ATTEST, PROTO_CERT
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.transport import PeerUnavailable, RejectRequest, RemoteRejected

from ..logs import Events
from ..push import push_to_peers
from ..reasons import NodeReason

if TYPE_CHECKING:
    from .service import ChainService

_events = Events("chain")
ATTEST_WINDOW = 64
"""Votes for heights further than this past our head are not counted (their tallies would be unbounded)."""
ATTEST_DIRECT_TIMEOUT = 5.0
"""Deadline of one direct attestation request; on failure the vote is gossiped."""
CERT_PUSH_TIMEOUT = 2.0
"""Deadline of one certificate push from the aggregator; when any fails, the certificate is gossiped."""
FINAL_AT_KEPT = 64
"""Heights whose finality time :attr:`Finality.final_at` keeps."""
ATTEST_FALLBACK_S = 10.0
"""A vote sent directly whose block is not final this long after is gossiped too (the proposer died or its
certificate was lost): finality never depends on one node."""


class Finality:
    """Attestations in, certificates out; certificates that arrive before their block wait in ``pending``."""

    def __init__(self, svc: ChainService) -> None:
        self.svc = svc
        self.tracker = FinalityTracker(svc.network_id)
        self.pending: dict[int, Certificate] = {}
        self.rewinds = 0
        self.on_final: Callable[[int, bytes], None] | None = None
        """Called with (height, hash) when our finalized height advances (the node notes it durably)."""
        self.pushes = {"pushed": 0, "gossiped": 0}
        """Certificates we pushed to peers as the aggregator, and how often we also gossiped one (``GET /status``
        ``cert_pushes``, docs/adr/0181)."""
        self.final_at: dict[int, float] = {}
        """Wall-clock time (``time.time()``) at which each recent height became final here (the last
        ``FINAL_AT_KEPT``): ``GET /status`` ``final_at_ms``, read by ``bazaar round`` to time a round to finality on
        every node without its polling in the figure (docs/adr/0156)."""

    def direct(self, height: int) -> bool:
        """Whether votes go to the network's aggregator by direct request (``/bazaar/attest/1``) and the
        aggregator pushes the certificate its tally forms, rather than every vote being gossiped to every node: the
        scenario's ``[chain] votes`` (docs/adr/0148, 0181, 0189). Gossip costs every node a receive, a check and a
        relay of every vote (libp2p.md §3); one request per validator and one push per node cost far less. A vote
        whose request fails, or whose block is not final ``ATTEST_FALLBACK_S`` later, is gossiped as well."""
        return self.svc.votes == "aggregator" and self.svc.spawn is not None and self.svc.aggregator is not None

    async def attest(self, block: Block) -> None:
        if not self.svc.sync.synced:  # a (re)started node votes only once it holds the certified head
            return
        if self.svc.key.public not in self.svc.validator_set(block.header.height):
            return
        svc = self.svc
        att = make_attestation(svc.bls_secret, svc.key.public, svc.network_id, block.header.height, block.hash)
        if self.direct(att.height):
            self.count(att)
            if svc.aggregator != svc.key.public and svc.aggregator is not None and svc.spawn is not None:
                svc.spawn("attest.direct", self._send_direct, att, svc.aggregator)
            return
        await self._gossip(att)
        self.count(att)

    async def _gossip(self, att: Attestation) -> None:
        await self.svc.publish(MSG_ATTEST, {"height": att.height, "hash": att.block_hash, "sig": att.signature})

    async def _send_direct(self, att: Attestation, aggregator: bytes) -> None:
        """Our vote to the aggregator; gossiped instead when the request fails, and as well when the block is
        not final ``ATTEST_FALLBACK_S`` later."""
        svc = self.svc
        body = codec.encode({"height": att.height, "hash": att.block_hash, "sig": att.signature})
        try:
            await svc.transport.request(aggregator, PROTO_ATTEST, body, timeout=ATTEST_DIRECT_TIMEOUT)
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError) as err:
            _events.info("attestation.direct_failed", height=att.height, error=repr(err)[:200])
            await self._gossip(att)
            return
        try:
            await svc.wait_for(lambda: svc.chain.finalized_height >= att.height, ATTEST_FALLBACK_S)
        except trio.TooSlowError:
            held = svc.chain.block(att.height)
            if held is not None and held.hash == att.block_hash:  # still our head's block: help it finalize
                _events.info("attestation.gossip_fallback", height=att.height)
                await self._gossip(att)

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        """``/bazaar/attest/1`` handler: a validator's vote ``{height, hash, sig}`` sent to us, the aggregator; the
        validator is the authenticated peer. Counted like a gossiped one (the certificate, when it forms, is
        gossiped); answers ``{counted}``."""
        try:
            body = codec.decode(request, max_size=256)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if (not isinstance(body, dict) or set(body) != {"height", "hash", "sig"}
                or not isinstance(body["height"], int) or isinstance(body["height"], bool) or body["height"] < 1
                or not isinstance(body["hash"], bytes) or len(body["hash"]) != 32
                or not isinstance(body["sig"], bytes) or len(body["sig"]) != 96):
            raise RejectRequest(ProtocolReason.MALFORMED)
        att = Attestation(body["height"], body["hash"], peer, body["sig"])
        head = self.svc.chain.height
        if att.height > head + ATTEST_WINDOW:
            raise RejectRequest(NodeReason.TOO_FAR)
        counted = self.count(att)
        if counted:
            self.svc.highest_seen = max(self.svc.highest_seen, min(att.height, head + 1))
        return codec.encode({"counted": counted})

    async def on_attestation(self, env: Envelope) -> None:
        """Gossip handler: a validator's vote for a block. Believed (it may make us sync) only once its signer
        is a registered validator, and then only as far as the block after our head: one vote proves no more
        than that its signer holds a block we lack (a valid signature would not prove more: a validator can sign
        any hash)."""
        body = env.body
        att = Attestation(body["height"], body["hash"], env.sender, body["sig"])
        head = self.svc.chain.height
        if att.height > head + ATTEST_WINDOW:
            _events.warning("attestation.rejected", reason=NodeReason.TOO_FAR, height=att.height, head=head)
            return
        if self.count(att):
            self.svc.highest_seen = max(self.svc.highest_seen, min(att.height, head + 1))

    def count(self, att: Attestation) -> bool:
        """Count a vote; whether it was counted (a registered validator's; its signature is checked when its
        block's votes reach a quorum, or at once if it is a second vote or its validator sent a bad one before,
        docs/adr/0146)."""
        if att.height <= self.svc.chain.finalized_height:
            return False
        tracker = self.tracker
        try:
            cert = tracker.add(att, self.svc.validator_set(att.height))
        except lerr.LedgerError as err:
            _events.warning("attestation.rejected", reason=getattr(err, "reason", "invalid"), detail=str(err)[:200])
            return False
        finally:
            for bad in tracker.rejected:
                _events.warning("attestation.rejected", reason=lerr.LedgerReason.BAD_SIGNATURE, height=bad.height,
                                validator=bad.validator.hex()[:16])
            tracker.rejected.clear()
        if cert is not None:
            self.finalize(cert)
            self._announce(cert)
        return True

    def _announce(self, cert: Certificate) -> None:
        """Spread a certificate our own tally formed, when votes come to us directly (we are the aggregator: no
        other node holds the votes to form it)."""
        if self.svc.aggregator != self.svc.key.public or not self.direct(cert.height) or self.svc.spawn is None:
            return
        self.svc.spawn("cert.announce", self._push, cert.encode())

    async def _push(self, raw: bytes) -> None:
        """Send the certificate to every connected peer (``/bazaar/cert/1``, :func:`push_to_peers`). It is gossiped
        as well when a push failed or a node of the network is not connected to us, so no node depends on the
        pushes alone (docs/adr/0181)."""
        svc = self.svc
        pushed = await push_to_peers(svc.transport, svc.key.public, PROTO_CERT, raw, timeout=CERT_PUSH_TIMEOUT)
        self.pushes["pushed"] += pushed.landed
        if pushed.short(svc.network_size):
            self.pushes["gossiped"] += 1
            _events.info("certificate.gossiped", failed=pushed.failed, pushed=pushed.landed)
            await svc.publish(MSG_CERT, {"cert": raw})

    async def serve_certificate(self, peer: bytes, request: bytes) -> bytes:
        """``/bazaar/cert/1`` handler: a certificate pushed by the aggregator (self-authenticating: verified
        against the validators we know before it is believed)."""
        if len(request) > MAX_CERT:
            raise RejectRequest(ProtocolReason.OVERSIZE)
        try:
            cert = Certificate.decode(request)
        except lerr.LedgerError as err:
            raise RejectRequest(ProtocolReason.MALFORMED) from err
        self.take(cert)
        return b""

    def finalize(self, cert: Certificate) -> None:
        if cert.height > self.svc.chain.height:
            self.pending[cert.height] = cert
            return
        before = self.svc.chain.finalized_height
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
            self._stamp(before, self.svc.chain.finalized_height)
            _events.info("block.final", height=cert.height, hash=cert.block_hash, signers=len(cert.signers))
            if self.on_final is not None:
                self.on_final(cert.height, cert.block_hash)
            self.tracker.prune(cert.height + 1)
            self.svc.changes.notify()

    def _stamp(self, before: int, after: int) -> None:
        """Note now as the time heights ``before+1 … after`` became final (the kept window only)."""
        now = time.time()
        for h in range(max(before + 1, after - FINAL_AT_KEPT + 1), after + 1):
            self.final_at[h] = now
        for h in [h for h in self.final_at if h <= after - FINAL_AT_KEPT]:
            del self.final_at[h]

    def final_at_status(self) -> dict[str, int]:
        """``{"<height>": unix ms}`` of the kept heights (``GET /status`` ``final_at_ms``)."""
        return {str(h): int(t * 1000) for h, t in sorted(self.final_at.items())}

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
        self.drop_from(cert.height, cert.block_hash)
        self.pending[cert.height] = cert
        self.svc.highest_seen = max(self.svc.highest_seen, cert.height)
        self.svc.sync.saw_certified(cert.height)
        self.svc.changes.notify()

    def drop_from(self, height: int, certified: bytes, **fields: object) -> int:
        """Fork choice: drop our non-final blocks from ``height`` up, for the certified block ``certified`` (at that
        height, or a descendant of the block there: docs/adr/0196); counted in ``rewinds`` and logged. Returns how
        many blocks were removed."""
        ours = self.svc.chain.block(height)
        removed = self.svc.chain.rewind(height - 1)
        self.rewinds += 1
        _events.warning("chain.rewound", height=height, removed=removed, dropped=ours.hash if ours else None,
                        certified=certified, **fields)
        return removed

    def cert_ok(self, cert: Certificate, block: Block) -> bool:
        try:
            verify_certificate(cert, self.svc.validator_set(cert.height), self.svc.network_id)
        except lerr.LedgerError:
            return False
        return cert.height == block.header.height and cert.block_hash == block.hash

    async def on_certificate(self, env: Envelope) -> None:
        """Gossip handler: an aggregated finality certificate."""
        self.take(Certificate.decode(env.body["cert"]))

    def take(self, cert: Certificate) -> None:
        """A certificate from a peer (gossiped or pushed)."""
        if cert.height <= self.svc.chain.finalized_height:
            return
        try:  # a height is believed only from a certificate that verifies against the validators we know
            verify_certificate(cert, self.svc.validator_set(cert.height), self.svc.network_id)
            self.svc.highest_seen = max(self.svc.highest_seen, cert.height)
            self.svc.sync.saw_certified(cert.height)
        except lerr.LedgerError as err:
            _events.warning("certificate.unverified", height=cert.height, reason=getattr(err, "reason", "invalid"))
        self.finalize(cert)  # checked again against its block when we hold it (``pending`` is bounded)

