"""The tbcim market as data: parsing the signed messages, and the task book every node keeps from the chain.

Every check here is a pure function of signed messages and of the chain's tbcim records, so the requester,
every ES (the validators) and an offline audit reach the same verdicts:

* :func:`parse_bid` — an ES's bid: its EDs' signed reports (EMD consistent with the histogram and ``P_r``),
  client selection and profile re-derived, bid at most the reserve;
* :func:`derive_auction` — RANet and the draw on the bids of an auction record;
* :func:`parse_lower` — a winning ES's price and its EDs' signed answers, and the fees they imply;
* :class:`TaskBook` — the task as the chain has settled it (allocation, participants, filter history, global
  model), and :meth:`TaskBook.epoch_result` — the FedAvg contract: the epoch's verdicts re-executed and the new
  global model computed from the update blobs.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.errors import MechanismError
from bazaar.mechanisms.fl.filter import cosine_similarity
from bazaar.mechanisms.tbcim import market as mk
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.markets import tbcim as msg

from ..context import Refuse
from ..embedded import open_embedded

REL_TOL = 1e-12


@dataclass(frozen=True)
class Roster:
    """Who is who, in scenario order: the requester, the ESs, the EDs and each ED's home ES index."""

    requester: bytes
    es: tuple[bytes, ...]
    ed: tuple[bytes, ...]
    home: tuple[int, ...]

    def members(self, s: int) -> list[int]:
        """ED indices of ES ``s``."""
        return [i for i, h in enumerate(self.home) if h == s]


def escrow_id(kind: str, task: int, party: bytes) -> bytes:
    """The id of a task escrow: ``budget`` (the requester's), ``pay`` (an ES's payment), ``fee`` (an ED's)."""
    return hashlib.sha256(f"tbcim/{kind}/".encode() + task.to_bytes(8, "big") + party).digest()


def escrow_ref(task: int) -> bytes:
    """The ``ref`` every escrow of a task carries."""
    return f"tbcim/{task}".encode()


def open_signed(wire: bytes, network_id: str, mtype: str) -> Envelope:
    """Open an embedded signed tbcim message of type ``mtype`` (:func:`~..embedded.open_embedded`)."""
    return open_embedded(wire, network_id, msg.MARKET, mtype)


def close(a: float, b: float) -> bool:
    """Equal up to a relative 1e-12 (re-derived floats computed in another order)."""
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def report_of(env: Envelope) -> mk.EdReport:
    """The :class:`EdReport` of a checked ``tbcim/report`` envelope."""
    b = env.body
    return mk.EdReport(d=float(b["d"]), histogram=tuple(int(x) for x in b["histogram"]), theta=float(b["theta"]),
                       gamma=float(b["gamma"]), beta=float(b["beta"]), compute=float(b["compute"]),
                       c_m=float(b["c_m"]))


def check_report(env: Envelope, roster: Roster, es: int, task: int, p_ref: Sequence[float],
                 data_unit: float) -> tuple[int, mk.EdReport]:
    """An ED's report to ES ``es``: ``(ED index, report)``.

    Raises:
        Refuse: ``not-authorised`` (not one of that ES's EDs), ``wrong-task``, ``bad-report`` (EMD or data size
            inconsistent with the histogram).
    """
    if env.sender not in roster.ed or roster.home[roster.ed.index(env.sender)] != es:
        raise Refuse("not-authorised", "the report is not from one of this ES's edge devices")
    if env.body["task"] != task:
        raise Refuse("wrong-task", f"report for task {env.body['task']}, not {task}")
    report = report_of(env)
    try:
        mk.check_report(report, p_ref, data_unit)
    except MechanismError as err:
        raise Refuse("bad-report", str(err)) from err
    return roster.ed.index(env.sender), report


