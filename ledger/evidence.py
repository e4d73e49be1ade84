"""Equivocation evidence: two signed headers by one proposer at one height with different hashes.

Anyone may submit the pair as ``tx/evidence``; applying it burns ``slash_fraction`` of the proposer's stake
(added to the burned supply) and marks the proposer slashed: it is no longer drawn as proposer, accepted as
proposer, or counted as an attester (docs/ledger.md §Slashing). A pair is punished once.
"""

from __future__ import annotations

from dataclasses import dataclass

from bazaar.protocol.envelope import Envelope
from bazaar.protocol.keys import KeyPair

from .block import Block, decode_signed_header
from .errors import InvalidBlock, InvalidTx, LedgerReason
from .txs import make_tx


@dataclass(frozen=True)
class Evidence:
    """Two conflicting signed headers (``Block.signed_header()`` bytes)."""

    a: bytes
    b: bytes
    proposer: bytes
    height: int

    def body(self) -> dict[str, bytes]:
        """The ``tx/evidence`` body."""
        return {"a": self.a, "b": self.b}

    def to_tx(self, submitter: KeyPair, network_id: str) -> Envelope:
        """A signed ``tx/evidence`` transaction carrying this evidence."""
        return make_tx(submitter, network_id, "evidence", self.body())


def check_evidence(a: bytes, b: bytes, network_id: str) -> tuple[bytes, int]:
    """Verify that ``a`` and ``b`` prove an equivocation.

    Returns:
        ``(proposer, height)``.

    Raises:
        InvalidTx: reason ``bad-evidence`` (malformed header, bad signature, different heights or proposers,
            or the same block twice).
    """
    try:
        ha, _ = decode_signed_header(a, network_id)
        hb, _ = decode_signed_header(b, network_id)
    except InvalidBlock as err:
        raise InvalidTx(LedgerReason.BAD_EVIDENCE, f"{err.reason}: {err.detail}") from err
    if ha.height != hb.height:
        raise InvalidTx(LedgerReason.BAD_EVIDENCE, "headers at different heights")
    if ha.proposer != hb.proposer:
        raise InvalidTx(LedgerReason.BAD_EVIDENCE, "headers by different proposers")
    if ha.hash == hb.hash:
        raise InvalidTx(LedgerReason.BAD_EVIDENCE, "the same header twice")
    return ha.proposer, ha.height


def evidence_from_blocks(first: Block, second: Block, network_id: str) -> Evidence:
    """Build evidence from two conflicting blocks (checked).

    Raises:
        InvalidTx: the blocks do not prove an equivocation.
    """
    a, b = sorted([first.signed_header(), second.signed_header()])
    proposer, height = check_evidence(a, b, network_id)
    return Evidence(a, b, proposer, height)
