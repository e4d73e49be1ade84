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
    votes: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)  # block hash -> validator -> sig
    done: bool = False


class FinalityTracker:
    """Collects attestations per height and emits a certificate once a block reaches 2/3 of the weight.

    Each attestation is verified on arrival (one BLS verify); a validator's second vote at the same height
    for a different block is kept apart in :attr:`conflicts` (double votes; not counted twice).
    """

    def __init__(self, network_id: str) -> None:
        self.network_id = network_id
        self._tallies: dict[int, _Tally] = {}
        self._voted: dict[tuple[int, bytes], bytes] = {}
        self.conflicts: list[tuple[Attestation, bytes]] = []
        self.certificates: dict[int, Certificate] = {}

    def add(self, att: Attestation, validators: ValidatorSet) -> Certificate | None:
        """Add one attestation.

        Args:
            att: the attestation.
            validators: the validator set of height ``att.height − 1`` (``State.validator_set()``).

        Returns:
            The new certificate if this attestation completed a quorum, else ``None``.

        Raises:
            InvalidAttestation: ``unknown-validator`` or ``bad-signature``.
        """
        if att.height in self.certificates:
            return None
        verify_attestation(att, validators, self.network_id)
        key = (att.height, att.validator)
        previous = self._voted.get(key)
        if previous is not None:
            if previous != att.block_hash:
                self.conflicts.append((att, previous))
            return None
        self._voted[key] = att.block_hash
        tally = self._tallies.setdefault(att.height, _Tally(dict(validators)))
        votes = tally.votes.setdefault(att.block_hash, {})
        votes[att.validator] = att.signature
        total = sum(w for _, w in tally.validators.values() if w > 0)
        signed = sum(tally.validators[v][1] for v in votes if v in tally.validators)
        if tally.done or not reaches_quorum(signed, total):
            return None
        tally.done = True
        signers = tuple(sorted(votes))
        cert = Certificate(att.height, att.block_hash, signers, bls.aggregate([votes[s] for s in signers]))
        self.certificates[att.height] = cert
        return cert

    def prune(self, below: int) -> None:
        """Forget tallies and votes for heights below ``below``."""
        for h in [h for h in self._tallies if h < below]:
            del self._tallies[h]
        for key in [k for k in self._voted if k[0] < below]:
            del self._voted[key]
        for h in [h for h in self.certificates if h < below]:
            del self.certificates[h]
