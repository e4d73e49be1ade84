"""Messages of market ``tbcim`` (docs/models/tbcim.md): the task, ED reports, ES bids, the RANet allocation, the ES–ED
game, and per global epoch the model updates and the ESs' filter verdicts.

Flow of a task (docs/protocol.md §tbcim): the requester gossips ``task`` (with its signed budget lock); each
ED sends ``report`` to its ES; each ES sends ``bid`` (its kept EDs, its cost, the EDs' signed reports) to the
requester; the requester gossips ``allocation`` (the signed bids it ran RANet on, ``z``, payments, winners);
each winning ES gossips ``price``, its EDs answer with ``answer``, and the ES gossips ``lower`` (the signed
answers, with the escrow locks of the EDs' fees). Each global epoch: the requester gossips ``epoch`` (the
global model's hash and the workers, and the model's weights when they are at most ``MAX_INLINE_MODEL`` bytes);
each worker takes the model (pulls it by hash when not inline), trains and pushes its ES ``update`` (the hash and
size of its update) with the weights in one request over the blob stream (or sends it alone, and the ES pulls the
weights by hash); each ES sends ``verdicts`` (the signed updates with
its filter verdicts) to the requester, with its updates' weights, in one push over the blob stream (or alone as a
direct request, ``verdicts-ack``); the requester pushes every ES the update weights of the other ESs before the
epoch's record, so each ES re-executes the epoch's block at once (docs/adr/0162).
"""

from __future__ import annotations

from ..chainmsg import MAX_TX
from ..messages import register
from ..schema import Bool, Bytes, Int, List, Num, Optional, Schema, Str

MARKET = "tbcim"
MAX_ES = 16
MAX_ED = 512
N_CLASSES = 10
MAX_REPORT_WIRE = 2048
MAX_BID_WIRE = 64 << 10
MAX_UPDATE_WIRE = 1024
MAX_VERDICT_WIRE = 64 << 10
MAX_BLOB = 8 << 20
"""Largest model or update blob (bytes) served over the blob stream."""
MAX_INLINE_MODEL = 64 << 10
"""Largest global model (bytes) the ``epoch`` announcement carries itself; a larger one is pulled by hash."""

MSG_TASK = "tbcim/task"
MSG_REPORT = "tbcim/report"
MSG_REPORT_ACK = "tbcim/report-ack"
MSG_BID = "tbcim/bid"
MSG_BID_ACK = "tbcim/bid-ack"
MSG_ALLOCATION = "tbcim/allocation"
MSG_PRICE = "tbcim/price"
MSG_ANSWER = "tbcim/answer"
MSG_ANSWER_ACK = "tbcim/answer-ack"
MSG_LOWER = "tbcim/lower"
MSG_EPOCH = "tbcim/epoch"
MSG_UPDATE = "tbcim/update"
MSG_UPDATE_ACK = "tbcim/update-ack"
MSG_VERDICTS = "tbcim/verdicts"
MSG_VERDICTS_ACK = "tbcim/verdicts-ack"

AUCTION_RECORD = "tbcim/auction"
"""``tx/record`` kind: the task message and the signed bids RANet ran on (every ES re-derives the allocation)."""
LOWER_RECORD = "tbcim/lower"
"""``tx/record`` kind: a winning ES's price and its EDs' signed answers (the fees re-derive from them)."""
EPOCH_RECORD = "tbcim/epoch"
"""``tx/record`` kind: one global epoch — the ESs' signed verdicts and the new global model's hash."""
FINAL_RECORD = "tbcim/final"
"""``tx/record`` kind: the requester's accuracy on its held-out split; the task's escrows are released with it."""

BLOB_PROTOCOL = "/bazaar/tbcim-blob/1"
"""Direct stream ``{hash} -> {data}``: model and update weights by SHA-256 (little-endian float64)."""

_KEY = Bytes(size=32)
_HASH = Bytes(size=32)
ACK = Schema({"accepted": Bool(), "reason": Str(max_len=200)})

