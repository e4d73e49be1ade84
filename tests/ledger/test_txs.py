"""Transactions: schemas, every reject reason, nonces, escrow flows, stake / unstake, records."""

from __future__ import annotations

import pytest

from bazaar.ledger import bls
from bazaar.ledger.errors import InvalidBlock, InvalidTx
from bazaar.ledger.execute import check_tx
from bazaar.ledger.txs import decode_tx, make_tx
from bazaar.protocol.errors import SchemaError, SignatureError

from .helpers import NID, Net

ESC = b"\x11" * 32


def reject(net: Net, raw: bytes) -> str:
    """The reason the state rejects ``raw``; also checks that a block containing it is invalid."""
    env = decode_tx(raw, NID)
    with pytest.raises(InvalidTx) as info:
        check_tx(net.state, env)
    block, _, rejected = net.build([raw])
    assert rejected and rejected[0][1].reason == info.value.reason and not block.txs
    net._nonces.clear()  # the rejected transaction did not use up its nonce
    return info.value.reason


def test_transfer_moves_tokens_and_mints_reward() -> None:
    net = Net()
    a, b = net.acct("alice"), net.acct("bob")
    block, rejected = net.commit([net.tx("alice", "transfer", to=b, amount=250)])
    assert not rejected
    assert net.state.balance(a) == 1_000_000 - 250 and net.state.balance(b) == 1_000_000 + 250
    assert net.state.balance(block.header.proposer) == 100 + 1
    assert net.state.supply.minted == 101 and net.state.conserved()


def test_schema_rejects_malformed_bodies() -> None:
    key = Net().keys["alice"]
    for body in (
        {"to": b"x", "amount": 1, "nonce": 1},
        {"to": bytes(32), "amount": 0, "nonce": 1},
        {"to": bytes(32), "amount": 1.0, "nonce": 1},
        {"to": bytes(32), "amount": 1, "nonce": 0},
        {"to": bytes(32), "amount": 1, "nonce": 1, "extra": 1},
    ):
        with pytest.raises(SchemaError):
            make_tx(key, NID, "transfer", body)
    with pytest.raises(SchemaError):
        make_tx(key, NID, "record", {"kind": "price", "data": {"x": b"\x00" * (70 << 10)}, "nonce": 1})
    with pytest.raises(SchemaError):
        make_tx(key, NID, "mint", {"nonce": 1})


def test_decode_tx_checks_network_signature_and_seq() -> None:
    net = Net()
    raw = net.tx("alice", "transfer", to=net.acct("bob"), amount=1)
    assert decode_tx(raw, NID).body["amount"] == 1
    with pytest.raises(SignatureError):
        decode_tx(raw, "other-net")
    from bazaar.protocol.envelope import seal

    bad = seal(net.keys["alice"], NID, "tx/transfer", {"to": net.acct("bob"), "amount": 1, "nonce": 2}, seq=5)
    with pytest.raises(SchemaError):
        decode_tx(bad.wire, NID)


def test_nonce_replay_and_out_of_order() -> None:
    net = Net()
    first = net.tx("alice", "transfer", to=net.acct("bob"), amount=1)
    net.commit([first])
    assert reject(net, first) == "bad-nonce"  # replay
    assert reject(net, net.tx("alice", "transfer", to=net.acct("bob"), amount=1, nonce=3)) == "bad-nonce"
    # in one block: 2 then 3 applies, a second 3 is skipped
    t2 = net.tx("alice", "transfer", to=net.acct("bob"), amount=1, nonce=2)
    t3 = net.tx("alice", "transfer", to=net.acct("bob"), amount=1, nonce=3)
    t3b = net.tx("alice", "transfer", to=net.acct("carol"), amount=1, nonce=3)
    block, rejected = net.commit([t3, t2, t3, t3b])
    assert [r.reason for _, r in rejected] == ["bad-nonce", "bad-nonce"]
    assert len(block.txs) == 2 and net.state.nonce(net.acct("alice")) == 3


