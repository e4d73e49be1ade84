"""The ledger's error vocabulary (STYLE §9).

Every rejection carries a short, stable ``reason`` code (documented in docs/ledger.md and tested);
``detail`` is
free text for logs. Reasons reported to peers or printed by the CLI never change meaning.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every ledger failure.

    Attributes:
        reason: stable short code, e.g. ``"bad-nonce"``.
        detail: human-readable detail.
    """

    reason = "ledger-error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class InvalidTx(LedgerError):
    """A transaction fails a stateful (or stateless) check, e.g. ``bad-nonce``, ``insufficient-funds``."""

    reason = "invalid-tx"


class InvalidBlock(LedgerError):
    """A block cannot be applied: ``bad-height``, ``bad-parent``, ``bad-signature``, ``bad-state-root``, ...

    Attributes:
        tx_index: for ``reason == "bad-tx"``, the index of the offending transaction.
        tx_reason: for ``reason == "bad-tx"``, the transaction's own reject reason.
    """

    reason = "invalid-block"

    def __init__(
        self, reason: str | None = None, detail: str = "", *, tx_index: int | None = None, tx_reason: str = ""
    ) -> None:
        super().__init__(reason, detail)
        self.tx_index = tx_index
        self.tx_reason = tx_reason


class UnknownParent(InvalidBlock):
    """A block does not extend any block we hold (the node should sync first)."""

    reason = "unknown-parent"


class InvalidAttestation(LedgerError):
    """An attestation or certificate does not verify: ``unknown-validator``, ``bad-signature``, ..."""

    reason = "invalid-attestation"


class StoreCorrupt(LedgerError):
    """The persisted chain does not re-verify.

    Attributes:
        height: the first height that fails (0 for the genesis / metadata).
    """

    reason = "store-corrupt"

    def __init__(self, height: int, detail: str = "") -> None:
        super().__init__("store-corrupt", f"height {height}: {detail}")
        self.height = height
