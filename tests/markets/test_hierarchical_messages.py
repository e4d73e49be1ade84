"""Hostile and malformed hierarchical messages are refused with coded reasons (pure checks, no network)."""

from __future__ import annotations

import pytest

from bazaar.ledger.amounts import to_units
from bazaar.ledger.txs import make_tx
from bazaar.node.markets.context import Refuse
from bazaar.node.markets.hierarchical.clearing import (
    Roster,
    book_of,
    escrow_id,
    escrow_ref,
    parse_bid,
    parse_offer,
)
from bazaar.protocol import KeyPair, seal
from bazaar.protocol.markets import hierarchical as msg

NID = "hier-test"
CCSP, MESPS, MINERS = KeyPair(b"\x01" * 32), [KeyPair(bytes([2 + j]) * 32) for j in range(2)], [
    KeyPair(bytes([10 + i]) * 32) for i in range(3)]
ROSTER = Roster((CCSP.public,), tuple(k.public for k in MESPS), tuple(k.public for k in MINERS))
ROUND = 4


def _lock(payer: KeyPair, amount: int, *, arbiter: bytes = CCSP.public, round_no: int = ROUND) -> bytes:
    return make_tx(payer, NID, "escrow_lock", {"id": escrow_id(round_no, payer.public), "payee": arbiter,
                                               "amount": amount, "expires": 50, "arbiter": arbiter,
                                               "ref": escrow_ref(round_no), "nonce": 1}, market=msg.MARKET,
                   round=round_no).wire


def _bid(miner: KeyPair, bid: float = 2.0, reach: tuple[int, ...] = (0, 1), seq: int = 1, **kw: object) -> bytes:
    body = {"demand": 100.0, "bid": bid, "block_size": 200.0, "reach": list(reach),
            "escrow": kw.get("escrow", _lock(miner, to_units(bid)))}
    return seal(miner, NID, msg.MSG_BID, body, seq=seq, market=msg.MARKET, round=ROUND).wire


def test_a_good_bid_parses() -> None:
    bid = parse_bid(_bid(MINERS[1]), NID, ROUND, ROSTER, max_bid=10.0)
    assert bid.index == 1 and bid.reach == (0, 1) and bid.bid == 2.0


@pytest.mark.parametrize(("wire", "reason"), [
    (lambda: _bid(MINERS[0], bid=50.0), "bid-over-cap"),
    (lambda: _bid(MINERS[0], reach=(5,)), "bad-reach"),
    (lambda: _bid(MINERS[0], escrow=_lock(MINERS[0], 1)), "bad-escrow"),
    (lambda: _bid(MINERS[0], escrow=_lock(MINERS[0], to_units(2.0), arbiter=MESPS[0].public)), "bad-escrow"),
    (lambda: _bid(MESPS[0]), "not-authorised"),
    (lambda: _bid(MINERS[0]).replace(b"block_size", b"block_sizf"), "bad-signature"),
])
def test_bad_bids_are_refused_with_a_reason(wire, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Refuse) as err:
        parse_bid(wire(), NID, ROUND, ROSTER, max_bid=10.0)
    assert err.value.reason == reason


def _offer(mesp: KeyPair, values: list[float], bids: list[bytes], *, lock: bool = True) -> bytes:
    body = {"values": values, "bids": bids,
            "escrow": _lock(mesp, to_units(max(values, default=0.0))) if lock and values and max(values) > 0
            else None}
    return seal(mesp, NID, msg.MSG_BUNDLE, body, seq=7, market=msg.MARKET, round=ROUND).wire


def test_offers_are_checked() -> None:
    bids = [_bid(MINERS[0]), _bid(MINERS[1])]
    offer = parse_offer(_offer(MESPS[0], [1.0, 2.0], bids), NID, ROUND, ROSTER, n_steps=2, max_bid=10.0)
    assert offer.index == 0 and len(offer.bids) == 2
    cases = [
        (_offer(MESPS[0], [1.0, 2.0, 3.0], bids), "bundle-over-capacity"),
        (_offer(MESPS[0], [1.0], bids), "bad-bundle"),
        (_offer(MESPS[0], [1.0, 2.0], bids, lock=False), "bad-escrow"),
        (_offer(MINERS[2], [1.0, 2.0], bids), "not-authorised"),
        (_offer(MESPS[1], [1.0, 2.0], [_bid(MINERS[0], reach=(0,))]), "bad-reach"),
    ]
    for wire, reason in cases:
        with pytest.raises(Refuse) as err:
            parse_offer(wire, NID, ROUND, ROSTER, n_steps=2, max_bid=10.0)
        assert err.value.reason == reason, reason


def test_a_miner_that_signs_two_different_bids_is_dropped_from_the_book() -> None:
    honest = _bid(MINERS[1])
    a = parse_offer(_offer(MESPS[0], [1.0], [_bid(MINERS[0], bid=2.0, seq=1), honest]), NID, ROUND, ROSTER, 1, 10.0)
    b = parse_offer(_offer(MESPS[1], [1.0], [_bid(MINERS[0], bid=3.0, seq=2), honest]), NID, ROUND, ROSTER, 1, 10.0)
    assert [x.miner for x in book_of([a, b])] == [MINERS[1].public]