def test_insufficient_funds() -> None:
    net = Net(balance=10)
    assert reject(net, net.tx("alice", "transfer", to=net.acct("bob"), amount=11)) == "insufficient-funds"
    assert reject(
        net, net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=11, expires=5)
    ) == ("insufficient-funds")


def lock(net: Net, *, arbiter: bytes | None = None, expires: int = 3, amount: int = 500) -> None:
    body = {"id": ESC, "payee": net.acct("bob"), "amount": amount, "expires": expires, "ref": b"auction-7"}
    if arbiter is not None:
        body["arbiter"] = arbiter
    net.commit([net.tx("alice", "escrow_lock", market="hierarchical", **body)])
    e = net.state.escrow(ESC)
    assert e is not None and e.amount == amount and e.market == "hierarchical" and e.ref == b"auction-7"
    assert net.state.conserved()


@pytest.mark.parametrize("who", ["alice", "carol"])
def test_release_by_payer_or_arbiter_pays_payee(who: str) -> None:
    net = Net()
    lock(net, arbiter=net.acct("carol"))
    bob = net.state.balance(net.acct("bob"))
    net.commit([net.tx(who, "escrow_release", id=ESC)])
    assert net.state.escrow(ESC) is None and net.state.balance(net.acct("bob")) == bob + 500


def test_release_by_others_is_refused() -> None:
    net = Net()
    lock(net)
    assert reject(net, net.tx("bob", "escrow_release", id=ESC)) == "not-authorised"
    assert reject(net, net.tx("dave", "escrow_release", id=ESC)) == "not-authorised"
    assert reject(net, net.tx("alice", "escrow_release", id=b"\x22" * 32)) == "unknown-escrow"
    assert reject(
        net, net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=1, expires=9)
    ) == ("escrow-exists")


def test_expired_escrows_are_refunded_by_the_end_of_block_rule() -> None:
    """At height h every open escrow with expires < h returns to its payer, with no transaction (issue 12)."""
    net = Net()
    alice, carol = net.acct("alice"), net.acct("carol")
    ids = [bytes([i]) * 32 for i in (3, 1, 2)]
    net.commit([net.tx("alice", "escrow_lock", id=ids[0], payee=net.acct("bob"), amount=100, expires=2),
                net.tx("alice", "escrow_lock", id=ids[1], payee=net.acct("bob"), amount=200, expires=2,
                       arbiter=net.acct("dave")),
                net.tx("carol", "escrow_lock", id=ids[2], payee=net.acct("bob"), amount=300, expires=2),
                net.tx("carol", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=50, expires=9)])
    balances = {a: net.state.balance(a) for a in (alice, carol)}
    assert sorted(net.state.expiring[2]) == sorted(ids) and net.state.expiring[9] == {ESC}
    net.commit([])  # height 2 == expires: still locked
    assert all(net.state.escrow(i) is not None for i in ids) and net.state.expired == ()
    block, _ = net.commit([])  # height 3 > expires: all three return
    rewards = {a: (block.header.reward if block.header.proposer == a else 0) for a in (alice, carol)}
    assert all(net.state.escrow(i) is None for i in ids) and net.state.escrow(ESC) is not None
    assert net.state.expired == tuple(sorted(ids))
    assert net.state.balance(alice) == balances[alice] + 300 + rewards[alice]
    assert net.state.balance(carol) == balances[carol] + 300 + rewards[carol]
    assert 2 not in net.state.expiring and net.state.conserved()
    net.commit([])
    assert net.state.expired == ()  # only the head block's refunds