TASK = register(MSG_TASK, Schema({
    "task": Int(low=1),
    "epochs": Int(low=1, high=100_000),
    "p_ref": List(Num(low=0, high=1), min_len=N_CLASSES, max_len=N_CLASSES),
    "reserve": Num(low=0, open_low=True),
    "budget": Num(low=0, open_low=True),
    "eval_size": Int(low=1),
    "eval_hash": _HASH,
    "es": List(_KEY, min_len=1, max_len=MAX_ES),
    "report_deadline_ms": Int(low=0),
    "bid_deadline_ms": Int(low=0),
    "expires": Int(low=0),
    "escrow": Bytes(max_len=MAX_TX),
}))
REPORT = register(MSG_REPORT, Schema({
    "task": Int(low=1),
    "d": Num(low=0, open_low=True),
    "histogram": List(Int(low=0), min_len=N_CLASSES, max_len=N_CLASSES),
    "theta": Num(low=0, high=2),
    "gamma": Num(low=0),
    "beta": Num(low=0, open_low=True),
    "compute": Num(low=0, open_low=True),
    "c_m": Num(low=0),
}))
register(MSG_REPORT_ACK, ACK)
BID = register(MSG_BID, Schema({
    "task": Int(low=1),
    "bid": Num(low=0),
    "d": Num(low=0, open_low=True),
    "theta": Num(low=0, high=2),
    "selected": List(Int(low=0, high=MAX_ED), min_len=1, max_len=MAX_ED),
    "reports": List(Bytes(max_len=MAX_REPORT_WIRE), min_len=1, max_len=MAX_ED),
}))
register(MSG_BID_ACK, ACK)
ALLOCATION = register(MSG_ALLOCATION, Schema({
    "task": Int(low=1),
    "bids": List(Bytes(max_len=MAX_BID_WIRE), max_len=MAX_ES),
    "z": List(Num(low=0, high=1), max_len=MAX_ES),
    "expected": List(Num(low=0), max_len=MAX_ES),
    "winners": List(Int(low=0, high=MAX_ES), max_len=MAX_ES),
    "paid": List(Num(low=0), max_len=MAX_ES),
}))
PRICE = register(MSG_PRICE, Schema({
    "task": Int(low=1),
    "price": Num(low=0),
    "eds": List(_KEY, max_len=MAX_ED),
    "answer_deadline_ms": Int(low=0),
}))
ANSWER = register(MSG_ANSWER, Schema({
    "task": Int(low=1),
    "price": Num(low=0),
    "join": Bool(),
    "compute": Num(low=0),
}))
register(MSG_ANSWER_ACK, ACK)
LOWER = register(MSG_LOWER, Schema({
    "task": Int(low=1),
    "price": Num(low=0),
    "answers": List(Bytes(max_len=MAX_UPDATE_WIRE), max_len=MAX_ED),
}))
EPOCH = register(MSG_EPOCH, Schema({
    "task": Int(low=1),
    "epoch": Int(low=0),
    "model": _HASH,
    "workers": List(_KEY, max_len=MAX_ED),
    "deadline_ms": Int(low=0),
    "weights": Optional(Bytes(max_len=MAX_INLINE_MODEL)),
}))
UPDATE = register(MSG_UPDATE, Schema({
    "task": Int(low=1),
    "epoch": Int(low=0),
    "parent": _HASH,
    "hash": _HASH,
    "size": Int(low=1, high=MAX_BLOB // 8),
    "samples": Int(low=1),
}))
UPDATE_ACK = register(MSG_UPDATE_ACK, Schema({
    "accepted": Bool(),
    "reason": Str(max_len=200),
    "score": Optional(Num(low=-1, high=1)),
}))
VERDICTS = register(MSG_VERDICTS, Schema({
    "task": Int(low=1),
    "epoch": Int(low=0),
    "updates": List(Bytes(max_len=MAX_UPDATE_WIRE), max_len=MAX_ED),
    "accepted": List(Bool(), max_len=MAX_ED),
    "scores": List(Optional(Num(low=-1, high=1)), max_len=MAX_ED),
}))
register(MSG_VERDICTS_ACK, ACK)