@dataclass(frozen=True)
class Bid:
    """An ES's checked bid: its index, its EDs' reports (ED index -> report, member order) and the bid."""

    es: int
    reports: dict[int, mk.EdReport]
    bid: mk.EsBid
    wire: bytes

    def kept(self) -> list[int]:
        """ED indices the ES kept (client selection)."""
        eds = list(self.reports)
        return [eds[k] for k in self.bid.selected]


def parse_bid(wire: bytes, network_id: str, roster: Roster, task: int, p_ref: Sequence[float],
              data_unit: float, reserve: float) -> Bid:
    """Check an ES's signed bid and every report in it.

    Raises:
        Refuse: ``not-authorised``, ``wrong-task``, ``bid-over-reserve``, ``bad-profile`` (selection or profile
            does not follow from the reports), or a reason of :func:`check_report`.
    """
    env = open_signed(wire, network_id, msg.MSG_BID)
    if env.sender not in roster.es:
        raise Refuse("not-authorised", "bid not signed by an edge server")
    b = env.body
    if b["task"] != task:
        raise Refuse("wrong-task", f"bid for task {b['task']}, not {task}")
    if not b["bid"] <= reserve:
        raise Refuse("bid-over-reserve", f"bid {b['bid']:.6g} > reserve {reserve:.6g}")
    s = roster.es.index(env.sender)
    reports: dict[int, mk.EdReport] = {}
    for w in b["reports"]:
        i, rep = check_report(open_signed(w, network_id, msg.MSG_REPORT), roster, s, task, p_ref, data_unit)
        if reports and i <= max(reports):
            raise Refuse("bad-profile", "reports must come once each, in ED order")
        reports[i] = rep
    if not reports:
        raise Refuse("bad-profile", "a bid without reports")
    selected, d, theta = mk.es_profile(list(reports.values()))
    if tuple(b["selected"]) != selected:
        raise Refuse("bad-profile", "the kept EDs are not those with EMD at most the ES's average")
    if not (close(b["d"], d) and close(b["theta"], theta)):
        raise Refuse("bad-profile", "the profile (d, theta) does not follow from the kept EDs' reports")
    return Bid(s, reports, mk.EsBid(selected, float(b["bid"]), float(b["d"]), float(b["theta"])), wire)


@dataclass(frozen=True)
class Auction:
    """A re-derived auction: the task message, the checked bids and the realised allocation."""

    task: int
    task_env: Envelope
    bids: dict[int, Bid]
    allocation: mk.Allocation

    def paid_units(self) -> dict[int, int]:
        """What each winner is paid, in micro-tokens."""
        return {s: to_units(v) for s, v in self.allocation.paid.items()}


def parse_task(wire: bytes, network_id: str, roster: Roster) -> Envelope:
    """The requester's signed task message.

    Raises:
        Refuse: not signed by the requester, or a protocol reason.
    """
    env = open_signed(wire, network_id, msg.MSG_TASK)
    if env.sender != roster.requester:
        raise Refuse("not-authorised", "task not signed by the requester")
    return env


def derive_auction(task_wire: bytes, bid_wires: Sequence[bytes], network_id: str, roster: Roster,
                   data_unit: float) -> Auction:
    """Re-derive an auction from its signed task and bids.

    Raises:
        Refuse: a message does not verify, two bids of one ES.
    """
    task_env = parse_task(task_wire, network_id, roster)
    t = task_env.body
    bids: dict[int, Bid] = {}
    for w in bid_wires:
        bid = parse_bid(w, network_id, roster, t["task"], t["p_ref"], data_unit, t["reserve"])
        if bid.es in bids:
            raise Refuse("duplicate", "two bids of one edge server")
        bids[bid.es] = bid
    try:
        alloc = mk.allocate(t["task"], len(roster.es), {s: b.bid for s, b in bids.items()})
    except MechanismError as err:
        raise Refuse("bad-auction", str(err)) from err
    if sum(to_units(v) for v in alloc.paid.values()) > to_units(t["budget"]):
        raise Refuse("over-budget", "the payments exceed the requester's budget")
    return Auction(t["task"], task_env, dict(sorted(bids.items())), alloc)