def test_the_expiry_rule_leaves_settled_and_relocked_escrows_alone() -> None:
    """An escrow released in the block it expires in is paid, not refunded; an id closed and locked again
    in that block keeps its new lock; the payer's own refund in that block still works."""
    net = Net()
    other = b"\x33" * 32
    net.commit([net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=100, expires=1),
                net.tx("carol", "escrow_lock", id=other, payee=net.acct("bob"), amount=70, expires=1)])
    bob, carol = net.state.balance(net.acct("bob")), net.state.balance(net.acct("carol"))
    block, rejected = net.commit([
        net.tx("alice", "escrow_release", id=ESC),
        net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=40, expires=5),
        net.tx("carol", "escrow_refund", id=other),  # height 2 > expires 1: the payer may
    ])
    assert not rejected
    paid = block.header.reward if block.header.proposer == net.acct("bob") else 0
    assert net.state.balance(net.acct("bob")) == bob + 100 + paid
    again = net.state.escrow(ESC)
    assert again is not None and again.amount == 40 and again.expires == 5 and net.state.expiring[5] == {ESC}
    assert net.state.expired == () and net.state.escrow(other) is None
    assert net.state.balance(net.acct("carol")) >= carol + 70 and net.state.conserved()


def test_a_partly_taken_contract_escrow_expires_with_its_rest() -> None:
    from bazaar.ledger.txs import contract_account

    net = Net()
    contract = contract_account("cloudchain")
    net.commit([net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("alice"), amount=500, expires=2,
                       arbiter=contract, market="cloudchain")])
    alice = net.state.balance(net.acct("alice"))
    net.commit([])
    block, _ = net.commit([])  # height 3
    reward = block.header.reward if block.header.proposer == net.acct("alice") else 0
    assert net.state.escrow(ESC) is None and net.state.balance(net.acct("alice")) == alice + 500 + reward


def test_refund_by_payee_any_time_by_payer_only_after_expiry() -> None:
    net = Net()
    lock(net, expires=3)  # locked at height 1
    alice = net.state.balance(net.acct("alice"))
    assert reject(net, net.tx("alice", "escrow_refund", id=ESC)) == "not-expired"  # height 2
    net.commit([])  # height 2
    assert reject(net, net.tx("alice", "escrow_refund", id=ESC)) == "not-expired"  # height 3 == expires
    assert reject(net, net.tx("dave", "escrow_refund", id=ESC)) == "not-authorised"
    net.commit([])  # height 3
    net.commit([net.tx("alice", "escrow_refund", id=ESC)])  # height 4 > expires
    assert net.state.escrow(ESC) is None and net.state.balance(net.acct("alice")) == alice + 500

    net2 = Net()
    lock(net2, expires=100)
    alice2 = net2.state.balance(net2.acct("alice"))
    net2.commit([net2.tx("bob", "escrow_refund", id=ESC)])
    assert net2.state.balance(net2.acct("alice")) == alice2 + 500 and net2.state.conserved()


def test_settle_by_the_arbiter_splits_the_escrow() -> None:
    net = Net()
    lock(net, arbiter=net.acct("dave"))
    alice, carol = net.state.balance(net.acct("alice")), net.state.balance(net.acct("carol"))
    assert reject(net, net.tx("alice", "escrow_settle", id=ESC, to=net.acct("carol"), amount=1)) == "not-authorised"
    assert reject(net, net.tx("bob", "escrow_settle", id=ESC, to=net.acct("carol"), amount=1)) == "not-authorised"
    assert reject(net, net.tx("dave", "escrow_settle", id=ESC, to=net.acct("carol"), amount=501)) == "over-escrow"
    net.commit([net.tx("dave", "escrow_settle", id=ESC, to=net.acct("carol"), amount=120)])
    assert net.state.escrow(ESC) is None
    assert net.state.balance(net.acct("carol")) == carol + 120
    assert net.state.balance(net.acct("alice")) == alice + 380
    assert net.state.conserved()


def test_split_by_the_arbiter_pays_several_payees_and_refunds_the_rest() -> None:
    net = Net()
    lock(net, arbiter=net.acct("dave"))
    alice, bob, carol = (net.state.balance(net.acct(u)) for u in ("alice", "bob", "carol"))
    to = {net.acct("bob"): 100, net.acct("carol"): 150}
    assert reject(net, net.tx("alice", "escrow_split", id=ESC, to=to)) == "not-authorised"
    assert reject(net, net.tx("dave", "escrow_split", id=ESC, to={**to, net.acct("bob"): 351})) == "over-escrow"
    net.commit([net.tx("dave", "escrow_split", id=ESC, to=to)])
    assert net.state.escrow(ESC) is None
    assert net.state.balance(net.acct("bob")) == bob + 100 and net.state.balance(net.acct("carol")) == carol + 150
    assert net.state.balance(net.acct("alice")) == alice + 250
    assert net.state.conserved()
    net.commit([net.tx("dave", "escrow_split", id=ESC, to=to)])  # closed: splits nothing, the nonce is spent
    assert net.state.balance(net.acct("bob")) == bob + 100 and net.state.conserved()


