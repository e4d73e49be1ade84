"""Why a node refuses a peer's message or request beyond the wire checks (docs/protocol.md §5): the
runtime's middleware and the market roles' ``Refuse`` reasons. Counted per reason in ``GET /status``."""

from __future__ import annotations

from enum import StrEnum


class NodeReason(StrEnum):
    """Refusal reasons of the market layer and the market roles."""

    UNKNOWN_SENDER = "unknown-sender"
    NOT_AUTHORISED = "not-authorised"
    WRONG_MARKET = "wrong-market"
    WRONG_SENDER = "wrong-sender"
    UNEXPECTED_TYPE = "unexpected-type"
    HANDLER_ERROR = "handler-error"
    LATE = "late"
    UNKNOWN_PARTICIPANT = "unknown-participant"
    DUPLICATE = "duplicate"
    WRONG_ROUND = "wrong-round"
    OUT_OF_RANGE = "out-of-range"
    BAD_ESCROW = "bad-escrow"
    INSUFFICIENT_FUNDS = "insufficient-funds"
    BID_OVER_CAP = "bid-over-cap"
    BAD_REACH = "bad-reach"
    BUNDLE_OVER_CAPACITY = "bundle-over-capacity"
    BAD_BUNDLE = "bad-bundle"
    RESULT_MISMATCH = "result-mismatch"
    WRONG_TASK = "wrong-task"
    BAD_REPORT = "bad-report"
    BID_OVER_RESERVE = "bid-over-reserve"
    BAD_PROFILE = "bad-profile"
    BAD_AUCTION = "bad-auction"
    OVER_BUDGET = "over-budget"
    NOT_A_WINNER = "not-a-winner"
    WRONG_PRICE = "wrong-price"
    WRONG_EPOCH = "wrong-epoch"
    BAD_UPDATE = "bad-update"
    BAD_VERDICTS = "bad-verdicts"
    FILTER_MISMATCH = "filter-mismatch"
    MODEL_MISMATCH = "model-mismatch"
    EARLY_FINAL = "early-final"
    UNKNOWN_RECORD = "unknown-record"
    UNKNOWN_TASK = "unknown-task"