def fee_of(price: float, compute: float, report: mk.EdReport, kappa: float) -> float:
    """``V_i = p C_i d_i / (kappa theta_i)``."""
    return price * compute * report.d / (kappa * report.theta)


@dataclass(frozen=True)
class Lower:
    """A winning ES's checked lower game: its price and each joining ED's compute and fee."""

    es: int
    price: float
    joined: dict[int, tuple[float, float]]


def parse_lower(sender: bytes, body: dict[str, Any], network_id: str, roster: Roster, auction: Auction,
                kappa: float) -> Lower:
    """The ``tbcim/lower`` result of a winning ES (a gossip body or a record's data, both signed by ``sender``)
    with its EDs' signed answers.

    Raises:
        Refuse: ``not-a-winner``, ``not-authorised`` (an answer of an ED the ES did not keep), ``wrong-price``.
    """
    if sender not in roster.es:
        raise Refuse("not-authorised", "lower result not signed by an edge server")
    s = roster.es.index(sender)
    if s not in auction.allocation.winners or body["task"] != auction.task:
        raise Refuse("not-a-winner", f"ES {s} did not win task {auction.task}")
    kept = auction.bids[s].kept()
    price = float(body["price"])
    joined: dict[int, tuple[float, float]] = {}
    for w in body["answers"]:
        ans = open_signed(w, network_id, msg.MSG_ANSWER)
        if ans.sender not in roster.ed or roster.ed.index(ans.sender) not in kept:
            raise Refuse("not-authorised", "an answer from an ED the ES did not keep")
        if ans.body["task"] != auction.task or ans.body["price"] != price:
            raise Refuse("wrong-price", "an answer to another task or price")
        i = roster.ed.index(ans.sender)
        if ans.body["join"] and ans.body["compute"] > 0:
            joined[i] = (float(ans.body["compute"]),
                         fee_of(price, float(ans.body["compute"]), auction.bids[s].reports[i], kappa))
    return Lower(s, price, dict(sorted(joined.items())))


@dataclass(frozen=True)
class Update:
    """An ED's checked update commitment."""

    ed: int
    parent: bytes
    hash: bytes
    size: int
    samples: int
    wire: bytes


def parse_update(wire: bytes, network_id: str, roster: Roster, task: int, epoch: int) -> Update:
    """An ED's signed update commitment.

    Raises:
        Refuse: ``not-authorised`` or ``wrong-epoch``.
    """
    env = open_signed(wire, network_id, msg.MSG_UPDATE)
    if env.sender not in roster.ed:
        raise Refuse("not-authorised", "update not signed by an edge device")
    b = env.body
    if b["task"] != task or b["epoch"] != epoch:
        raise Refuse("wrong-epoch", f"update for task {b['task']} epoch {b['epoch']}, not {task}/{epoch}")
    return Update(roster.ed.index(env.sender), b["parent"], b["hash"], b["size"], b["samples"], wire)


class MissingBlob(Exception):
    """A blob the contract needs is not held locally (the caller fetches it and tries again)."""

    def __init__(self, h: bytes) -> None:
        super().__init__(h.hex()[:16])
        self.hash = h


@dataclass
class EpochResult:
    """A re-executed epoch: each update's verdict and score, and the new global model."""

    updates: list[Update]
    accepted: list[bool]
    scores: list[float | None]
    model: np.ndarray
    model_hash: bytes