def test_settling_an_escrow_that_is_not_open_moves_nothing() -> None:
    """A settlement instruction for an escrow that never opened (its lock failed) or is closed is spent and moves
    nothing, so the arbiter's later instructions in the same batch still apply."""
    net = Net()
    users = [net.acct(u) for u in ("alice", "bob", "carol", "dave")]
    before = {a: net.state.balance(a) for a in users}
    net.commit([net.tx("dave", "escrow_settle", id=b"\x22" * 32, to=net.acct("carol"), amount=1)])
    assert {a: net.state.balance(a) for a in users} == before
    assert net.state.nonce(net.acct("dave")) == 1 and net.state.conserved()


def test_settle_of_zero_is_a_full_refund_and_needs_an_arbiter() -> None:
    net = Net()
    lock(net, arbiter=net.acct("dave"))
    alice = net.state.balance(net.acct("alice"))
    net.commit([net.tx("dave", "escrow_settle", id=ESC, to=net.acct("carol"), amount=0)])
    assert net.state.balance(net.acct("alice")) == alice + 500 and net.state.escrow(ESC) is None
    other = Net()
    lock(other)  # no arbiter: nobody may settle it this way
    assert reject(other, other.tx("bob", "escrow_settle", id=ESC, to=other.acct("bob"), amount=1)) == (
        "not-authorised")


def test_lock_with_past_expiry_is_refused() -> None:
    net = Net()
    net.commit([])
    net.commit([])
    assert reject(
        net, net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("bob"), amount=1, expires=1)
    ) == ("bad-expiry")


def stake_body(net: Net, label: str, amount: int) -> dict[str, object]:
    sk = net.bls_secret(label)
    return {"amount": amount, "bls_pubkey": bls.sk_to_pk(sk), "bls_pop": bls.pop_prove(sk)}


def test_stake_registers_validator_and_unstake_returns_tokens_after_unbonding() -> None:
    net = Net(params={"unbonding_blocks": 4})
    dave = net.acct("dave")
    blocks = [net.commit([net.tx("dave", "stake", **stake_body(net, "dave", 4_000))])[0]]
    assert net.state.stake(dave) == 4_000 and dave in net.state.validator_weights()
    assert net.state.validators[dave] == bls.sk_to_pk(net.bls_secret("dave"))
    blocks.append(net.commit([net.tx("dave", "stake", amount=1_000)])[0])  # later stakes need no key
    blocks.append(net.commit([net.tx("dave", "unstake", amount=5_000)])[0])  # height 3: released at 7
    assert net.state.stake(dave) == 0 and dave not in net.state.validator_weights()
    assert dave not in net.state.proposer_weights()  # unbonding is no weight
    for height in range(4, 7):
        earned = sum(b.header.reward for b in blocks if b.header.proposer == dave)
        assert net.state.unbonding_of(dave) == 5_000 and net.state.balance(dave) == 995_000 + earned
        assert dict(net.state.unbonding) == {7: {dave: 5_000}} and net.state.conserved()
        blocks.append(net.commit([])[0])
        assert net.state.height == height
    blocks.append(net.commit([])[0])  # height 7: released by the end-of-block rule
    earned = sum(b.header.reward for b in blocks if b.header.proposer == dave)
    assert net.state.unbonding_of(dave) == 0 and not net.state.unbonding
    assert net.state.balance(dave) == 1_000_000 + earned and net.state.conserved()


