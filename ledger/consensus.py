"""Proposer rules ``pol``, ``pos`` and ``lottery``: deterministic and checkable by every validator.

Each block's ``header.consensus`` map is the proof that its proposer was entitled to propose
(docs/ledger.md §Consensus):

* ``pos`` — ``{"rule": "pos", "reveal": 96 B, "attempt": k (optional, default 0)}``. The proposer for height
  h, attempt k, is ``sortition(w_k, seed_{h-1}, h, k)`` with ``w_0`` the proposer weights (a revenue-share
  ``weights`` record, else the stakes) and ``w_k`` the stakes for every fallback ``k >= 1``; ``reveal`` is
  its BLS signature of ``"bazaar/reveal/v1\\0" || network_id || 0x00 || h`` (unique per key and height, so it
  cannot be ground);
  ``seed_h = sha256(seed_{h-1} || reveal)`` (RANDAO; docs/adr/0006 for the last-revealer weakness).
  ``attempt`` lets the next candidate take over when the drawn proposer is offline: nodes wait
  ``k × deadline`` before accepting an attempt-k block.
* ``lottery`` — ``{"rule": "lottery", "weights": [[account, weight], ...], "seed": seed_{h-1}, "reveal": 96 B,
  "attempt": k (optional)}``; ``weights`` must equal the state's proposer weights at attempt 0 (the allocation
  published with a ``weights`` record, else stakes) and the stakes at every fallback attempt, the proposer must
  equal the attempt-k draw ``weighted_draw(weights, seed, h, LOTTERY_DOMAIN, k)``, and ``reveal`` is its BLS reveal
  for ``h`` (verified against the BLS key registered for the proposer); the next seed is ``sha256(seed || reveal)``
  as for ``pos``, so no proposer can grind the next draw through its transactions.
* ``pol`` — ``{"rule": "pol", "submissions": [raw tx/model_commit envelopes], "winner": account, "reveal": 96 B,
  "attempt": k (optional, default 0)}``; the submissions are ranked by claimed loss (ties broken by account
  bytes), every submitter must have a registered BLS key, and the winner — who must be the proposer — is the
  ``k``-th of that ranking (0-based: attempt 0 is the lowest claim, attempt k the (k+1)-th, which takes over when
  the better claimants stay silent; nodes wait ``k × block_s`` after ranking the round before they accept it,
  ``node/consensus/pol.py``). The node re-evaluates the winner's model with a block check (``ledger.checks``).
  ``reveal`` is the winner's BLS reveal for ``h`` and the seed advances as for ``pos``,
  ``sha256(seed || reveal)``: the winner cannot grind it through its choice of transactions or submissions
  (docs/adr/0094).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bazaar.protocol.envelope import Envelope
from bazaar.protocol.errors import ProtocolError

from . import bls
from .block import Header
from .errors import InvalidBlock, LedgerReason
from .state import State
from .txs import decode_tx

SORTITION_DOMAIN = b"bazaar/sortition/v1\x00"
LOTTERY_DOMAIN = b"bazaar/lottery/v1\x00"
REVEAL_DOMAIN = b"bazaar/reveal/v1\x00"
MAX_ATTEMPT = 1024
MAX_SUBMISSIONS = 4096

def _items(weights: Mapping[bytes, int] | Iterable[Sequence[Any]]) -> list[tuple[bytes, int]]:
    pairs = weights.items() if isinstance(weights, Mapping) else ((w[0], w[1]) for w in weights)
    return sorted((bytes(a), int(w)) for a, w in pairs if w > 0)


def weighted_draw(
    weights: Mapping[bytes, int] | Iterable[Sequence[Any]],
    seed: bytes,
    height: int,
    domain: bytes,
    attempt: int = 0,
) -> bytes:
    """Draw one account with probability proportional to its weight, from public randomness.

    ``r = int(sha256(domain || seed || height (8 B) || attempt (4 B))) mod W``; accounts sorted by
    their bytes;
    the first whose cumulative weight exceeds ``r`` wins (modulo bias < 2^-190 for W < 2^64).

    Raises:
        InvalidBlock: reason ``no-weight`` when no account has a positive weight.
    """
    items = _items(weights)
    total = sum(w for _, w in items)
    if total <= 0:
        raise InvalidBlock(LedgerReason.NO_WEIGHT, "no account has a positive weight")
    digest = hashlib.sha256(domain + seed + height.to_bytes(8, "big") + attempt.to_bytes(4, "big")).digest()
    r = int.from_bytes(digest, "big") % total
    acc = 0
    for account, weight in items:
        acc += weight
        if r < acc:
            return account
    raise AssertionError("unreachable: r < total")


def sortition(weights: Mapping[bytes, int], seed: bytes, height: int, attempt: int = 0) -> bytes:
    """The ``pos`` proposer draw."""
    return weighted_draw(weights, seed, height, SORTITION_DOMAIN, attempt)


def pos_weights(state: State, attempt: int) -> dict[bytes, int]:
    """The weights of the ``pos`` and ``lottery`` draws at ``attempt``: the proposer weights (a revenue-share or
    allocation record, else the stakes) for attempt 0, the stakes for every fallback attempt — so a silent drawn
    proposer is replaced by a live validator even when the record puts all the weight on it (ADR 0081)."""
    return state.proposer_weights() if attempt == 0 else state.stake_weights()


def pos_proposer(state: State, height: int | None = None, attempt: int = 0) -> bytes:
    """Who must propose the next block (height ``state.height + 1``) on a ``pos`` network.

    Raises:
        ValueError: ``height`` is not the next height (the seed for later heights is not known yet).
        InvalidBlock: ``no-weight`` when there is no validator.
    """
    if height is None:
        height = state.height + 1
    if height != state.height + 1:
        raise ValueError(f"can only draw the proposer of height {state.height + 1}")
    return sortition(pos_weights(state, attempt), state.seed, height, attempt)


def reveal_message(network_id: str, height: int) -> bytes:
    """What a ``pos`` proposer signs with its BLS key as its RANDAO reveal."""
    return REVEAL_DOMAIN + network_id.encode() + b"\x00" + height.to_bytes(8, "big")


def make_reveal(bls_secret: int, network_id: str, height: int) -> bytes:
    """The 96-byte RANDAO reveal for ``height``."""
    return bls.sign(bls_secret, reveal_message(network_id, height))


def pos_consensus(bls_secret: int, network_id: str, height: int, attempt: int = 0) -> dict[str, Any]:
    """The ``header.consensus`` map of a ``pos`` block."""
    proof: dict[str, Any] = {"rule": "pos", "reveal": make_reveal(bls_secret, network_id, height)}
    if attempt:
        proof["attempt"] = attempt
    return proof


def lottery_winner(
    weights: Mapping[bytes, int] | Iterable[Sequence[Any]], seed: bytes, height: int, attempt: int = 0
) -> bytes:
    """The ``lottery`` block winner for ``height`` at ``attempt`` (weights: map or ``[[account, weight], ...]``)."""
    return weighted_draw(weights, seed, height, LOTTERY_DOMAIN, attempt)


def lottery_consensus(state: State, bls_secret: int, network_id: str, attempt: int = 0) -> dict[str, Any]:
    """The ``header.consensus`` map of the next ``lottery`` block (its proposer: :func:`lottery_next`)."""
    height = state.height + 1
    proof: dict[str, Any] = {
        "rule": "lottery",
        "weights": [[a, w] for a, w in pos_weights(state, attempt).items()],
        "seed": state.seed,
        "reveal": make_reveal(bls_secret, network_id, height),
    }
    if attempt:
        proof["attempt"] = attempt
    return proof


def lottery_next(state: State, attempt: int = 0) -> bytes:
    """Who wins the lottery for the next block at ``attempt`` (attempt k takes over when k−1 is silent)."""
    return lottery_winner(pos_weights(state, attempt), state.seed, state.height + 1, attempt)


def pol_ranking(submissions: Sequence[Envelope]) -> list[Envelope]:
    """The submissions of a ``pol`` proof in the order attempts take them: lowest claimed loss first (ties:
    lowest account bytes)."""
    return sorted(submissions, key=lambda e: (float(e.body["loss"]), e.sender))


def pol_winner(submissions: Sequence[Envelope], attempt: int = 0) -> Envelope:
    """The submission entitled to propose at ``attempt``: the (attempt+1)-th lowest claimed loss.

    Raises:
        ValueError: fewer than ``attempt + 1`` submissions.
    """
    ranking = pol_ranking(submissions)
    if not 0 <= attempt < len(ranking):
        raise ValueError(f"no submission for attempt {attempt} among {len(ranking)}")
    return ranking[attempt]


def pol_winner_of(header: Header, network_id: str) -> Envelope | None:
    """The winning ``tx/model_commit`` of a ``pol`` proof, or None (not pol, or no verifiable winner)."""
    proof = header.consensus
    if proof.get("rule") != "pol":
        return None
    for raw in proof.get("submissions", []):
        try:
            env = decode_tx(raw, network_id)
        except ProtocolError:
            continue
        if env.sender == proof.get("winner") and env.type == "tx/model_commit":
            return env
    return None


def pol_consensus(
    submissions: Sequence[bytes], network_id: str, bls_secret: int, height: int, attempt: int = 0
) -> dict[str, Any]:
    """The ``header.consensus`` map of a ``pol`` block at ``height`` from the round's raw model commitments; the
    proposer (holder of ``bls_secret``) must be the submitter ranked ``attempt``.

    Raises:
        ProtocolError: a submission does not verify.
        ValueError: fewer than ``attempt + 1`` submissions.
    """
    envs = [decode_tx(raw, network_id) for raw in submissions]
    proof: dict[str, Any] = {
        "rule": "pol",
        "submissions": list(submissions),
        "winner": pol_winner(envs, attempt).sender,
        "reveal": make_reveal(bls_secret, network_id, height),
    }
    if attempt:
        proof["attempt"] = attempt
    return proof


@dataclass(frozen=True)
class ConsensusOutcome:
    """What a checked proof contributes to the next state."""

    seed: bytes
    pol_round: int


def _keys(proof: Mapping[str, Any], required: set[str], optional: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    keys = set(proof)
    if not required <= keys or not keys <= required | optional:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, f"consensus fields {sorted(keys)}, expected {sorted(required)}")


def _attempt(proof: Mapping[str, Any]) -> int:
    attempt = proof.get("attempt", 0)
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_ATTEMPT:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "attempt must be an int in [0, 1024]")
    return attempt


def _check_reveal(state: State, header: Header, reveal: Any) -> bytes:
    if not isinstance(reveal, bytes) or len(reveal) != bls.SIG_LEN:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "reveal must be 96 bytes")
    pubkey = state.validators.get(header.proposer)
    if pubkey is None:
        raise InvalidBlock(LedgerReason.BAD_PROPOSER, "the proposer has no registered BLS key")
    if not bls.verify(pubkey, reveal_message(state.network_id, header.height), reveal):
        raise InvalidBlock(LedgerReason.BAD_REVEAL, "RANDAO reveal does not verify")
    return hashlib.sha256(state.seed + reveal).digest()


def _check_pos(state: State, header: Header, proof: Mapping[str, Any]) -> ConsensusOutcome:
    _keys(proof, {"rule", "reveal"}, {"attempt"})
    attempt = _attempt(proof)
    if not isinstance(proof["reveal"], bytes) or len(proof["reveal"]) != bls.SIG_LEN:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "reveal must be 96 bytes")
    expected = sortition(pos_weights(state, attempt), state.seed, header.height, attempt)
    if header.proposer != expected:
        raise InvalidBlock(LedgerReason.BAD_PROPOSER, f"sortition drew {expected.hex()[:16]} for attempt {attempt}")
    return ConsensusOutcome(_check_reveal(state, header, proof["reveal"]), state.pol_round)


def _check_lottery(state: State, header: Header, proof: Mapping[str, Any]) -> ConsensusOutcome:
    _keys(proof, {"rule", "weights", "seed", "reveal"}, {"attempt"})
    attempt = _attempt(proof)
    if proof["seed"] != state.seed:
        raise InvalidBlock(LedgerReason.BAD_SEED, "lottery seed is not the previous block's seed")
    rows = proof["weights"]
    weights = pos_weights(state, attempt)
    expected = [[a, w] for a, w in weights.items()]
    if rows != expected:
        raise InvalidBlock(LedgerReason.BAD_WEIGHTS, "lottery weights differ from the state's proposer weights")
    winner = lottery_winner(weights, state.seed, header.height, attempt)
    if header.proposer != winner:
        raise InvalidBlock(LedgerReason.BAD_PROPOSER, f"the lottery drew {winner.hex()[:16]} for attempt {attempt}")
    return ConsensusOutcome(_check_reveal(state, header, proof["reveal"]), state.pol_round)


def _check_pol(state: State, header: Header, proof: Mapping[str, Any]) -> ConsensusOutcome:
    _keys(proof, {"rule", "submissions", "winner", "reveal"}, {"attempt"})
    attempt = _attempt(proof)
    raw = proof["submissions"]
    if (
        not isinstance(raw, list)
        or not 0 < len(raw) <= MAX_SUBMISSIONS
        or not all(isinstance(r, bytes) for r in raw)
    ):
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "submissions must be a non-empty list of envelope bytes")
    envs: list[Envelope] = []
    for i, item in enumerate(raw):
        try:
            env = decode_tx(item, state.network_id)
        except ProtocolError as err:
            raise InvalidBlock(LedgerReason.BAD_CONSENSUS, f"submission {i}: {err}") from err
        if env.type != "tx/model_commit":
            raise InvalidBlock(LedgerReason.BAD_CONSENSUS, f"submission {i} is {env.type}, not tx/model_commit")
        if env.sender not in state.validators:
            raise InvalidBlock(LedgerReason.UNKNOWN_VALIDATOR, f"submission {i}: its miner has no registered BLS key")
        envs.append(env)
    if len({e.sender for e in envs}) != len(envs):
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "one submission per miner")
    if len({(e.market, e.round) for e in envs}) != 1:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, "submissions from different markets or rounds")
    if attempt >= len(envs):
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, f"attempt {attempt} but only {len(envs)} submissions")
    rnd = envs[0].round
    if rnd < state.pol_round:
        raise InvalidBlock(LedgerReason.STALE_ROUND, f"submissions of round {rnd} < last PoL round {state.pol_round}")
    winner = pol_winner(envs, attempt)
    if proof["winner"] != winner.sender or header.proposer != winner.sender:
        raise InvalidBlock(LedgerReason.BAD_PROPOSER,
                           f"claim ranked {attempt} is {winner.sender.hex()[:16]}, not the proposer")
    return ConsensusOutcome(_check_reveal(state, header, proof["reveal"]), rnd)


def check_consensus(state: State, header: Header) -> ConsensusOutcome:
    """Check ``header.consensus`` against ``state`` (the parent state) and the network's rule.

    Raises:
        InvalidBlock: ``bad-consensus``, ``bad-proposer``, ``bad-reveal``, ``bad-seed``, ``bad-weights``,
            ``stale-round``, ``unknown-validator`` (a PoL submitter without a BLS key) or ``no-weight``.
    """
    proof = header.consensus
    rule = state.genesis.consensus
    if proof.get("rule") != rule:
        raise InvalidBlock(LedgerReason.BAD_CONSENSUS, f"this network uses {rule!r}, block says {proof.get('rule')!r}")
    if header.proposer in state.slashed:
        raise InvalidBlock(LedgerReason.BAD_PROPOSER, "the proposer has been slashed")
    if rule == "pos":
        return _check_pos(state, header, proof)
    if rule == "lottery":
        return _check_lottery(state, header, proof)
    return _check_pol(state, header, proof)
