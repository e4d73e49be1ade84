"""Blocks (encoding, Merkle proofs, tampering) and the proposer rules pos / pol / lottery."""

from __future__ import annotations

import collections
from dataclasses import replace

import pytest

from bazaar.ledger import bls
from bazaar.ledger.apply import apply, build_block
from bazaar.ledger.block import Block, merkle_proof, merkle_root, sign_header, verify_merkle_proof
from bazaar.ledger.chain import Chain
from bazaar.ledger.checks import BlockCheck
from bazaar.ledger.consensus import (
    lottery_consensus,
    lottery_next,
    lottery_winner,
    make_reveal,
    pol_consensus,
    pol_winner_of,
    pos_consensus,
    sortition,
)
from bazaar.ledger.errors import InvalidBlock, InvalidTx
from bazaar.ledger.execute import check_tx
from bazaar.ledger.state import State, Supply
from bazaar.ledger.store import MemoryStore
from bazaar.ledger.txs import decode_tx

from .helpers import NID, USERS, Net


def test_merkle_proofs_for_every_size() -> None:
    for n in range(0, 9):
        items = [bytes([i]) * (i + 1) for i in range(n)]
        root = merkle_root(items)
        for i, item in enumerate(items):
            assert verify_merkle_proof(item, merkle_proof(items, i), root)
            assert not verify_merkle_proof(item + b"!", merkle_proof(items, i), root)
    assert merkle_root([b"a", b"b"]) != merkle_root([b"b", b"a"])