def test_unbonding_defaults_to_twenty_blocks_and_zero_releases_in_the_same_block() -> None:
    assert Net().genesis.unbonding_blocks == 20
    net = Net(params={"unbonding_blocks": 0})
    v0 = net.acct("v0")
    before = net.state.balance(v0)
    block, _ = net.commit([net.tx("v0", "unstake", amount=400)])
    reward = block.header.reward if block.header.proposer == v0 else 0
    assert net.state.balance(v0) == before + 400 + reward and not net.state.unbonding
    with pytest.raises(ValueError, match="unbonding_blocks"):
        Net(params={"unbonding_blocks": -1})


def test_unbonding_is_in_the_state_root() -> None:
    a, b = Net(params={"unbonding_blocks": 3}), Net(params={"unbonding_blocks": 3})
    a.commit([a.tx("v0", "unstake", amount=400)])
    b.commit([b.tx("v0", "unstake", amount=300)])
    assert a.state.stake(a.acct("v0")) + a.state.unbonding_of(a.acct("v0")) == 1_000
    assert a.state.root() != b.state.root()
    assert a.state.to_canonical()["unbonding"] == [[4, [[a.acct("v0"), 400]]]]


def test_stake_reject_reasons() -> None:
    net = Net()
    assert reject(net, net.tx("dave", "stake", amount=10)) == "missing-bls-key"
    body = stake_body(net, "dave", 10)
    body["bls_pop"] = bls.pop_prove(net.bls_secret("carol"))
    assert reject(net, net.tx("dave", "stake", **body)) == "bad-pop"
    taken = stake_body(net, "v0", 10)
    assert reject(net, net.tx("dave", "stake", **taken)) == "bls-key-taken"
    assert reject(net, net.tx("dave", "stake", **stake_body(net, "dave", 10**7))) == "insufficient-funds"
    assert reject(net, net.tx("v0", "stake", amount=1, bls_pubkey=bls.sk_to_pk(net.bls_secret("dave")))) == (
        "bls-key-mismatch"
    )
    assert reject(net, net.tx("v0", "unstake", amount=1_001)) == "insufficient-stake"


def test_records_chain_into_records_root_and_weights_need_authority() -> None:
    net = Net(params={"weights_authority": Net().acct("carol").hex()})
    root0 = net.state.records_root
    net.commit(
        [
            net.tx(
                "alice",
                "record",
                kind="price",
                data={"price": 1.25, "who": b"x"},
                market="ai-bazaar",
                round=3,
            )
        ]
    )
    assert net.state.records_count == 1 and net.state.records_root != root0
    v = [net.acct(f"v{i}") for i in range(3)]
    weights = {"weights": [[v[0], 5], [v[1], 1]]}
    assert reject(net, net.tx("alice", "record", kind="weights", data=weights)) == "not-authorised"
    assert (
        reject(net, net.tx("carol", "record", kind="weights", data={"weights": [[v[0], -1]]}))
        == "bad-weights"
    )
    assert reject(
        net, net.tx("carol", "record", kind="weights", data={"weights": [[net.acct("bob"), 1]]})
    ) == ("unknown-validator")
    net.commit([net.tx("carol", "record", kind="weights", data=weights)])
    assert net.state.proposer_weights() == {v[0]: 5, v[1]: 1}
    assert net.state.validator_weights() == net.state.stake_weights()  # finality stays with the stakes


def test_model_commit_is_kept_for_the_head_block_only() -> None:
    net = Net()
    net.commit(
        [net.tx("alice", "model_commit", hash=b"\x01" * 32, size=10, pointer="ipfs://x", loss=0.5, round=2)]
    )
    assert [m.loss for m in net.state.models] == [0.5] and net.state.models[0].round == 2
    net.commit([])
    assert net.state.models == ()


