"""Messages and record kinds of market ``cloudchain`` (docs/models/cloudchain.md, docs/protocol.md §cloudchain):
compute providers, requesters and SLA oracles.

Everything that moves money is on chain as a ``tx/record`` of market ``cloudchain``: providers register, requesters
post tasks (with a contract escrow), the round leader closes a submission window, the block proposer writes the
allocation and the settlements (the contract every validator re-executes), providers post their results (hashes
of content-addressed blobs), and an oracle posts each task's quorum (one aggregated BLS signature). Off chain:
the leader's ``day`` call, the oracles' signed attestations (gossip), latency probes and blob fetches (direct
streams).
"""

from __future__ import annotations

from ..messages import register
from ..schema import Bool, Bytes, Int, List, Num, Schema, Str

MARKET = "cloudchain"
BLOB_PROTOCOL = "/bazaar/cloudchain-blob/1"
MAX_BLOB = 4 << 20
"""Largest blob a provider stores or an oracle fetches (4 MiB)."""

MSG_DAY = "cloudchain/day"
MSG_ATTEST = "cloudchain/attest"
MSG_PROBE = "cloudchain/probe"
MSG_PROBE_ACK = "cloudchain/probe-ack"

REGISTER = "cloudchain/register"
"""A provider's profile (capacity, unit price, SLA promise, penalty, storage figures); needs ledger stake."""
AGENTS = "cloudchain/agents"
"""A requester process names the agent accounts it hosts (so the leader can tell when they are funded)."""
TASK = "cloudchain/task"
"""A requester's task (units, max price, SLA, value, optional privacy budget); its escrow is locked beside it."""
WINDOW = "cloudchain/window"
"""The leader closes round ``r``'s submission window: the next block allocates every open task."""
ALLOC = "cloudchain/alloc"
"""The contract's allocation of a batch (written by the block proposer, re-derived by every validator)."""
RESULT = "cloudchain/result"
"""A provider's result: the hashes and sizes of its model and metadata blobs."""
QUORUM = "cloudchain/quorum"
"""A task's verdict: t-of-m oracles' aggregated BLS signature, their measurements and any dissent."""
SETTLE = "cloudchain/settle"
"""The contract's settlement of decided tasks (written by the proposer beside the escrow moves)."""
DISPUTE = "cloudchain/dispute"
"""A task's requester or provider contests its settled verdict (with a deposit escrow beside it)."""
RULING = "cloudchain/ruling"
"""The oracles' re-examination of a disputed task: a quorum record over ``ruling:<verdict>`` messages."""
RESETTLE = "cloudchain/resettle"
"""The contract's settlement of a ruling (written by the proposer beside the bond and deposit moves)."""
CLOSE = "cloudchain/close"
"""The leader's end of round ``r`` (the round engine waits for it to be final)."""

VERDICTS = ("met", "late", "missing", "wrong")
"""``met``: result correct, SLA kept; ``late``: latency, availability or deadline missed; ``missing``: no result
by the deadline; ``wrong``: the spot check failed."""

DAY = register(MSG_DAY, Schema({"day": Int(low=0), "window_ms": Int(low=0)}))
ATTEST_ITEMS = 256
"""Most verdicts one ``cloudchain/attest`` message carries (≈ 60 KiB)."""
VERDICT = Schema({
    "task": Bytes(size=32),
    "verdict": Str(max_len=16),
    "result": Bytes(max_len=32),
    "rtt_ms": Num(low=0),
    "completion_ms": Num(low=0),
    "sig": Bytes(size=96),
})
"""One signed verdict of an oracle on one task."""
ATTEST = register(MSG_ATTEST, Schema({"items": List(VERDICT, min_len=1, max_len=ATTEST_ITEMS)}))
"""An oracle's verdicts reached at once, in one message (docs/adr/0188)."""
PROBE = register(MSG_PROBE, Schema({"nonce": Bytes(size=16)}))
PROBE_ACK = register(MSG_PROBE_ACK, Schema({"nonce": Bytes(size=16), "busy": Bool()}))


RULING_PREFIX = "ruling:"


def verdict_message(network_id: str, task: bytes, verdict: str, result: bytes) -> bytes:
    """The bytes every oracle agreeing on a verdict signs with BLS (one aggregate verifies them all)."""
    return b"|".join((b"bazaar/cloudchain/verdict/v1", network_id.encode(), task, verdict.encode(), result))
