"""A Hypothesis state machine: random transactions in random blocks; conservation and the other invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bazaar.ledger import bls
from bazaar.ledger.apply import apply
from bazaar.ledger.block import Block, Header, sign_header
from bazaar.ledger.state import State, expiry_index
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import codec

from .helpers import NID, USERS, Net

LABELS = st.sampled_from(USERS)
AMOUNTS = st.integers(min_value=1, max_value=400_000)
ESCROW_IDS = st.sampled_from([bytes([i]) * 32 for i in range(1, 5)])


class LedgerMachine(RuleBasedStateMachine):
    """Queue random (often invalid) transactions, seal them into blocks, and re-execute independently."""

    def __init__(self) -> None:
        super().__init__()
        self.net = Net("pos", balance=1_000_000, stakes=[2_000, 1_000, 1_000], params={"unbonding_blocks": 2})
        self.pending: list[bytes] = []
        self.replica = State.from_genesis(self.net.genesis)
        self.applied_blocks = 0
        self.evidence_txs = 0

    def _queue(self, label: str, kind: str, nonce_shift: int, /, **body: object) -> None:
        base = max(self.net._nonces.get(self.net.acct(label), 0), self.net.state.nonce(self.net.acct(label)))
        nonce = max(1, base + 1 + nonce_shift)
        if nonce_shift == 0:
            self.net._nonces[self.net.acct(label)] = nonce
        self.pending.append(self.net.tx(label, kind, nonce=nonce, **body))

    @rule(sender=LABELS, to=LABELS, amount=AMOUNTS, shift=st.sampled_from([0, 0, 0, -1, 1]))
    def transfer(self, sender: str, to: str, amount: int, shift: int) -> None:
        self._queue(sender, "transfer", shift, to=self.net.acct(to), amount=amount)

    @rule(
        payer=LABELS,
        payee=LABELS,
        eid=ESCROW_IDS,
        amount=AMOUNTS,
        ttl=st.integers(0, 3),
        arbiter=st.none() | LABELS,
    )
    def lock(self, payer: str, payee: str, eid: bytes, amount: int, ttl: int, arbiter: str | None) -> None:
        body: dict[str, object] = {
            "id": eid,
            "payee": self.net.acct(payee),
            "amount": amount,
            "expires": self.net.state.height + ttl,
        }
        if arbiter is not None:
            body["arbiter"] = self.net.acct(arbiter)
        self._queue(payer, "escrow_lock", 0, **body)

    @rule(signer=LABELS, eid=ESCROW_IDS, release=st.booleans())
    def settle(self, signer: str, eid: bytes, release: bool) -> None:
        self._queue(signer, "escrow_release" if release else "escrow_refund", 0, id=eid)

    @rule(label=LABELS, amount=AMOUNTS, unstake=st.booleans())
    def stake(self, label: str, amount: int, unstake: bool) -> None:
        if unstake:
            self._queue(label, "unstake", 0, amount=amount)
        else:
            sk = self.net.bls_secret(label)
            self._queue(
                label, "stake", 0, amount=amount, bls_pubkey=bls.sk_to_pk(sk), bls_pop=bls.pop_prove(sk)
            )

    @rule(index=st.integers(1, 2), height=st.integers(1, 3))
    def equivocate(self, index: int, height: int) -> None:
        """Two signed headers by one validator at one height: evidence that burns from its stake and from what
        it has unbonding (a second one for the same height is refused). v0 stays honest and staked, so a
        proposer is always drawn."""
        key = self.net.validators[index]
        signed = []
        for ts in (1, 2):
            header = Header(height, bytes(32), ts, key.public, bytes(32), bytes(32), 0)
            signed.append(codec.encode({"h": header.to_map(), "s": sign_header(key, NID, header)}))
        self.pending.append(self.net.tx(f"v{index}", "evidence", a=signed[0], b=signed[1]))

    @rule(label=st.sampled_from(["v1", "v2"]), amount=st.integers(1, 600))
    def validator_unstakes(self, label: str, amount: int) -> None:
        self._queue(label, "unstake", 0, amount=amount)

    @rule(label=LABELS, price=st.floats(0, 100, allow_nan=False))
    def record(self, label: str, price: float) -> None:
        self._queue(label, "record", 0, kind="price", data={"price": price})

    @rule()
    def seal_block(self) -> None:
        block, rejected = self.net.commit(self.pending)
        assert len(block.txs) + len(rejected) == len(self.pending)
        self.evidence_txs += sum(1 for raw in block.txs if decode_tx(raw, NID).type == "tx/evidence")
        self.pending = []
        # an independent replica re-executes the wire bytes and reaches the same root
        self.replica = apply(self.replica, Block.decode(block.encode(), NID), self.net.genesis)
        assert self.replica.root() == self.net.state.root()
        self.applied_blocks += 1

    @invariant()
    def conserved(self) -> None:
        state = self.net.state
        assert state.conserved()
        assert state.supply.total == state.held()
        assert all(v > 0 for v in state.balances.values())
        assert all(e.amount > 0 for e in state.escrows.values())
        assert all(v > 0 for v in state.stakes.values())
        # the end-of-block rules: nothing expired stays locked, nothing due stays unbonding, the index is exact
        assert all(e.expires >= state.height for e in state.escrows.values())
        assert all(h > state.height for h in state.unbonding)
        assert dict(state.expiring) == expiry_index(state.escrows)
        genesis = self.net.genesis
        # every applied transaction but evidence carries a nonce, so the nonces count the others
        assert state.supply.minted == genesis.block_reward * state.height + genesis.reward_per_tx * (
            sum(state.nonces.values()) + self.evidence_txs
        )
        assert state.supply.burned == 0 or state.slashed


LedgerMachine.TestCase.settings = settings(
    max_examples=16, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLedgerMachine = LedgerMachine.TestCase