def test_invalid_tx_in_a_block_invalidates_the_block() -> None:
    net = Net()
    good = net.tx("alice", "transfer", to=net.acct("bob"), amount=1)
    block, _, _ = net.build([good])
    from dataclasses import replace

    from bazaar.ledger.apply import apply
    from bazaar.ledger.block import Block, merkle_root, sign_header

    bad = net.tx("bob", "transfer", to=net.acct("alice"), amount=10**9)
    txs = (good, bad)
    header = replace(block.header, tx_root=merkle_root(txs), reward=block.header.reward + 1)
    key = net.by_account[header.proposer]
    forged = Block(header, txs, sign_header(key, NID, header))
    with pytest.raises(InvalidBlock) as info:
        apply(net.state, forged, net.genesis)
    assert (
        info.value.reason == "bad-tx"
        and info.value.tx_index == 1
        and info.value.tx_reason == "insufficient-funds"
    )


def test_take_by_the_arbiter_pays_and_keeps_the_rest_locked() -> None:
    net = Net()
    lock(net, arbiter=net.acct("dave"))
    bob = net.state.balance(net.acct("bob"))
    assert reject(net, net.tx("alice", "escrow_take", id=ESC, to={net.acct("bob"): 1})) == "not-authorised"
    assert reject(net, net.tx("dave", "escrow_take", id=ESC, to={net.acct("bob"): 501})) == "over-escrow"
    net.commit([net.tx("dave", "escrow_take", id=ESC, to={net.acct("bob"): 200})])
    escrow = net.state.escrow(ESC)
    assert escrow is not None and escrow.amount == 300
    assert net.state.balance(net.acct("bob")) == bob + 200 and net.state.conserved()
    net.commit([net.tx("dave", "escrow_take", id=ESC, to={net.acct("carol"): 300})])  # the rest: closed
    assert net.state.escrow(ESC) is None and net.state.conserved()


def test_a_contract_escrow_moves_only_by_the_proposer_of_its_market() -> None:
    """A contract escrow (arbiter = the market's contract account) is moved by the block's proposer signing for
    its market; no peer may touch it, and its payer gets it back only after expiry."""
    from bazaar.ledger.txs import contract_account

    net = Net()
    contract = contract_account("cloudchain")
    net.commit([net.tx("alice", "escrow_lock", id=ESC, payee=net.acct("alice"), amount=500, expires=5,
                       arbiter=contract, market="cloudchain")])
    to = {net.acct("bob"): 100}
    for who in ("alice", "bob"):
        for kind, extra in (("escrow_split", {"to": to}), ("escrow_take", {"to": to}), ("escrow_release", {}),
                            ("escrow_settle", {"to": net.acct("bob"), "amount": 1})):
            assert reject(net, net.tx(who, kind, id=ESC, market="cloudchain", **extra)) == "not-authorised"
    assert reject(net, net.tx("alice", "escrow_refund", id=ESC, market="cloudchain")) == "not-expired"
    proposer, _ = net.proposer_and_proof(net.state)
    label = next(k for k, v in net.keys.items() if v.public == proposer.public)
    # the proposer signing for another market may not, signing for the escrow's market may
    _, _, rejected = net.build([net.tx(label, "escrow_take", id=ESC, to=to, market="other")])
    assert rejected and rejected[0][1].reason == "not-authorised"
    net._nonces.clear()
    bob = net.state.balance(net.acct("bob"))
    net.commit([net.tx(label, "escrow_take", id=ESC, to=to, market="cloudchain")])
    escrow = net.state.escrow(ESC)
    assert escrow is not None and escrow.amount == 400 and net.state.balance(net.acct("bob")) == bob + 100
    for _ in range(5):
        net.commit([net.tx("carol", "transfer", to=net.acct("dave"), amount=1)])
    net.commit([net.tx("alice", "escrow_refund", id=ESC, market="cloudchain")])
    assert net.state.escrow(ESC) is None and net.state.conserved()


