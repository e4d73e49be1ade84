"""``apply(state, block, genesis)`` — the single pure state transition — and ``build_block`` for proposers.

No clock, no I/O: the result depends on the arguments only (and the node's block ``checks``). Importing a
peer's block means re-executing it and comparing the state root (STYLE §6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bazaar.protocol.envelope import Envelope
from bazaar.protocol.errors import ProtocolError
from bazaar.protocol.keys import KeyPair

from .block import MAX_TXS, Block, Header, merkle_root, sign_header
from .checks import BlockCheck
from .consensus import check_consensus
from .errors import InvalidBlock, InvalidTx, LedgerReason
from .execute import Draft, apply_tx
from .genesis import Genesis
from .state import State
from .txs import decode_tx, decode_txs


def block_reward(genesis: Genesis, n_txs: int) -> int:
    """Micro-tokens minted to the proposer of a block with ``n_txs`` transactions."""
    return genesis.block_reward + genesis.reward_per_tx * n_txs


def _check_genesis(state: State, genesis: Genesis) -> None:
    if state.genesis is not genesis and state.genesis.hash() != genesis.hash():  # the hash encodes every balance
        raise ValueError("state and genesis belong to different networks")


def _check_frame(state: State, header: Header, genesis: Genesis) -> None:
    if header.height != state.height + 1:
        raise InvalidBlock(LedgerReason.BAD_HEIGHT, f"height {header.height}, expected {state.height + 1}")
    if header.parent != state.head:
        raise InvalidBlock(LedgerReason.BAD_PARENT, "parent is not the current head")
    if header.timestamp_ms < state.timestamp_ms:
        raise InvalidBlock(LedgerReason.BAD_TIMESTAMP, f"timestamp {header.timestamp_ms} < parent {state.timestamp_ms}")


def apply(
    state: State, block: Block, genesis: Genesis | None = None, *, checks: Sequence[BlockCheck] = ()
) -> State:
    """Apply ``block`` to ``state`` and return the new state; ``state`` is unchanged.

    Checks, in order: height, parent, timestamp (non-decreasing), proposer signature, tx count and Merkle
    root,
    reward, consensus proof, every transaction in order (any invalid transaction invalidates the block), then
    mints the reward, asserts conservation and compares the state root.

    Args:
        state: the state at the parent block.
        block: the block to apply.
        genesis: the network's genesis (defaults to ``state.genesis``; must match it).
        checks: the node's block checks (consensus driver, market contracts), run with the parent state
            after the consensus proof and every transaction applied, before the state root is compared.

    Returns:
        The state after the block.

    Raises:
        InvalidBlock: with reason ``bad-height``, ``bad-parent``, ``bad-timestamp``, ``bad-signature``,
            ``oversize``, ``bad-tx-root``, ``bad-reward``, a consensus reason, ``bad-tx`` (``tx_index`` and
            ``tx_reason`` set), ``conservation`` or ``bad-state-root``.
        ValueError: ``genesis`` is not the state's genesis (a caller bug).
    """
    genesis = genesis or state.genesis
    _check_genesis(state, genesis)
    header = block.header
    _check_frame(state, header, genesis)
    block.check_signature(genesis.network_id)  # remembered when Block.decode checked it
    if len(block.txs) > MAX_TXS:
        raise InvalidBlock(LedgerReason.OVERSIZE, f"{len(block.txs)} transactions > cap {MAX_TXS}")
    if not block.tx_root_matches():  # remembered when Block.decode checked it
        raise InvalidBlock(LedgerReason.BAD_TX_ROOT, "tx_root does not match the transactions")
    reward = block_reward(genesis, len(block.txs))
    if header.reward != reward:
        raise InvalidBlock(LedgerReason.BAD_REWARD, f"reward {header.reward} != {reward}")
    outcome = check_consensus(state, header)
    draft = Draft(state, header.height, header.proposer)
    # every transaction opened first (signatures back to back), then applied in order; the first one that
    # fails, to open or to apply, is the block's error, as if each were opened just before it is applied
    opened = decode_txs(block.txs, genesis.network_id, leaves=block.leaves())
    for i, env in enumerate(opened):
        if isinstance(env, ProtocolError):
            raise InvalidBlock(LedgerReason.BAD_TX, f"tx {i}: {env}", tx_index=i, tx_reason=env.reason) from env
        try:
            apply_tx(draft, env)
        except ProtocolError as err:
            raise InvalidBlock(LedgerReason.BAD_TX, f"tx {i}: {err}", tx_index=i, tx_reason=err.reason) from err
        except InvalidTx as err:
            raise InvalidBlock(LedgerReason.BAD_TX, f"tx {i}: {err}", tx_index=i, tx_reason=err.reason) from err
    for check in checks:
        check(state, block)
    draft.end_block()
    draft.credit(header.proposer, reward)
    draft.minted += reward
    new = draft.freeze(
        head=header.hash, timestamp_ms=header.timestamp_ms, seed=outcome.seed, pol_round=outcome.pol_round
    )
    if not new.conserved():
        raise InvalidBlock(LedgerReason.CONSERVATION, f"supply {new.supply.total} != held {new.held()}")
    if new.root() != header.state_root:
        raise InvalidBlock(LedgerReason.BAD_STATE_ROOT, "the re-executed state root differs from the header's")
    return new


def build_block(
    state: State,
    genesis: Genesis,
    proposer_key: KeyPair,
    txs: Sequence[bytes],
    *,
    timestamp_ms: int,
    consensus: dict[str, Any],
    checks: Sequence[BlockCheck] = (),
) -> tuple[Block, State, list[tuple[bytes, InvalidTx]]]:
    """Build, execute and sign the next block from candidate transactions.

    Transactions that apply are included in order; the others are skipped and returned with their reason
    (malformed ones as ``InvalidTx`` with the protocol reason, e.g. ``bad-signature``).

    Args:
        state: the head state.
        genesis: the network's genesis.
        proposer_key: the proposer's key (must be entitled by ``consensus``).
        txs: candidate raw transactions, in the order to try them.
        timestamp_ms: the block's timestamp (at least the parent's).
        consensus: the proof (``pos_consensus``, ``lottery_consensus`` or ``pol_consensus``).
        checks: the node's block checks, run with ``state`` (the parent) and the signed block, so a proposer
            refuses to build what its peers' :func:`apply` would refuse.

    Returns:
        ``(block, new_state, rejected)``.

    Raises:
        InvalidBlock: the frame or the consensus proof is invalid (the caller may not propose now), or a
            block check refused the built block.
    """
    _check_genesis(state, genesis)
    included: list[bytes] = []
    rejected: list[tuple[bytes, InvalidTx]] = []
    draft = Draft(state, state.height + 1, proposer_key.public)
    for raw in txs:
        if len(included) >= MAX_TXS:
            rejected.append((raw, InvalidTx(LedgerReason.BLOCK_FULL, "block transaction cap reached")))
            continue
        try:
            env: Envelope = decode_tx(raw, genesis.network_id)
            apply_tx(draft, env)
        except ProtocolError as err:
            rejected.append((raw, InvalidTx(err.reason, err.detail)))
            continue
        except InvalidTx as err:
            rejected.append((raw, err))
            continue
        included.append(bytes(raw))
    reward = block_reward(genesis, len(included))
    provisional = Header(
        height=state.height + 1,
        parent=state.head,
        timestamp_ms=timestamp_ms,
        proposer=proposer_key.public,
        tx_root=merkle_root(included),
        state_root=bytes(32),
        reward=reward,
        consensus=consensus,
    )
    _check_frame(state, provisional, genesis)
    outcome = check_consensus(state, provisional)
    draft.end_block()
    draft.credit(proposer_key.public, reward)
    draft.minted += reward
    # The state root does not cover the head hash (the hash of the very header that carries the root), so the
    # state can be frozen before the header exists and given its head afterwards.
    unsigned = draft.freeze(
        head=state.head, timestamp_ms=timestamp_ms, seed=outcome.seed, pol_round=outcome.pol_round
    )
    if not unsigned.conserved():
        raise AssertionError("conservation broken while building a block")  # a ledger bug, never peer input
    header = replace(provisional, state_root=unsigned.root())
    block = Block(header, tuple(included), sign_header(proposer_key, genesis.network_id, header))
    for check in checks:
        check(state, block)
    return block, unsigned.with_head(header.hash), rejected  # the root and its encoding kept