@dataclass
class TaskBook:
    """One task as the chain has settled it.

    Attributes:
        auction: the re-derived auction.
        lowers: winning ES -> its lower game.
        model: the global model's hash after the epochs settled so far.
        epochs: epochs settled so far.
        history: ED -> hashes of its last accepted updates (the filter's memory).
        rejected: ``(epoch, ED, score)`` of every rejected update.
        accuracy: the requester's accuracy per epoch (the requester's book only).
        final: whether the final record has settled.
    """

    auction: Auction
    lowers: dict[int, Lower] = field(default_factory=dict)
    model: bytes = b""
    epochs: int = 0
    history: dict[int, deque[bytes]] = field(default_factory=dict)
    rejected: list[tuple[int, int, float | None]] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    final: bool = False

    @property
    def task(self) -> int:
        """The task number."""
        return self.auction.task

    def workers(self) -> dict[int, float]:
        """Participating ED -> its compute ``C_i``."""
        return {i: c for low in self.lowers.values() for i, (c, _) in low.joined.items()}

    def epoch_result(self, cfg: mk.MarketConfig, updates: Sequence[Update], blob: Callable[[bytes], np.ndarray],
                     parent_model: np.ndarray, cosines: dict[tuple[bytes, bytes], float] | None = None) -> EpochResult:
        """The FedAvg contract: screen every update against its ED's accepted history, average the accepted
        ones (weights = samples, ED order) onto the parent model.

        Raises:
            MissingBlob: an update or history blob is not held.
            Refuse: ``bad-update`` (not a worker, wrong parent, wrong size, two updates of one ED).
        """
        workers = self.workers()
        ordered = sorted(updates, key=lambda u: u.ed)
        if len({u.ed for u in ordered}) != len(ordered):
            raise Refuse("bad-update", "two updates of one edge device in an epoch")
        accepted, scores, deltas, samples = [], [], [], []
        for u in ordered:
            if u.ed not in workers:
                raise Refuse("bad-update", f"ED {u.ed} is not a worker of task {self.task}")
            if u.parent != self.model:
                raise Refuse("bad-update", "the update was trained on another global model")
            if u.size != parent_model.size:
                raise Refuse("bad-update", f"update of {u.size} values, the model has {parent_model.size}")
            delta = blob(u.hash)
            ok, score = True, None
            past = self.history.get(u.ed)
            if cfg.filter_threshold is not None and past:
                score = math.fsum(_cosine(cosines, blob, h, u.hash, delta) for h in past) / len(past)
                ok = score >= cfg.filter_threshold
            accepted.append(ok)
            scores.append(score)
            if ok:
                deltas.append(delta)
                samples.append(float(u.samples))
        model = mk.aggregate(parent_model, deltas, samples)
        return EpochResult(ordered, accepted, scores, model, mk.model_hash(model))

    def settle_epoch(self, cfg: mk.MarketConfig, result: EpochResult) -> None:
        """Record a settled epoch: the accepted updates join their EDs' history, the model advances."""
        for u, ok, score in zip(result.updates, result.accepted, result.scores, strict=True):
            if ok:
                self.history.setdefault(u.ed, deque(maxlen=cfg.filter_history)).append(u.hash)
            else:
                self.rejected.append((self.epochs, u.ed, score))
        self.model = result.model_hash
        self.epochs += 1


def _cosine(memo: dict[tuple[bytes, bytes], float] | None, blob: Callable[[bytes], np.ndarray], past: bytes,
            update: bytes, delta: np.ndarray) -> float:
    """The filter's cosine of an update with one of its ED's past updates; both are content-addressed, so the value
    is a function of the two hashes and ``memo`` keeps it (the ES screened its own updates already, and a proposer
    checks its candidate before it imports it)."""
    if memo is None:
        return cosine_similarity(blob(past), delta)
    key = (past, update)
    value = memo.get(key)
    if value is None:
        if len(memo) >= COSINES_KEPT:
            memo.clear()
        value = memo[key] = cosine_similarity(blob(past), delta)
    return value


COSINES_KEPT = 4096
"""Filter cosines a node keeps by ``(past update hash, update hash)``."""


def decode_record(raw: bytes, network_id: str) -> Envelope | None:
    """A tbcim ``tx/record`` of a block (None for any other transaction)."""
    try:
        tx = decode_tx(raw, network_id)
    except ProtocolError:
        return None
    if tx.type != "tx/record" or tx.market != msg.MARKET:
        return None
    return tx