def test_decode_txs_equals_decode_tx_one_by_one() -> None:
    """The block import's batched decode gives each transaction decode_tx's envelope or error, and the cache
    and counters end as decode_tx leaves them (docs/adr/0161)."""
    from bazaar.ledger import txs as txs_module
    from bazaar.ledger.txs import MAX_TX, TX_STATS, decode_txs
    from bazaar.protocol.envelope import seal
    from bazaar.protocol.errors import ProtocolError

    net = Net()
    bob = net.acct("bob")
    good = net.tx("alice", "transfer", to=bob, amount=1)
    tampered = bytearray(net.tx("carol", "transfer", to=bob, amount=2))
    tampered[-1] ^= 1
    seq_mismatch = seal(net.keys["alice"], NID, "tx/transfer", {"to": bob, "amount": 1, "nonce": 2}, seq=5).wire
    not_a_tx = seal(net.keys["alice"], NID, "ai-bazaar/price", {}, seq=1).wire
    bad_schema = seal(net.keys["alice"], NID, "tx/transfer", {"to": b"x", "amount": 1, "nonce": 1}, seq=1).wire
    items = [good, bytes(tampered), b"\xc1", seq_mismatch, not_a_tx, bad_schema, b"\x00" * (MAX_TX + 1), good]

    def outcomes(results: list[object]) -> list[object]:
        return [(type(r), str(r)) if isinstance(r, ProtocolError) else r for r in results]

    txs_module._VERIFIED.clear()
    one_by_one: list[object] = []
    before = (TX_STATS.decoded, TX_STATS.verified)
    for raw in items:
        try:
            one_by_one.append(decode_tx(raw, NID))
        except ProtocolError as err:
            one_by_one.append(err)
    single_counts = (TX_STATS.decoded - before[0], TX_STATS.verified - before[1])
    single_cache = list(txs_module._VERIFIED)

    txs_module._VERIFIED.clear()
    before = (TX_STATS.decoded, TX_STATS.verified)
    batched = decode_txs(items, NID)
    assert outcomes(batched) == outcomes(one_by_one)  # type: ignore[arg-type]
    assert list(txs_module._VERIFIED) == single_cache
    # the duplicate is verified twice in one batch (neither is cached yet), once one by one
    assert (TX_STATS.decoded - before[0], TX_STATS.verified - before[1]) == (single_counts[0], single_counts[1] + 1)
    # a second pass finds ``good`` in the cache, as decode_tx would
    before = (TX_STATS.decoded, TX_STATS.verified)
    assert outcomes(decode_txs([good], NID)) == outcomes([one_by_one[0]])
    assert (TX_STATS.decoded - before[0], TX_STATS.verified - before[1]) == (1, 0)


def test_a_block_reports_its_first_failing_transaction_opening_or_applying() -> None:
    """Transactions are opened in passes before any is applied; the error is still the first transaction's that
    fails, whether it fails to open (a later signature) or to apply (an earlier balance)."""
    from dataclasses import replace

    from bazaar.ledger.apply import apply
    from bazaar.ledger.block import Block, merkle_root, sign_header

    net = Net()
    good = net.tx("alice", "transfer", to=net.acct("bob"), amount=1)
    block, _, _ = net.build([good])
    poor = net.tx("bob", "transfer", to=net.acct("alice"), amount=10**9)
    forged_sig = bytearray(net.tx("carol", "transfer", to=net.acct("alice"), amount=1))
    forged_sig[-1] ^= 1
    key = net.by_account[block.header.proposer]
    for txs, index, reason in (((good, poor, bytes(forged_sig)), 1, "insufficient-funds"),
                               ((good, bytes(forged_sig), poor), 1, "bad-signature")):
        header = replace(block.header, tx_root=merkle_root(txs), reward=block.header.reward + len(txs) - 1)
        forged = Block(header, txs, sign_header(key, NID, header))
        with pytest.raises(InvalidBlock) as info:
            apply(net.state, forged, net.genesis)
        assert info.value.tx_index == index and info.value.tx_reason == reason, info.value


def test_a_transfer_to_oneself_keeps_the_balance_and_still_needs_the_funds() -> None:
    net = Net()
    a = net.acct("alice")
    before = net.state.balance(a)
    _, rejected = net.commit([net.tx("alice", "transfer", to=a, amount=250)])
    assert not rejected and net.state.balance(a) == before and net.state.conserved()
    assert reject(net, net.tx("alice", "transfer", to=a, amount=before + 1)) == "insufficient-funds"
