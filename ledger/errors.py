"""The ledger's error vocabulary (STYLE §9).

Every rejection carries a short, stable ``reason`` code (documented in docs/ledger.md and tested);
``detail`` is
free text for logs. Reasons reported to peers or printed by the CLI never change meaning.
"""

from __future__ import annotations

from enum import StrEnum

from bazaar.protocol.errors import BazaarError


class LedgerReason(StrEnum):
    """Why the ledger refuses a transaction, a block, an attestation or a stored chain (docs/protocol.md §5)."""

    LEDGER_ERROR = "ledger-error"
    INVALID_TX = "invalid-tx"
    INVALID_BLOCK = "invalid-block"
    INVALID_ATTESTATION = "invalid-attestation"
    STORE_CORRUPT = "store-corrupt"
    STORE_ERROR = "store-error"
    STORE_GAP = "gap"
    STORE_MISSING_BLOCK = "missing-block"
    STORE_IO = "io"
    STORE_CLOSED = "closed"
    UNKNOWN_PARENT = "unknown-parent"
    BAD_CONSENSUS = "bad-consensus"
    BAD_EVIDENCE = "bad-evidence"
    BAD_EXPIRY = "bad-expiry"
    BAD_HEIGHT = "bad-height"
    BAD_NONCE = "bad-nonce"
    BAD_PARENT = "bad-parent"
    BAD_POP = "bad-pop"
    BAD_PROPOSER = "bad-proposer"
    BAD_REVEAL = "bad-reveal"
    BAD_REWARD = "bad-reward"
    BAD_SEED = "bad-seed"
    BAD_SIGNATURE = "bad-signature"
    BAD_SIGNERS = "bad-signers"
    BAD_STATE_ROOT = "bad-state-root"
    BAD_TIMESTAMP = "bad-timestamp"
    BAD_TX = "bad-tx"
    BAD_TX_ROOT = "bad-tx-root"
    BAD_WEIGHTS = "bad-weights"
    BLOCK_FULL = "block-full"
    BLS_KEY_MISMATCH = "bls-key-mismatch"
    BLS_KEY_TAKEN = "bls-key-taken"
    CONSERVATION = "conservation"
    DUPLICATE_EVIDENCE = "duplicate-evidence"
    STORE_DUPLICATE = "duplicate"
    ESCROW_EXISTS = "escrow-exists"
    FINALIZED = "finalized"
    FORK = "fork"
    INSUFFICIENT_FUNDS = "insufficient-funds"
    INSUFFICIENT_STAKE = "insufficient-stake"
    MALFORMED = "malformed"
    MARKET_CONTRACT = "market-contract"
    MISSING_BLS_KEY = "missing-bls-key"
    NO_QUORUM = "no-quorum"
    NO_WEIGHT = "no-weight"
    NOT_AUTHORISED = "not-authorised"
    NOT_EXPIRED = "not-expired"
    OVER_ESCROW = "over-escrow"
    OVERFLOW = "overflow"
    OVERSIZE = "oversize"
    POL_EARLY = "pol-early"
    POL_LOSS = "pol-loss"
    SLASHED = "slashed"
    STALE_ROUND = "stale-round"
    UNKNOWN_BLOCK = "unknown-block"
    UNKNOWN_ESCROW = "unknown-escrow"
    UNKNOWN_TYPE = "unknown-type"
    UNKNOWN_VALIDATOR = "unknown-validator"
    WRONG_BLOCK = "wrong-block"


class LedgerError(BazaarError):
    """Base class of every ledger failure.

    Attributes:
        reason: stable short code, e.g. ``"bad-nonce"`` (a :class:`LedgerReason`).
        detail: human-readable detail.
    """

    reason = LedgerReason.LEDGER_ERROR


class InvalidTx(LedgerError):
    """A transaction fails a stateful (or stateless) check, e.g. ``bad-nonce``, ``insufficient-funds``."""

    reason = LedgerReason.INVALID_TX


class InvalidBlock(LedgerError):
    """A block cannot be applied: ``bad-height``, ``bad-parent``, ``bad-signature``, ``bad-state-root``, ...

    Attributes:
        tx_index: for ``reason == "bad-tx"``, the index of the offending transaction.
        tx_reason: for ``reason == "bad-tx"``, the transaction's own reject reason.
    """

    reason = LedgerReason.INVALID_BLOCK

    def __init__(
        self, reason: str | None = None, detail: str = "", *, tx_index: int | None = None, tx_reason: str = ""
    ) -> None:
        super().__init__(reason, detail)
        self.tx_index = tx_index
        self.tx_reason = tx_reason


class UnknownParent(InvalidBlock):
    """A block does not extend any block we hold (the node should sync first)."""

    reason = LedgerReason.UNKNOWN_PARENT


class InvalidAttestation(LedgerError):
    """An attestation or certificate does not verify: ``unknown-validator``, ``bad-signature``, ..."""

    reason = LedgerReason.INVALID_ATTESTATION


class StoreCorrupt(LedgerError):
    """The persisted chain does not re-verify.

    Attributes:
        height: the first height that fails (0 for the genesis / metadata).
    """

    reason = LedgerReason.STORE_CORRUPT

    def __init__(self, height: int, detail: str = "") -> None:
        super().__init__(LedgerReason.STORE_CORRUPT, f"height {height}: {detail}")
        self.height = height
