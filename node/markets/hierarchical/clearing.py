"""The hierarchical round as data: parsing the signed bids and offers, building the instance, clearing it,
and the settlement every validator re-derives (pure; no I/O).

Everyone computes with the same functions: a MESP its bundle row (:func:`bundle_row`), the CCSP the upper and
lower clearing (:func:`clear`), every MESP the same clearing to check the CCSP and publish its lower result,
and every validator (and a miner proposing a block) the settlement a block must carry
(:func:`expected_settlement`) from the signed messages the settlement record holds. With every participant
present the result equals ``bazaar solve hierarchical`` on the same parameter file (the same mechanism
functions, called the same way).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import MAX_RECORD_DATA, decode_tx
from bazaar.mechanisms import hierarchical as mech
from bazaar.mechanisms.hierarchical.network import n_bundle_steps
from bazaar.protocol import Envelope, ProtocolError, codec
from bazaar.protocol.markets import hierarchical as msg
from bazaar.protocol.verified import checked_key, open_checked

from ..context import Refuse
from .memo import Memo

NO_TRADE = mech.NO_TRADE


def escrow_id(round_no: int, payer: bytes) -> bytes:
    """The escrow a payer locks in one round (a miner for its bid, a MESP for its bundle bid)."""
    return hashlib.sha256(b"hierarchical/escrow" + round_no.to_bytes(8, "big") + payer).digest()


def escrow_ref(round_no: int) -> bytes:
    """The ``ref`` every escrow of a round carries (how validators recognise this market's escrows)."""
    return f"hierarchical/{round_no}".encode()


@dataclass(frozen=True)
class Roster:
    """Who is who: keys in scenario order (the parameter file's miner and MESP indices)."""

    ccsps: tuple[bytes, ...]
    mesps: tuple[bytes, ...]
    miners: tuple[bytes, ...]

    @property
    def leader(self) -> bytes:
        """The CCSP that leads rounds, arbitrates the escrows and publishes the lottery weights."""
        return self.ccsps[0]


@dataclass(frozen=True)
class MinerBid:
    """A miner's signed bid, checked."""

    miner: bytes
    index: int
    demand: float
    bid: float
    block_size: float
    reach: tuple[int, ...]
    lock: bytes
    wire: bytes


@dataclass(frozen=True)
class Offer:
    """A MESP's signed bundle offer, checked: its row, the miner bids it accepted, its escrow lock."""

    mesp: bytes
    index: int
    values: tuple[float, ...]
    bids: tuple[MinerBid, ...]
    lock: bytes | None
    wire: bytes


def _open(wire: bytes, network_id: str, mtype: str, round_no: int) -> Envelope:
    try:
        env = open_checked(wire, network_id)  # a bid is opened by its MESPs, in both offers, in every import
    except ProtocolError as err:
        raise Refuse(err.reason, f"embedded {mtype}: {err.detail}") from err
    if env.type != mtype or env.round != round_no or env.market != msg.MARKET:
        raise Refuse("wrong-round", f"expected a {mtype} of round {round_no}")
    return env


def check_lock(raw: bytes, network_id: str, *, payer: bytes, amount: int, arbiter: bytes, round_no: int) -> None:
    """An escrow lock must lock ``amount`` of ``payer`` under the round's id, with the leader as arbiter.

    Raises:
        Refuse: ``bad-escrow``.
    """
    try:
        lock = decode_tx(raw, network_id)
    except ProtocolError as err:
        raise Refuse("bad-escrow", f"escrow lock: {err.reason}") from err
    b = lock.body
    if (lock.type != "tx/escrow_lock" or lock.sender != payer or b["amount"] != amount
            or b["id"] != escrow_id(round_no, payer) or b.get("arbiter") != arbiter or b["payee"] != arbiter
            or b.get("ref") != escrow_ref(round_no)):
        raise Refuse("bad-escrow", "escrow lock must lock the bid under this round's id with the CCSP as arbiter")


BIDS: Memo[MinerBid] = Memo(1024)
"""Bids that passed :func:`parse_bid`, by (signed bytes under the network, round, roster, cap)."""
OFFERS: Memo[Offer] = Memo(64)
"""Offers that passed :func:`parse_offer`, by (signed bytes under the network, round, roster, steps, cap)."""


def parse_bid(wire: bytes, network_id: str, round_no: int, roster: Roster, max_bid: float) -> MinerBid:
    """Check a miner's signed bid (signature, schema, round, sender, reach, cap, escrow lock).

    A pure function of its arguments: a bid that passed once in this process is not checked again (:data:`BIDS`).

    Raises:
        Refuse: ``not-authorised`` (not a miner), ``bid-over-cap``, ``bad-reach``, ``bad-escrow`` or a protocol
            reason.
    """
    key = (checked_key(wire, network_id), round_no, roster, max_bid)
    known = BIDS.get(key)
    if known is not None:
        return known
    bid = _parse_bid(wire, network_id, round_no, roster, max_bid)
    BIDS.put(key, bid)
    return bid


def _parse_bid(wire: bytes, network_id: str, round_no: int, roster: Roster, max_bid: float) -> MinerBid:
    env = _open(wire, network_id, msg.MSG_BID, round_no)
    if env.sender not in roster.miners:
        raise Refuse("not-authorised", "bid not signed by a miner")
    body = env.body
    if body["bid"] > max_bid:
        raise Refuse("bid-over-cap", f"bid {body['bid']:g} > cap {max_bid:g}")
    reach = tuple(sorted(set(body["reach"])))
    if any(j >= len(roster.mesps) for j in reach):
        raise Refuse("bad-reach", "reach names an unknown MESP")
    check_lock(body["escrow"], network_id, payer=env.sender, amount=to_units(body["bid"]), arbiter=roster.leader,
               round_no=round_no)
    return MinerBid(env.sender, roster.miners.index(env.sender), float(body["demand"]), float(body["bid"]),
                    float(body["block_size"]), reach, body["escrow"], wire)


def parse_offer(wire: bytes, network_id: str, round_no: int, roster: Roster, n_steps: int,
                max_bid: float) -> Offer:
    """Check a MESP's signed offer and every miner bid inside it.

    A pure function of its arguments: an offer that passed once in this process is not checked again
    (:data:`OFFERS`; the leading CCSP checked it on arrival, a MESP in the upper result, before their imports).

    Raises:
        Refuse: ``bundle-over-capacity`` (bundles beyond the spare capacity), ``bad-bundle``, ``not-authorised``,
            ``bad-escrow``, or a reason of :func:`parse_bid`.
    """
    key = (checked_key(wire, network_id), round_no, roster, n_steps, max_bid)
    known = OFFERS.get(key)
    if known is not None:
        return known
    offer = _parse_offer(wire, network_id, round_no, roster, n_steps, max_bid)
    OFFERS.put(key, offer)
    return offer


def _parse_offer(wire: bytes, network_id: str, round_no: int, roster: Roster, n_steps: int,
                 max_bid: float) -> Offer:
    env = _open(wire, network_id, msg.MSG_BUNDLE, round_no)
    if env.sender not in roster.mesps:
        raise Refuse("not-authorised", "offer not signed by a MESP")
    values = tuple(float(v) for v in env.body["values"])
    if len(values) > n_steps:
        raise Refuse("bundle-over-capacity", f"{len(values)} bundle bids > {n_steps} steps of spare capacity")
    if len(values) != n_steps:
        raise Refuse("bad-bundle", f"expected {n_steps} bundle bids, got {len(values)}")
    index = roster.mesps.index(env.sender)
    bids = tuple(parse_bid(w, network_id, round_no, roster, max_bid) for w in env.body["bids"])
    if any(index not in b.reach for b in bids):
        raise Refuse("bad-reach", "offer forwards a bid that cannot reach this MESP")
    lock = env.body.get("escrow")
    top = to_units(max(values, default=0.0))
    if top > 0:
        if lock is None:
            raise Refuse("bad-escrow", "an offer with positive bundle bids must lock its largest bid")
        check_lock(lock, network_id, payer=env.sender, amount=top, arbiter=roster.leader, round_no=round_no)
    return Offer(env.sender, index, values, bids, lock if top > 0 else None, wire)


def book_of(offers: list[Offer]) -> list[MinerBid]:
    """The union of the miners' bids forwarded by the offers, in miner order; a miner that signed two
    different bids in one round is dropped (it equivocated)."""
    seen: dict[bytes, MinerBid] = {}
    bad: set[bytes] = set()
    for offer in offers:
        for bid in offer.bids:
            known = seen.get(bid.miner)
            if known is not None and known.wire != bid.wire:
                bad.add(bid.miner)
            seen.setdefault(bid.miner, bid)
    return sorted((b for m, b in seen.items() if m not in bad), key=lambda b: b.index)


def spare(p: dict[str, Any]) -> float:
    """Cloud units for sale in the single-CCSP market: ``C − Σ C_j`` over every MESP of the file."""
    return float(p["ccsp_capacity"]) - float(sum(p["mesp_capacity"]))


def n_steps(p: dict[str, Any]) -> int:
    """Bundle steps each MESP bids for."""
    sold = max(p["ccsp_capacity"]) if isinstance(p["ccsp_capacity"], list) else spare(p)
    return n_bundle_steps(float(sold), p["bundle_step"])


def single_instance(p: dict[str, Any], book: list[MinerBid], mesps: list[int]) -> mech.HierarchicalInstance:
    """The single-CCSP instance of the bids in ``book`` against the MESPs ``mesps`` (file indices)."""
    caps = np.array([p["mesp_capacity"][j] for j in mesps], float)
    asks = np.array([p["mesp_ask"][j] for j in mesps], float)
    reach = np.array([[j in b.reach for j in mesps] for b in book], dtype=bool).reshape(len(book), len(mesps))
    return mech.make_instance([b.demand for b in book], [b.bid for b in book], caps, asks,
                              spare(p) + float(caps.sum()), p["bundle_step"], p["ccsp_cost"], p["base_price"], reach)


def multi_instance(p: dict[str, Any], book: list[MinerBid], mesps: list[int]) -> mech.MultiCcspInstance:
    """The multi-CCSP instance (every miner reaches every MESP there)."""
    return mech.make_multi_instance([b.demand for b in book], [b.bid for b in book],
                                    [p["mesp_capacity"][j] for j in mesps], [p["mesp_ask"][j] for j in mesps],
                                    p["ccsp_capacity"], p["ccsp_ask"], p["bundle_step"], p["base_price"])


def bundle_row(p: dict[str, Any], book: list[MinerBid], mesps: list[int], j: int) -> list[float]:
    """MESP ``j``'s bundle bids: its exact lower-level surplus gain for every bundle on the grid."""
    pos = mesps.index(j)
    if isinstance(p["ccsp_capacity"], list):
        row = mech.multi_mesp_bundle_bids(multi_instance(p, book, mesps), pos, p["lower"])
    else:
        row = mech.mesp_bundle_bids(single_instance(p, book, mesps), pos, p["lower"])
    return [float(x) for x in row]


@dataclass
class Cleared:
    """One cleared round (arrays per present MESP and per book entry).

    Attributes:
        mesps: file indices of the MESPs whose offers were cleared.
        book: the miners' bids, in miner order.
        bundles, ccsp_of, mesp_payments: per present MESP.
        assignment: per bid, the serving MESP's file index or −1; miner_payments per bid.
        welfare, utilisation: figures of the round (the joint-MILP optimum beside them is solved in a child
            process: reference.py, docs/adr/0143).
        upper_welfare, upper_bound: the upper level's welfare and (Lagrangian) dual bound.
        weights: lottery weights per bid.
    """

    mesps: list[int]
    book: list[MinerBid]
    bundles: np.ndarray
    ccsp_of: np.ndarray
    mesp_payments: np.ndarray
    assignment: np.ndarray
    miner_payments: np.ndarray
    welfare: float
    utilisation: float
    upper_welfare: float
    upper_bound: float | None
    weights: list[int]


CLEARED: Memo[Cleared] = Memo(32)
"""Clearings, by (parameters, the offers cleared)."""


def clear(p: dict[str, Any], offers: list[Offer]) -> Cleared:
    """Clear the upper level on the offers' rows, then the lower level on the awarded capacities.

    Deterministic in the parameters and the offers: a round this process cleared already (the leader before its
    import, a MESP when it checked the upper result) is not solved again (:data:`CLEARED`; each call returns its
    own copy).

    Raises:
        MechanismError: the offers do not form a valid market.
    """
    offers = sorted(offers, key=lambda o: o.index)
    key = (json.dumps(p, sort_keys=True, default=repr), tuple(offers))
    known = CLEARED.get(key)
    if known is None:
        known = _clear(p, offers)
        CLEARED.put(key, known)
    return _copy(known)


def _copy(c: Cleared) -> Cleared:
    return replace(c, mesps=list(c.mesps), book=list(c.book), bundles=c.bundles.copy(), ccsp_of=c.ccsp_of.copy(),
                   mesp_payments=c.mesp_payments.copy(), assignment=c.assignment.copy(),
                   miner_payments=c.miner_payments.copy(), weights=list(c.weights))


def _clear(p: dict[str, Any], offers: list[Offer]) -> Cleared:
    mesps = [o.index for o in offers]
    book = book_of(offers)
    rows = [np.array(o.values, float) for o in offers]
    upper_bound: float | None = None
    if isinstance(p["ccsp_capacity"], list):
        inst = multi_instance(p, book, mesps)
        up = mech.clear_multi_upper_from_rows(inst, rows, p["upper"])
        bundles, ccsp_of, pay_up, up_welfare, upper_bound = up
        single = inst.single()
        low = mech.clear_lower(single.lower_market(bundles), p["lower"])
        cloud = sum(float(inst.ccsp_ask[int(k)] * bundles[j]) for j, k in enumerate(ccsp_of) if k != NO_TRADE)
        welfare = float(low.surplus - cloud)
        total = float(inst.mesp_capacity.sum() + inst.ccsp_capacity.sum())
        served = float(inst.demand[low.assignment != NO_TRADE].sum())
        util = served / total if total > 0 else 0.0
    else:
        sinst = single_instance(p, book, mesps)
        upo = mech.clear_upper_from_rows(rows, p["bundle_step"], sinst.spare, sinst.ccsp_cost, p["upper"])
        bundles, pay_up, up_welfare = upo.bundles, upo.payments, float(upo.welfare)
        ccsp_of = np.where(bundles > 0, 0, NO_TRADE)
        low = mech.clear_lower(sinst.lower_market(bundles), p["lower"])
        welfare = mech.hierarchical_welfare(sinst, low.assignment, bundles)
        util = mech.utilization(sinst, low.assignment)
    assignment = np.array([mesps[int(j)] if j != NO_TRADE else NO_TRADE for j in low.assignment], dtype=int)
    served_mask = assignment != NO_TRADE
    weights = (mech.lottery_weights([b.demand for b in book], served_mask, [b.block_size for b in book],
                                    p["arrival_rate"], p["propagation_delay"]) if book else [])
    return Cleared(mesps, book, np.asarray(bundles, float), np.asarray(ccsp_of, int), np.asarray(pay_up, float),
                   assignment, np.asarray(low.payments, float), float(welfare), float(util),
                   float(up_welfare), upper_bound, list(weights))


def outcome_doc(cleared: Cleared, n_miners: int, n_mesps: int, multi: bool) -> dict[str, Any]:
    """The settled outcome in the offline solver's shape (file order; absent miners unserved, pay 0)."""
    assignment: list[int | None] = [None] * n_miners
    payments = [0.0] * n_miners
    weights = [0] * n_miners
    for b, j, pay, w in zip(cleared.book, cleared.assignment, cleared.miner_payments, cleared.weights, strict=True):
        assignment[b.index] = None if j == NO_TRADE else int(j)
        payments[b.index] = float(pay)
        weights[b.index] = int(w)
    bundles = [0.0] * n_mesps
    mesp_pay = [0.0] * n_mesps
    ccsp_of: list[int | None] = [None] * n_mesps
    for pos, j in enumerate(cleared.mesps):
        bundles[j] = float(cleared.bundles[pos])
        mesp_pay[j] = float(cleared.mesp_payments[pos])
        ccsp_of[j] = None if cleared.ccsp_of[pos] == NO_TRADE else int(cleared.ccsp_of[pos])
    doc: dict[str, Any] = {
        "assignment": assignment, "bundles": bundles, "miner_payments": payments, "mesp_payments": mesp_pay,
        "welfare": cleared.welfare, "optimum_welfare": None, "utilisation": cleared.utilisation,
        "utilization": cleared.utilisation, "lottery_weights": weights, "upper_welfare": cleared.upper_welfare,
    }
    if multi:
        doc["ccsp_of"] = ccsp_of
        doc["upper_bound"] = cleared.upper_bound
        bound = cleared.upper_bound
        doc["duality_gap"] = (None if bound is None or not np.isfinite(bound) or abs(bound) < 1e-12
                              else float((bound - cleared.upper_welfare) / abs(bound)))
    return doc


def lower_result(cleared: Cleared, j: int) -> dict[bytes, float]:
    """MESP ``j``'s lower result: the miners it serves and what each pays."""
    return {b.miner: float(pay) for b, m, pay in zip(cleared.book, cleared.assignment, cleared.miner_payments,
                                                     strict=True) if m == j}


@dataclass(frozen=True)
class Settlement:
    """What the settlement of a round must move: escrow id -> (recipient, micro-tokens), and the weights."""

    locks: list[bytes]
    settles: dict[bytes, tuple[bytes, int]]
    weights: list[list[Any]]


def expected_settlement(p: dict[str, Any], round_no: int, offers: list[Offer], lowers: dict[int, dict[bytes, float]],
                        roster: Roster) -> tuple[Cleared, Settlement]:
    """Clear the round and derive every escrow movement. A miner is paid out to its MESP only when that MESP's
    signed lower result lists it with the same payment; otherwise (and for every loser) its escrow is refunded.
    A MESP pays its CCSP only when it published a lower result.

    Raises:
        MechanismError: the offers do not form a valid market.
    """
    return settle_cleared(clear(p, offers), round_no, offers, lowers, roster)


def settle_cleared(cleared: Cleared, round_no: int, offers: list[Offer], lowers: dict[int, dict[bytes, float]],
                   roster: Roster) -> tuple[Cleared, Settlement]:
    """:func:`expected_settlement` of a round already cleared from these ``offers`` (the leader's own clearing:
    the same inputs give the same clearing, so it is not solved twice on the round's path, docs/adr/0157)."""
    locks: list[bytes] = []
    settles: dict[bytes, tuple[bytes, int]] = {}
    for b, j, pay in zip(cleared.book, cleared.assignment, cleared.miner_payments, strict=True):
        locks.append(b.lock)
        lock_amount = to_units(b.bid)
        confirmed = j != NO_TRADE and j in lowers and abs(lowers[j].get(b.miner, -1.0) - pay) <= 1e-9 * max(1, pay)
        to = roster.mesps[j] if confirmed else roster.leader
        settles[escrow_id(round_no, b.miner)] = (to, min(to_units(pay), lock_amount) if confirmed else 0)
    for offer, k, pay in zip(sorted(offers, key=lambda o: o.index), cleared.ccsp_of, cleared.mesp_payments,
                             strict=True):
        if offer.lock is None:
            continue
        locks.append(offer.lock)
        took = k != NO_TRADE and offer.index in lowers
        to = roster.ccsps[int(k)] if took else roster.leader
        settles[escrow_id(round_no, offer.mesp)] = (to, min(to_units(pay), to_units(max(offer.values))) if took
                                                    else 0)
    weights = [[b.miner, int(w)] for b, w in zip(cleared.book, cleared.weights, strict=True) if w > 0]
    return cleared, Settlement(locks, settles, weights)


def parse_lower(wire: bytes, network_id: str, round_no: int, roster: Roster) -> tuple[int, dict[bytes, float]]:
    """A MESP's signed lower result: ``(mesp index, {miner: payment})``.

    Raises:
        Refuse: not signed by a MESP, or not of this round.
    """
    env = _open(wire, network_id, msg.MSG_LOWER, round_no)
    if env.sender not in roster.mesps:
        raise Refuse("not-authorised", "lower result not signed by a MESP")
    return roster.mesps.index(env.sender), {k: float(v) for k, v in env.body["served"].items()}



def record_parts(offers: list[bytes], lowers: list[bytes], *,
                 cap: int = MAX_RECORD_DATA) -> list[dict[str, Any]] | None:
    """The settlement record's data ``{offers, lowers}`` split into as few parts as fit ``cap`` bytes each (every
    part one ``tx/record`` of the round; the contract joins a round's parts in their block order). Offers stay
    whole and in order, the lower results go into the last part (a part of their own when they do not fit).
    None when one offer alone exceeds ``cap`` (the round cannot settle: its MESP forwarded too many bids)."""
    parts: list[dict[str, Any]] = []
    current: list[bytes] = []
    for wire in offers:
        if len(codec.encode({"offers": [*current, wire], "lowers": []})) <= cap:
            current.append(wire)
            continue
        if not current:
            return None
        parts.append({"offers": current, "lowers": []})
        current = [wire]
        if len(codec.encode({"offers": current, "lowers": []})) > cap:
            return None
    if len(codec.encode({"offers": current, "lowers": lowers})) <= cap:
        parts.append({"offers": current, "lowers": lowers})
    elif len(codec.encode({"offers": [], "lowers": lowers})) <= cap:
        parts += [{"offers": current, "lowers": []}, {"offers": [], "lowers": lowers}]
    else:
        return None
    return parts


def joined_record(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One round's settlement record parts (in block order) joined into ``{offers, lowers}``.

    Raises:
        KeyError, TypeError: a part is not ``{offers: [...], lowers: [...]}``.
    """
    return {"offers": [w for p in parts for w in p["offers"]], "lowers": [w for p in parts for w in p["lowers"]]}