def test_block_roundtrip_and_every_tampering_is_rejected() -> None:
    net = Net()
    txs = [net.tx("alice", "transfer", to=net.acct("bob"), amount=5)]
    block, _, _ = net.build(txs)
    assert Block.decode(block.encode(), NID) == block
    apply(net.state, block, net.genesis)
    key = net.by_account[block.header.proposer]
    h = block.header
    changes = {
        "height": h.height + 1,
        "parent": b"\x01" * 32,
        "timestamp_ms": net.state.timestamp_ms - 1,
        "tx_root": b"\x02" * 32,
        "state_root": b"\x03" * 32,
        "reward": h.reward + 1,
        "consensus": {**h.consensus, "reveal": bls.sign(1, b"x")},
    }
    for name, value in changes.items():
        forged = replace(h, **{name: value})
        resigned = Block(forged, block.txs, sign_header(key, NID, forged))
        with pytest.raises(InvalidBlock):
            apply(net.state, resigned, net.genesis)
        with pytest.raises(InvalidBlock) as info:  # not re-signed: the signature fails first
            apply(net.state, Block(forged, block.txs, block.signature), net.genesis)
        assert info.value.reason in {"bad-signature", "bad-height", "bad-parent", "bad-timestamp"}
    flipped = bytearray(txs[0])
    flipped[-1] ^= 1
    with pytest.raises(InvalidBlock, match="bad-tx-root"):
        apply(net.state, Block(h, (bytes(flipped),), block.signature), net.genesis)
    with pytest.raises(InvalidBlock, match="bad-signature"):
        apply(net.state, Block(h, block.txs, bytes(64)), net.genesis)
    other = net.keys["alice"]
    stolen = replace(h, proposer=other.public)
    with pytest.raises(InvalidBlock, match="bad-proposer"):
        apply(net.state, Block(stolen, block.txs, sign_header(other, NID, stolen)), net.genesis)
    raw = bytearray(block.encode())
    raw[len(raw) // 2] ^= 0xFF
    with pytest.raises(InvalidBlock):
        apply(net.state, Block.decode(bytes(raw), NID), net.genesis)


def test_conservation_detects_an_imbalanced_state() -> None:
    net = Net()
    assert net.state.conserved()
    leaked = replace(net.state, supply=Supply(net.state.supply.genesis + 1))
    assert not leaked.conserved()
    negative = replace(net.state, balances={**net.state.balances, net.acct("bob"): -1})
    assert not negative.conserved()


def test_state_root_is_deterministic_across_independent_executions() -> None:
    a, b = Net(), Net()
    for _ in range(3):
        txs = [a.tx("alice", "transfer", to=a.acct("carol"), amount=7)]
        block, _ = a.commit(txs)
        b.state = apply(b.state, Block.decode(block.encode(), NID), b.genesis)
    assert a.state.root() == b.state.root() and a.state == b.state
    assert State.from_genesis(a.genesis).root() == State.from_genesis(b.genesis).root()


def test_pos_proposer_is_deterministic_and_stake_proportional() -> None:
    weights = {bytes([i]) * 32: w for i, w in enumerate([1, 2, 3, 4], start=1)}
    seed = b"\x42" * 32
    assert sortition(weights, seed, 7) == sortition(dict(reversed(list(weights.items()))), seed, 7)
    n = 4000
    counts = collections.Counter(sortition(weights, seed, h) for h in range(1, n + 1))
    total = sum(weights.values())
    chi2 = sum((counts[a] - n * w / total) ** 2 / (n * w / total) for a, w in weights.items())
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


def test_pos_chain_follows_sortition_and_the_randao_seed() -> None:
    net = Net("pos", stakes=[1, 1, 1])
    seeds = [net.state.seed]
    for _ in range(4):
        _block, _ = net.commit([])
        assert net.state.seed != seeds[-1]
        seeds.append(net.state.seed)
    # a validator that is not drawn cannot propose, even with a valid reveal
    drawn = sortition(net.state.proposer_weights(), net.state.seed, net.state.height + 1)
    other = next(v for v in net.validators if v.public != drawn)
    proof = pos_consensus(bls.bls_keygen(other.seed), NID, net.state.height + 1)
    with pytest.raises(InvalidBlock, match="bad-proposer"):
        build_block(net.state, net.genesis, other, [], timestamp_ms=10**7, consensus=proof)
    # the drawn proposer with someone else's reveal
    key = net.by_account[drawn]
    with pytest.raises(InvalidBlock, match="bad-reveal"):
        build_block(net.state, net.genesis, key, [], timestamp_ms=10**7, consensus=proof)
    # attempt 1 draws a (possibly) different proposer, and it is accepted
    alt = net.by_account[sortition(net.state.proposer_weights(), net.state.seed, net.state.height + 1, 1)]
    proof1 = pos_consensus(bls.bls_keygen(alt.seed), NID, net.state.height + 1, attempt=1)
    build_block(net.state, net.genesis, alt, [], timestamp_ms=10**7, consensus=proof1)
    with pytest.raises(InvalidBlock, match="bad-consensus"):
        build_block(net.state, net.genesis, alt, [], timestamp_ms=10**7, consensus={"rule": "lottery"})


def commit_model(net: Net, label: str, loss: float, rnd: int) -> bytes:
    return net.tx(
        label,
        "model_commit",
        hash=bytes([len(label)]) * 32,
        size=1,
        pointer=label,
        loss=loss,
        market="ai-bazaar",
        round=rnd,
        nonce=rnd,
    )


def test_pol_lowest_loss_wins_ties_by_account_and_loss_is_verified() -> None:
    net = Net("pol", bls_users=USERS)
    subs = [
        commit_model(net, "alice", 0.4, 1),
        commit_model(net, "bob", 0.2, 1),
        commit_model(net, "carol", 0.3, 1),
    ]
    block, _ = net.commit(subs, submissions=subs)
    assert block.header.proposer == net.acct("bob") and net.state.pol_round == 1
    tie = [commit_model(net, "alice", 0.1, 2), commit_model(net, "dave", 0.1, 2)]
    block, _ = net.commit([], submissions=tie)
    assert block.header.proposer == min(net.acct("alice"), net.acct("dave"))
    # a proposer that is not the lowest loss
    key = net.keys["carol"]
    proof = {"rule": "pol", "submissions": tie, "winner": key.public,
             "reveal": make_reveal(bls.bls_keygen(key.seed), NID, net.state.height + 1)}
    with pytest.raises(InvalidBlock, match="bad-proposer"):
        build_block(net.state, net.genesis, key, [], timestamp_ms=10**7, consensus=proof)
    # the node's re-evaluation disagrees with the claimed loss
    good, _, _ = net.build([], submissions=[commit_model(net, "carol", 0.05, 3)])
    def loss_check(parent, block):  # type: ignore[no-untyped-def]
        winner = pol_winner_of(block.header, NID)
        if winner is None or float(winner.body["loss"]) <= 0.1:
            raise InvalidBlock("pol-loss", "re-evaluated loss differs")

    with pytest.raises(InvalidBlock, match="pol-loss"):
        apply(net.state, good, net.genesis, checks=[loss_check])
    apply(net.state, good, net.genesis, checks=[lambda parent, block: None])
    # submissions of an older round cannot win again
    stale = [commit_model(net, "carol", 0.01, 1)]
    with pytest.raises(InvalidBlock, match="stale-round"):
        net.build([], submissions=stale)


def test_pol_attempt_k_is_proposed_by_the_k_plus_first_claim_with_its_reveal() -> None:
    net = Net("pol", bls_users=("alice", "bob", "carol"))
    subs = [
        commit_model(net, "alice", 0.4, 1),
        commit_model(net, "bob", 0.2, 1),
        commit_model(net, "carol", 0.3, 1),
    ]
    state, h = net.state, net.state.height + 1

    def proof_of(label: str, attempt: int, listed: list[bytes] = subs) -> dict[str, object]:
        return pol_consensus(listed, NID, net.bls_secret(label), h, attempt)

    def build(label: str, proof: dict[str, object]) -> State:
        return build_block(state, net.genesis, net.keys[label], [], timestamp_ms=10**7, consensus=proof)[1]

    build("bob", proof_of("bob", 0))
    after = build("carol", proof_of("carol", 1))  # bob silent: the second-best claim takes over at attempt 1
    assert after.pol_round == 1
    build("alice", proof_of("alice", 2))
    with pytest.raises(InvalidBlock, match="bad-proposer"):  # attempt 0 belongs to the lowest claim
        build("carol", {**proof_of("carol", 1), "attempt": 0})
    with pytest.raises(InvalidBlock, match="bad-proposer"):  # and attempt 1 to the second
        build("bob", {**proof_of("bob", 0), "attempt": 1})
    with pytest.raises(InvalidBlock, match="bad-consensus"):  # no fourth claim
        build("alice", {**proof_of("alice", 2), "attempt": 3})
    with pytest.raises(InvalidBlock, match="bad-consensus"):  # the reveal is required
        build("bob", {k: v for k, v in proof_of("bob", 0).items() if k != "reveal"})
    with pytest.raises(InvalidBlock, match="bad-reveal"):  # and must be the proposer's for this height
        build("bob", {**proof_of("bob", 0), "reveal": make_reveal(net.bls_secret("bob"), NID, h + 1)})
    with pytest.raises(InvalidBlock, match="bad-reveal"):
        build("bob", {**proof_of("bob", 0), "reveal": make_reveal(net.bls_secret("carol"), NID, h)})
    # a claim from a miner without a registered BLS key cannot be listed (it could never reveal)
    keyless = [*subs, commit_model(net, "dave", 0.5, 1)]
    with pytest.raises(InvalidBlock, match="unknown-validator"):
        build("bob", proof_of("bob", 0, keyless))


@pytest.mark.parametrize("rule", ["pos", "lottery", "pol"])
def test_no_proposer_can_grind_the_next_seed_through_its_transactions(rule: str) -> None:
    """Two blocks by the same proposer at the same height with different transaction sets give the same next
    seed: it depends on the proposer's unique BLS reveal only (docs/adr/0094)."""
    net = Net(rule, stakes=[1, 1, 1], bls_users=USERS)
    subs = [commit_model(net, "alice", 0.4, 1), commit_model(net, "bob", 0.2, 1)] if rule == "pol" else []
    transfer = net.tx("carol", "transfer", to=net.acct("dave"), amount=1)
    other = net.tx("dave", "transfer", to=net.acct("carol"), amount=2)
    a, after_a, _ = net.build([transfer], submissions=subs, ts=10**7)
    b, after_b, _ = net.build([other], submissions=subs, ts=10**7 + 1)
    c, after_c, _ = net.build([], submissions=subs, ts=10**7 + 2)
    assert a.header.proposer == b.header.proposer == c.header.proposer
    assert len({a.header.tx_root, b.header.tx_root, c.header.tx_root}) == 3
    assert after_a.seed == after_b.seed == after_c.seed != net.state.seed


def test_lottery_winner_and_proof_checks() -> None:
    net = Net("lottery", stakes=[5, 1, 1])
    wins = collections.Counter()
    for _ in range(6):
        block, _ = net.commit([])
        wins[block.header.proposer] += 1
    assert sum(wins.values()) == 6
    state = net.state
    winner = lottery_winner(state.proposer_weights(), state.seed, state.height + 1)
    assert winner == lottery_winner(
        [[a, w] for a, w in state.proposer_weights().items()], state.seed, state.height + 1
    )
    key = net.by_account[winner]
    good = lottery_consensus(state, bls.bls_keygen(key.seed), NID)
    build_block(state, net.genesis, key, [], timestamp_ms=10**7, consensus=good)
    with pytest.raises(InvalidBlock, match="bad-reveal"):
        build_block(state, net.genesis, key, [], timestamp_ms=10**7, consensus={**good, "reveal": bls.sign(
            bls.bls_keygen(key.seed), b"something else")})
    with pytest.raises(InvalidBlock, match="bad-consensus"):
        build_block(state, net.genesis, key, [], timestamp_ms=10**7,
                    consensus={k: v for k, v in good.items() if k != "reveal"})
    with pytest.raises(InvalidBlock, match="bad-seed"):
        build_block(state, net.genesis, key, [], timestamp_ms=10**7, consensus={**good, "seed": bytes(32)})
    with pytest.raises(InvalidBlock, match="bad-weights"):
        rigged = {**good, "weights": [[key.public, 1]]}
        build_block(state, net.genesis, key, [], timestamp_ms=10**7, consensus=rigged)
    loser = next(v for v in net.validators if v.public != winner)
    with pytest.raises(InvalidBlock, match="bad-proposer"):
        build_block(state, net.genesis, loser, [], timestamp_ms=10**7,
                    consensus=lottery_consensus(state, bls.bls_keygen(loser.seed), NID))


def test_lottery_falls_back_to_the_next_draw_and_its_seed_cannot_be_ground() -> None:
    net = Net("lottery", n_validators=4, stakes=[1, 1, 1, 1])
    state = net.state
    first = lottery_next(state)
    attempt = next(k for k in range(1, 64) if lottery_next(state, k) != first)
    standby = net.by_account[lottery_next(state, attempt)]
    proof = lottery_consensus(state, bls.bls_keygen(standby.seed), NID, attempt)
    block, after, _ = build_block(state, net.genesis, standby, [], timestamp_ms=10**7, consensus=proof)
    assert block.header.proposer == standby.public and proof["attempt"] == attempt
    with pytest.raises(InvalidBlock, match="bad-proposer"):  # attempt 0 belongs to the first draw
        build_block(state, net.genesis, standby, [], timestamp_ms=10**7,
                    consensus=lottery_consensus(state, bls.bls_keygen(standby.seed), NID))
    # the next seed depends on the unique BLS reveal only, not on the transactions the proposer picks
    _other, after2, _ = build_block(state, net.genesis, standby, [net.tx("alice", "transfer", to=net.acct("bob"),
                                                                          amount=1)],
                                   timestamp_ms=10**7, consensus=proof)
    assert after.seed == after2.seed


def test_block_checks_see_the_parent_state_and_the_block_everywhere_a_block_is_made_or_taken() -> None:
    """``checks`` run in ``apply``, ``build_block`` (on the signed block), ``Chain.import_block`` and
    ``Chain.build_and_import``, with the parent state; a refusal stores nothing."""
    net = Net("pos")
    seen: list[tuple[int, int, bytes]] = []

    def record(parent: State, block: Block) -> None:
        seen.append((parent.height, block.height, block.signature))

    def refuse(parent: State, block: Block) -> None:
        raise InvalidBlock("market-contract", f"block {block.height} refused")

    checks: list[BlockCheck] = [record]
    tx = net.tx("alice", "transfer", to=net.acct("bob"), amount=5)
    block, _, _ = net.build([tx])
    key, proof = net.proposer_and_proof(net.state)
    built, _, _ = build_block(net.state, net.genesis, key, [tx], timestamp_ms=block.header.timestamp_ms,
                              consensus=proof, checks=checks)
    assert seen == [(0, 1, built.signature)] and built.signature  # called after signing
    apply(net.state, block, net.genesis, checks=checks)
    assert seen[-1] == (0, 1, block.signature)
    with pytest.raises(InvalidBlock, match="market-contract"):
        build_block(net.state, net.genesis, key, [tx], timestamp_ms=10**7, consensus=proof, checks=[refuse])
    with pytest.raises(InvalidBlock, match="market-contract"):
        apply(net.state, block, net.genesis, checks=[record, refuse])

    chain = Chain(MemoryStore(), net.genesis)
    with pytest.raises(InvalidBlock, match="market-contract"):
        chain.import_block(block, checks=[refuse])
    with pytest.raises(InvalidBlock, match="market-contract"):
        chain.build_and_import(key, [tx], timestamp_ms=10**7, consensus=proof, checks=[refuse])
    assert chain.height == 0
    chain.import_block(block, checks=checks)
    assert chain.height == 1 and seen[-1] == (0, 1, block.signature)
    key2, proof2 = net.proposer_and_proof(chain.state)
    block2, _ = chain.build_and_import(key2, [], timestamp_ms=10**7, consensus=proof2, checks=checks)
    assert chain.height == 2 and seen[-1] == (1, 2, block2.signature)


def test_a_lottery_draws_accounts_with_a_bls_key_only_and_they_need_no_stake() -> None:
    """``make_genesis(bls_keys=...)`` registers a miner's BLS key without stake; the weights authority may then
    allot it lottery weight, and it proposes with its reveal. An account without a BLS key cannot be named."""
    authority = Net().acct("carol").hex()
    net = Net("lottery", params={"weights_authority": authority}, bls_users=("alice",))
    alice = net.acct("alice")
    assert alice in net.state.validators and net.state.stake(alice) == 0
    assert alice not in net.state.validator_weights()  # registered for reveals, not a finality validator
    no_key = net.tx("carol", "record", kind="weights", data={"weights": [[alice, 3], [net.acct("bob"), 1]]})
    with pytest.raises(InvalidTx, match="unknown-validator"):
        check_tx(net.state, decode_tx(no_key, NID))
    net._nonces.clear()
    net.commit([net.tx("carol", "record", kind="weights", data={"weights": [[alice, 1]]})])
    assert net.state.proposer_weights() == {alice: 1} and lottery_next(net.state) == alice
    block, _ = net.commit([])
    assert block.header.proposer == alice and block.header.consensus["rule"] == "lottery"
    # the same draw with another account's reveal is refused
    proof = lottery_consensus(net.state, net.bls_secret("carol"), NID)
    with pytest.raises(InvalidBlock, match="bad-reveal"):
        build_block(net.state, net.genesis, net.keys["alice"], [], timestamp_ms=10**7, consensus=proof)


def test_a_block_hashes_its_leaves_once_and_a_copy_checks_again() -> None:
    """Block.decode's tx root check is remembered on the block (apply does not hash the tree again); a block
    built by ``replace`` with other transactions starts unchecked (docs/adr/0161)."""
    from dataclasses import replace

    from bazaar.ledger.block import leaf_hashes, root_of_leaves

    net = Net()
    block, _, _ = net.build([net.tx("alice", "transfer", to=net.acct("bob"), amount=1)])
    decoded = Block.decode(block.encode(), NID)
    assert decoded._root_ok and decoded.leaves() == leaf_hashes(block.txs)
    assert root_of_leaves(decoded.leaves()) == merkle_root(block.txs) == block.header.tx_root
    other = replace(decoded, txs=(b"x",))
    assert not other._root_ok and other.leaves() == leaf_hashes([b"x"]) and not other.tx_root_matches()
    assert decoded == Block(decoded.header, decoded.txs, decoded.signature)  # the cache is not compared
