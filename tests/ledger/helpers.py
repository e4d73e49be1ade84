"""A tiny test network: keys by label, a genesis, and a proposer that follows the network's rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bazaar.ledger import bls
from bazaar.ledger.apply import apply, build_block
from bazaar.ledger.block import Block
from bazaar.ledger.consensus import (
    lottery_consensus,
    lottery_next,
    pol_consensus,
    pol_winner,
    pos_consensus,
    pos_proposer,
)
from bazaar.ledger.errors import InvalidTx
from bazaar.ledger.genesis import Genesis, make_genesis
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx, make_tx
from bazaar.protocol.keys import KeyPair

NID = "ledger-test"
USERS = ("alice", "bob", "carol", "dave")


class Net:
    """Keys, genesis and the current state of a test network."""

    def __init__(
        self,
        consensus: str = "pos",
        *,
        n_validators: int = 3,
        stake: int = 1_000,
        balance: int = 1_000_000,
        block_reward: int = 100,
        reward_per_tx: int = 1,
        params: dict[str, Any] | None = None,
        stakes: Sequence[int] | None = None,
        bls_users: Sequence[str] = (),
    ) -> None:
        self.keys: dict[str, KeyPair] = {u: KeyPair.from_label(u) for u in USERS}
        self.validators = [KeyPair.from_label(f"validator-{i}") for i in range(n_validators)]
        for i, v in enumerate(self.validators):
            self.keys[f"v{i}"] = v
        self.by_account = {k.public: k for k in self.keys.values()}
        genesis = make_genesis(
            NID,
            consensus,
            balances={self.keys[u].public: balance for u in USERS},
            validator_keys=self.validators,
            stake=stake,
            block_reward=block_reward,
            reward_per_tx=reward_per_tx,
            timestamp_ms=1_000,
            params=params,
            bls_keys=[self.keys[u] for u in bls_users],
        )
        if stakes is not None:
            genesis = Genesis.from_dict(
                {
                    **genesis.to_dict(),
                    "stakes": {v.public: s for v, s in zip(self.validators, stakes, strict=True)},
                }
            )
        self.genesis = genesis
        self.state = State.from_genesis(genesis)
        self._nonces: dict[bytes, int] = {}

    def acct(self, label: str) -> bytes:
        """The account of ``label``."""
        return self.keys[label].public

    def bls_secret(self, label: str) -> int:
        """The BLS secret of ``label`` (derived from its Ed25519 seed)."""
        return bls.bls_keygen(self.keys[label].seed)

    def tx(
        self,
        label: str,
        kind: str,
        /,
        *,
        nonce: int | None = None,
        market: str = "",
        round: int = 0,
        **body: Any,
    ) -> bytes:
        """A signed transaction; the nonce follows the sender's last one used in this helper."""
        key = self.keys[label]
        if kind != "evidence":
            if nonce is None:
                nonce = max(self._nonces.get(key.public, 0), self.state.nonce(key.public)) + 1
                self._nonces[key.public] = nonce
            body["nonce"] = nonce
        return make_tx(key, NID, kind, body, market=market, round=round).wire

    def proposer_and_proof(
        self, state: State, submissions: Sequence[bytes] = ()
    ) -> tuple[KeyPair, dict[str, Any]]:
        """The entitled proposer of the next block and its consensus proof."""
        rule = self.genesis.consensus
        height = state.height + 1
        if rule == "pos":
            key = self.by_account[pos_proposer(state)]
            return key, pos_consensus(bls.bls_keygen(key.seed), NID, height)
        if rule == "lottery":
            key = self.by_account[lottery_next(state)]
            return key, lottery_consensus(state, bls.bls_keygen(key.seed), NID)
        winner = pol_winner([decode_tx(raw, NID) for raw in submissions])
        key = self.by_account[winner.sender]
        return key, pol_consensus(list(submissions), NID, bls.bls_keygen(key.seed), height)

    def build(
        self,
        txs: Sequence[bytes],
        *,
        state: State | None = None,
        ts: int | None = None,
        submissions: Sequence[bytes] = (),
    ) -> tuple[Block, State, list[tuple[bytes, InvalidTx]]]:
        """Build the next block on ``state`` (default: the current state)."""
        base = self.state if state is None else state
        key, proof = self.proposer_and_proof(base, submissions)
        ts = base.timestamp_ms + 1_000 if ts is None else ts
        return build_block(base, self.genesis, key, txs, timestamp_ms=ts, consensus=proof)

    def commit(self, txs: Sequence[bytes], **kw: Any) -> tuple[Block, list[tuple[bytes, InvalidTx]]]:
        """Build the next block, re-apply it independently, and advance the current state."""
        block, built, rejected = self.build(txs, **kw)
        applied = apply(self.state, Block.decode(block.encode(), NID), self.genesis)
        assert applied.root() == built.root()
        self.state = applied
        self._nonces = {}
        return block, rejected
