"""Attestations, BLS finality certificates and the tracker that forms them (docs/ledger.md, finality).

A validator attests to a block by BLS-signing ``"bazaar/attest/v1\\0" || network_id || 0x00 || height (8 B) ||
block_hash``. Once validators holding at least 2/3 of the weight (``3·signed ≥ 2·total``, integer arithmetic)
have attested to the same block, their signatures are aggregated into one :class:`Certificate`; the block and
its ancestors are then final. The weights are those of the parent state (the validator set that was current
when the block was proposed): ``State.validator_set()`` of height ``h − 1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bazaar.protocol import codec
from bazaar.protocol.errors import ProtocolError

from . import bls
from .errors import InvalidAttestation, LedgerReason

ATTEST_DOMAIN = b"bazaar/attest/v1\x00"
MAX_SIGNERS = 10_000

ValidatorSet = Mapping[bytes, tuple[bytes, int]]
"""``account -> (BLS public key, weight)``."""


def attestation_message(network_id: str, height: int, block_hash: bytes) -> bytes:
    """The bytes every validator signs for block ``block_hash`` at ``height``."""
    return ATTEST_DOMAIN + network_id.encode() + b"\x00" + height.to_bytes(8, "big") + block_hash


def reaches_quorum(signed: int, total: int) -> bool:
    """Whether ``signed`` weight is at least two thirds of ``total`` (and ``total > 0``)."""
    return total > 0 and 3 * signed >= 2 * total


def _check_fields(height: Any, block_hash: Any, what: str) -> None:
    if isinstance(height, bool) or not isinstance(height, int) or height < 1:
        raise InvalidAttestation(LedgerReason.MALFORMED, f"{what}.height must be a positive int")
    if not isinstance(block_hash, bytes) or len(block_hash) != 32:
        raise InvalidAttestation(LedgerReason.MALFORMED, f"{what}.block_hash must be 32 bytes")


@dataclass(frozen=True)
class Attestation:
    """One validator's vote for one block."""

    height: int
    block_hash: bytes
    validator: bytes
    signature: bytes

    def encode(self) -> bytes:
        """Canonical ``{"height", "block", "validator", "sig"}``."""
        return codec.encode(
            {
                "height": self.height,
                "block": self.block_hash,
                "validator": self.validator,
                "sig": self.signature,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Attestation:
        """Decode (not verify) an attestation from a peer.

        Raises:
            InvalidAttestation: reason ``malformed``.
        """
        try:
            m = codec.decode_canonical(raw, max_size=1024)
        except ProtocolError as err:
            raise InvalidAttestation(LedgerReason.MALFORMED, str(err)) from err
        if not isinstance(m, dict) or set(m) != {"height", "block", "validator", "sig"}:
            raise InvalidAttestation(LedgerReason.MALFORMED, "attestation fields")
        _check_fields(m["height"], m["block"], "attestation")
        if not isinstance(m["validator"], bytes) or len(m["validator"]) != 32:
            raise InvalidAttestation(LedgerReason.MALFORMED, "validator must be 32 bytes")
        if not isinstance(m["sig"], bytes) or len(m["sig"]) != bls.SIG_LEN:
            raise InvalidAttestation(LedgerReason.MALFORMED, "sig must be 96 bytes")
        return cls(m["height"], m["block"], m["validator"], m["sig"])


def make_attestation(
    bls_secret: int, validator: bytes, network_id: str, height: int, block_hash: bytes
) -> Attestation:
    """Sign an attestation for ``block_hash`` at ``height`` as ``validator`` (its account)."""
    sig = bls.sign(bls_secret, attestation_message(network_id, height, block_hash))
    return Attestation(height, block_hash, validator, sig)


def verify_attestation(att: Attestation, validators: ValidatorSet, network_id: str) -> int:
    """Verify one attestation; returns the validator's weight.

    Raises:
        InvalidAttestation: ``unknown-validator`` (not in the set, or zero weight) or ``bad-signature``.
    """
    entry = validators.get(att.validator)
    if entry is None or entry[1] <= 0:
        raise InvalidAttestation(LedgerReason.UNKNOWN_VALIDATOR, f"{att.validator.hex()[:16]} is not a validator")
    pubkey, weight = entry
    if not bls.verify(pubkey, attestation_message(network_id, att.height, att.block_hash), att.signature):
        raise InvalidAttestation(LedgerReason.BAD_SIGNATURE, "attestation signature does not verify")
    return weight


@dataclass(frozen=True)
class Certificate:
    """Aggregated attestations of ≥ 2/3 of the weight to one block."""

    height: int
    block_hash: bytes
    signers: tuple[bytes, ...]
    aggregate: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))

    def encode(self) -> bytes:
        """Canonical ``{"height", "block", "signers", "agg"}``."""
        return codec.encode(
            {
                "height": self.height,
                "block": self.block_hash,
                "signers": list(self.signers),
                "agg": self.aggregate,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Certificate:
        """Decode (not verify) a certificate.

        Raises:
            InvalidAttestation: reason ``malformed``.
        """
        try:
            m = codec.decode_canonical(raw, max_size=64 + 40 * MAX_SIGNERS)
        except ProtocolError as err:
            raise InvalidAttestation(LedgerReason.MALFORMED, str(err)) from err
        if not isinstance(m, dict) or set(m) != {"height", "block", "signers", "agg"}:
            raise InvalidAttestation(LedgerReason.MALFORMED, "certificate fields")
        _check_fields(m["height"], m["block"], "certificate")
        signers = m["signers"]
        if not isinstance(signers, list) or not all(isinstance(s, bytes) and len(s) == 32 for s in signers):
            raise InvalidAttestation(LedgerReason.MALFORMED, "signers must be a list of 32-byte accounts")
        if not isinstance(m["agg"], bytes) or len(m["agg"]) != bls.SIG_LEN:
            raise InvalidAttestation(LedgerReason.MALFORMED, "agg must be 96 bytes")
        return cls(m["height"], m["block"], tuple(signers), m["agg"])


def verify_certificate(cert: Certificate, validators: ValidatorSet, network_id: str) -> None:
    """Verify a certificate against the validator set of the block's parent state.

    Raises:
        InvalidAttestation: ``bad-signers`` (unsorted, duplicate or unknown signer), ``no-quorum`` (below 2/3
            of the weight) or ``bad-signature`` (the aggregate does not verify).
    """
    signers = list(cert.signers)
    if not signers or signers != sorted(set(signers)) or len(signers) > MAX_SIGNERS:
        raise InvalidAttestation(LedgerReason.BAD_SIGNERS, "signers must be non-empty, sorted and unique")
    total = sum(w for _, w in validators.values() if w > 0)
    signed = 0
    pubkeys = []
    for s in signers:
        entry = validators.get(s)
        if entry is None or entry[1] <= 0:
            raise InvalidAttestation(LedgerReason.BAD_SIGNERS, f"{s.hex()[:16]} is not a validator")
        pubkeys.append(entry[0])
        signed += entry[1]
    if not reaches_quorum(signed, total):
        raise InvalidAttestation(LedgerReason.NO_QUORUM, f"signed weight {signed} < 2/3 of {total}")
    message = attestation_message(network_id, cert.height, cert.block_hash)
    if not bls.fast_aggregate_verify(pubkeys, message, cert.aggregate):
        raise InvalidAttestation(LedgerReason.BAD_SIGNATURE, "aggregate signature does not verify")


@dataclass
class _Tally:
    validators: ValidatorSet
    votes: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)  # block -> validator -> verified sig
    pending: dict[bytes, dict[bytes, list[bytes]]] = field(default_factory=dict)  # block -> validator -> sigs
    done: bool = False


class FinalityTracker:
    """Collects attestations per height and emits a certificate once a block reaches 2/3 of the weight.

    Signatures are checked optimistically (docs/adr/0146): a registered validator's vote waits unverified until
    the votes for its block reach 2/3 of the weight; then the candidate certificate's aggregate is verified
    once (one ``fast_aggregate_verify`` instead of one ``verify`` per vote; the chain's own check of that
    certificate then finds it in ``bls``'s cache). If the aggregate fails, the waiting votes are verified one
    by one and the bad ones dropped (listed in :attr:`rejected`); a validator whose vote failed is verified on
    arrival from then on. A validator's second vote at the same height for a different block is verified at
    once, with its earlier ones, and kept apart in :attr:`conflicts` (double votes; not counted twice).
    """

    def __init__(self, network_id: str) -> None:
        self.network_id = network_id
        self._tallies: dict[int, _Tally] = {}
        self._voted: dict[tuple[int, bytes], bytes] = {}
        self._suspects: set[bytes] = set()
        self.conflicts: list[tuple[Attestation, bytes]] = []
        self.rejected: list[Attestation] = []
        """Votes whose signature failed when they were checked (the owner drains it)."""
        self.certificates: dict[int, Certificate] = {}

    def add(self, att: Attestation, validators: ValidatorSet) -> Certificate | None:
        """Add one attestation.

        Args:
            att: the attestation.
            validators: the validator set of height ``att.height − 1`` (``State.validator_set()``).

        Returns:
            The new certificate if this attestation completed a quorum, else ``None``.

        Raises:
            InvalidAttestation: ``unknown-validator``; ``bad-signature`` when the vote is verified on arrival
                (a second vote at a height, or a validator that sent a bad one before) and fails.
        """
        if att.height in self.certificates:
            return None
        entry = validators.get(att.validator)
        if entry is None or entry[1] <= 0:
            raise InvalidAttestation(LedgerReason.UNKNOWN_VALIDATOR, f"{att.validator.hex()[:16]} is not a validator")
        tally = self._tallies.setdefault(att.height, _Tally(dict(validators)))
        key = (att.height, att.validator)
        if tally.votes.get(att.block_hash, {}).get(att.validator) == att.signature:
            return None  # a vote we verified and counted already (a relayed copy)
        waiting = [b for b, pend in tally.pending.items() if att.validator in pend]
        if (key in self._voted or att.validator in self._suspects
                or any(b != att.block_hash for b in waiting)):
            for block in waiting:  # its earlier votes at this height, checked before this one is compared
                self._check_one_by_one(tally, att.height, block, only=att.validator)
            verify_attestation(att, tally.validators, self.network_id)
            previous = self._voted.get(key)
            if previous is not None:
                if previous != att.block_hash:
                    self.conflicts.append((att, previous))
                return None
            self._accept(tally, att.height, att.block_hash, att.validator, att.signature)
        else:
            sigs = tally.pending.setdefault(att.block_hash, {}).setdefault(att.validator, [])
            if att.signature not in sigs:
                sigs.append(att.signature)
        return None if tally.done else self._try_quorum(tally, att.height, att.block_hash)

    def _accept(self, tally: _Tally, height: int, block: bytes, validator: bytes, sig: bytes) -> None:
        self._voted[(height, validator)] = block
        tally.votes.setdefault(block, {})[validator] = sig

    def _weight(self, tally: _Tally, signers: set[bytes]) -> tuple[int, int]:
        total = sum(w for _, w in tally.validators.values() if w > 0)
        return sum(tally.validators[v][1] for v in signers if v in tally.validators), total

    def _try_quorum(self, tally: _Tally, height: int, block: bytes) -> Certificate | None:
        votes = tally.votes.setdefault(block, {})
        pend = {v: sigs for v, sigs in tally.pending.get(block, {}).items() if v not in votes}
        if not reaches_quorum(*self._weight(tally, set(votes) | set(pend))):
            return None
        if pend and all(len(sigs) == 1 for sigs in pend.values()):
            signers = sorted(set(votes) | set(pend))
            sigs = [votes[s] if s in votes else pend[s][0] for s in signers]
            agg = bls.aggregate(sigs)
            message = attestation_message(self.network_id, height, block)
            if bls.fast_aggregate_verify([tally.validators[s][0] for s in signers], message, agg):
                for v, (sig,) in pend.items():
                    self._accept(tally, height, block, v, sig)
                tally.pending.pop(block, None)
                return self._certify(tally, height, block, agg)
        if pend:
            self._check_one_by_one(tally, height, block)
        if not reaches_quorum(*self._weight(tally, set(votes))):
            return None
        return self._certify(tally, height, block)

    def _check_one_by_one(self, tally: _Tally, height: int, block: bytes, only: bytes | None = None) -> None:
        """Verify the waiting votes for ``block`` (of validator ``only``, or all) one by one; keep the good."""
        pend = tally.pending.get(block, {})
        for v in [v for v in pend if only is None or v == only]:
            for sig in pend.pop(v):
                att = Attestation(height, block, v, sig)
                try:
                    verify_attestation(att, tally.validators, self.network_id)
                except InvalidAttestation:
                    self.rejected.append(att)
                    self._suspects.add(v)
                    continue
                previous = self._voted.get((height, v))
                if previous is None:
                    self._accept(tally, height, block, v, sig)
                elif previous != block:
                    self.conflicts.append((att, previous))
        if not pend:
            tally.pending.pop(block, None)

    def _certify(self, tally: _Tally, height: int, block: bytes, agg: bytes | None = None) -> Certificate:
        """The certificate of ``block``'s verified votes (``agg``: their aggregate, when already computed)."""
        tally.done = True
        votes = tally.votes[block]
        signers = tuple(sorted(votes))
        cert = Certificate(height, block, signers, agg or bls.aggregate([votes[s] for s in signers]))
        self.certificates[height] = cert
        return cert

    def prune(self, below: int) -> None:
        """Forget tallies and votes for heights below ``below``."""
        for h in [h for h in self._tallies if h < below]:
            del self._tallies[h]
        for key in [k for k in self._voted if k[0] < below]:
            del self._voted[key]
        for h in [h for h in self.certificates if h < below]:
            del self.certificates[h]
