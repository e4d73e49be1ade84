"""The chain: a store plus the verified state at its head; import, finality, sync and export.

Loading re-executes every stored block from genesis and re-checks hashes, signatures, state roots and
certificates; anything that does not verify raises :class:`~.errors.StoreCorrupt` naming the height.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bazaar.protocol import codec
from bazaar.protocol.errors import ProtocolError
from bazaar.protocol.keys import KeyPair

from .apply import apply, build_block
from .block import Block
from .checks import BlockCheck
from .errors import InvalidAttestation, InvalidBlock, InvalidTx, LedgerError, LedgerReason, StoreCorrupt, UnknownParent
from .evidence import Evidence, evidence_from_blocks
from .finality import Certificate, ValidatorSet, verify_certificate
from .genesis import Genesis
from .state import State
from .store import CHAIN_DB, SqliteStore, Store, StoreError
from .txs import decode_tx

GENESIS_META = "genesis"
VALIDATOR_SETS_KEPT = 256
"""Validator sets of recent heights remembered by :meth:`Chain.validator_set` (a few KB each at most)."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {(k.hex() if isinstance(k, bytes) else str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class Chain:
    """A verified chain on top of a :class:`~.store.Store`.

    Attributes:
        store: the persistence backend.
        genesis: the network's genesis.
        evidence: equivocations detected by :meth:`import_block`, for the node to submit as ``tx/evidence``.
    """

    def __init__(self, store: Store, genesis: Genesis) -> None:
        """Open the chain, re-verifying every stored block.

        Raises:
            StoreCorrupt: a stored block, state root or certificate does not verify (``height`` names it;
                0 for a genesis mismatch).
        """
        self.store = store
        self.genesis = genesis
        self.network_id = genesis.network_id
        self.evidence: list[Evidence] = []
        self._genesis_state = State.from_genesis(genesis)
        self._state = self._genesis_state
        self._head: Block | None = None
        self._states: dict[int, State] = {0: self._genesis_state}
        self._vsets: dict[int, ValidatorSet] = {}
        """Validator sets of recent heights (block ``h`` is attested by ``state_at(h - 1)``'s), kept after the
        states themselves are dropped at finality: late attestations for a finalized block ask for them."""
        self._finalized = 0
        self._load()

    # ---- loading -------------------------------------------------------------------------------------------

    def _load(self) -> None:
        height = 0
        try:
            stored = self.store.get_meta(GENESIS_META)
            if stored is None:
                self.store.put_meta(GENESIS_META, self.genesis.encode())
            elif stored != self.genesis.encode():
                raise StoreCorrupt(0, "the store belongs to a different genesis")
            for row in self.store.iter_blocks(1):
                height = row.height
                self._load_one(row.height, row.hash, row.raw, row.state_root)
        except StoreError as err:
            raise StoreCorrupt(height + 1, f"store error: {err}") from err

    def _load_one(self, height: int, block_hash: bytes, raw: bytes, state_root: bytes) -> None:
        if height != self._state.height + 1:
            raise StoreCorrupt(height, f"gap: expected height {self._state.height + 1}")
        try:
            block = Block.decode(raw, self.network_id)
            if block.height != height or block.hash != block_hash:
                raise StoreCorrupt(height, "stored hash or height does not match the block")
            parent = self._state
            state = apply(parent, block, self.genesis)
        except InvalidBlock as err:
            raise StoreCorrupt(height, f"block does not verify: {err}") from err
        if state.root() != state_root:
            raise StoreCorrupt(height, "stored state root differs from the re-executed one")
        self._advance(block, state)
        cert_raw = self.store.get_certificate(height)
        if cert_raw is not None:
            try:
                cert = Certificate.decode(cert_raw)
                if cert.height != height or cert.block_hash != block.hash:
                    raise InvalidAttestation(LedgerReason.WRONG_BLOCK, "certificate is for another block")
                verify_certificate(cert, parent.validator_set(), self.network_id)
            except InvalidAttestation as err:
                raise StoreCorrupt(height, f"certificate does not verify: {err}") from err
            self._finalize(height)

    def _advance(self, block: Block, state: State) -> None:
        self._head = block
        self._state = state
        self._states[state.height] = state
        self._vsets.pop(state.height + 1, None)  # a replaced head (after a rewind) has its own
        if len(self._vsets) > VALIDATOR_SETS_KEPT:
            for h in sorted(self._vsets)[: len(self._vsets) - VALIDATOR_SETS_KEPT]:
                del self._vsets[h]

    def _finalize(self, height: int) -> None:
        if height <= self._finalized:
            return
        self._finalized = height
        for h in [h for h in self._states if h < height]:
            del self._states[h]

    # ---- queries -------------------------------------------------------------------------------------------

    @property
    def head(self) -> Block | None:
        """The head block (``None`` before block 1)."""
        return self._head

    @property
    def head_hash(self) -> bytes:
        """The head block's hash (the genesis hash before block 1)."""
        return self._state.head

    @property
    def height(self) -> int:
        """The head height."""
        return self._state.height

    @property
    def state(self) -> State:
        """The state at the head."""
        return self._state

    @property
    def finalized_height(self) -> int:
        """The highest height covered by a verified certificate."""
        return self._finalized

    def state_at(self, height: int) -> State:
        """The state after block ``height`` (re-executed from genesis if no longer cached).

        Raises:
            ValueError: ``height`` outside ``[0, self.height]``.
        """
        if not 0 <= height <= self.height:
            raise ValueError(f"height {height} outside [0, {self.height}]")
        cached = self._states.get(height)
        if cached is not None:
            return cached
        state = self._genesis_state
        for row in self.store.iter_blocks(1, height):
            state = apply(state, Block.decode(row.raw, self.network_id), self.genesis)
        return state

    def validator_set(self, height: int) -> ValidatorSet:
        """The validators (``account -> (BLS key, weight)``) that attest to block ``height``.

        They are the validator set of the parent state, ``state_at(height − 1)``.
        """
        cached = self._vsets.get(height)
        if cached is None:
            cached = self._vsets[height] = MappingProxyType(self.state_at(height - 1).validator_set())
        return cached

    def block(self, height: int) -> Block | None:
        """The stored block at ``height``."""
        row = self.store.get_block(height)
        return None if row is None else Block.decode(row.raw, self.network_id)

    def certificate(self, height: int) -> Certificate | None:
        """The stored certificate of ``height``."""
        raw = self.store.get_certificate(height)
        return None if raw is None else Certificate.decode(raw)

    def blocks_after(self, height: int, limit: int = 64) -> list[Block]:
        """Up to ``limit`` blocks with heights ``height + 1, height + 2, ...`` (for sync)."""
        rows = self.store.iter_blocks(height + 1, min(self.height, height + max(limit, 0)))
        return [Block.decode(row.raw, self.network_id) for row in rows]

    # ---- mutation ------------------------------------------------------------------------------------------

    def import_block(self, block: Block, *, checks: Sequence[BlockCheck] = ()) -> Evidence | None:
        """Verify and append a peer's block, or detect an equivocation.

        Args:
            block: the received block.
            checks: the node's block checks (see :func:`~.apply.apply`).

        Returns:
            ``None`` when the block was appended (or was already stored); an :class:`Evidence` when ``block``
            conflicts with a stored block at the same height by the same proposer (also appended to
            :attr:`evidence`).

        Raises:
            UnknownParent: the block does not extend the head (sync first).
            InvalidBlock: the block does not apply (reason as in :func:`~.apply.apply`), or ``fork`` when it
                conflicts with a stored block by a different proposer.
        """
        height = block.height
        if 1 <= height <= self.height:
            row = self.store.get_block(height)
            if row is not None and row.hash == block.hash:
                return None
            block.check_signature(self.network_id)
            existing = self.block(height)
            if existing is not None and existing.header.proposer == block.header.proposer:
                try:
                    ev = evidence_from_blocks(existing, block, self.network_id)
                except InvalidTx as err:
                    raise InvalidBlock(LedgerReason.BAD_EVIDENCE, str(err)) from err
                if all((e.proposer, e.height) != (ev.proposer, ev.height) for e in self.evidence):
                    self.evidence.append(ev)
                return ev
            raise InvalidBlock(LedgerReason.FORK, f"a different block by another proposer is stored at height {height}")
        if height != self.height + 1 or block.header.parent != self.head_hash:
            raise UnknownParent(LedgerReason.UNKNOWN_PARENT, f"block {height} does not extend head {self.height}")
        state = apply(self._state, block, self.genesis, checks=checks)
        self.store.append(block, state.root())
        self._advance(block, state)
        return None

    def build_and_import(
        self,
        proposer_key: KeyPair,
        txs: Sequence[bytes],
        *,
        timestamp_ms: int,
        consensus: dict[str, Any],
        checks: Sequence[BlockCheck] = (),
    ) -> tuple[Block, list[tuple[bytes, InvalidTx]]]:
        """Build the next block from ``txs`` (see :func:`~.apply.build_block`), store it and advance the head.

        Args:
            proposer_key: the proposer's key (must be entitled by ``consensus``).
            txs: candidate raw transactions, in the order to try them.
            timestamp_ms: the block's timestamp.
            consensus: the proof.
            checks: the node's block checks, run on the built block before it is stored.

        Returns:
            ``(block, rejected)``.

        Raises:
            InvalidBlock: the proof is invalid or a check refused the block (nothing is stored).
        """
        block, state, rejected = build_block(
            self._state,
            self.genesis,
            proposer_key,
            txs,
            timestamp_ms=timestamp_ms,
            consensus=consensus,
            checks=checks,
        )
        self.store.append(block, state.root())
        self._advance(block, state)
        return block, rejected

    def add_certificate(self, cert: Certificate) -> bool:
        """Verify a finality certificate and finalize its block (and the ancestors).

        Returns:
            ``True`` if the finalized height advanced; ``False`` if the height was already final.

        Raises:
            InvalidAttestation: ``unknown-block`` (not stored yet), ``wrong-block`` (another hash at that
                height), or a :func:`~.finality.verify_certificate` reason.
        """
        if cert.height <= self._finalized:
            return False
        if cert.height > self.height:
            raise InvalidAttestation(LedgerReason.UNKNOWN_BLOCK, f"no block at height {cert.height} yet")
        row = self.store.get_block(cert.height)
        if row is None or row.hash != cert.block_hash:
            raise InvalidAttestation(LedgerReason.WRONG_BLOCK, "certificate is for a block we do not hold")
        verify_certificate(cert, self.validator_set(cert.height), self.network_id)
        self.store.set_certificate(cert.height, cert)
        self._finalize(cert.height)
        return True

    def rewind(self, height: int) -> int:
        """Drop the non-final blocks above ``height`` (the node's fork choice: a certified block elsewhere).

        Returns:
            How many blocks were removed.

        Raises:
            InvalidBlock: ``finalized`` when ``height`` is below the finalized height.
        """
        if height < self._finalized:
            raise InvalidBlock(LedgerReason.FINALIZED, f"cannot rewind below the finalized height {self._finalized}")
        if height >= self.height:
            return 0
        state = self.state_at(height)
        try:
            removed = self.store.truncate_above(height)
        except StoreError as err:
            raise InvalidBlock(LedgerReason.FINALIZED, str(err)) from err
        self._state = state
        self._head = self.block(height) if height else None
        self._states = {h: st for h, st in self._states.items() if h <= height}
        self._states[height] = state
        self._vsets = {h: v for h, v in self._vsets.items() if h <= height}
        return removed

    # ---- export --------------------------------------------------------------------------------------------

    def export(self, *, finalized_only: bool = True) -> dict[str, Any]:
        """The chain as JSON-able data: blocks with their transactions, and the state's books.

        Args:
            finalized_only: stop at the finalized height (default), else at the head.

        Returns:
            ``{"height", "finalized_height", "blocks": [{"height", "hash", "parent", "proposer",
            "timestamp_ms", "reward", "txs": [{"id", "type", "sender", "market", "round", "body"}]}],
            "balances", "escrow", "stake", "slashed", "supply", "records"}`` with hex strings for bytes.
        """
        top = self._finalized if finalized_only else self.height
        blocks = []
        for row in self.store.iter_blocks(1, top):
            block = Block.decode(row.raw, self.network_id)
            txs = []
            for raw in block.txs:
                env = decode_tx(raw, self.network_id)
                txs.append(
                    {
                        "id": env.digest.hex(),
                        "type": env.type,
                        "sender": env.sender.hex(),
                        "market": env.market,
                        "round": env.round,
                        "body": _jsonable(env.body),
                    }
                )
            h = block.header
            blocks.append(
                {
                    "height": h.height,
                    "hash": block.hash.hex(),
                    "parent": h.parent.hex(),
                    "proposer": h.proposer.hex(),
                    "timestamp_ms": h.timestamp_ms,
                    "reward": h.reward,
                    "txs": txs,
                }
            )
        out: dict[str, Any] = {"finalized_height": self._finalized, "blocks": blocks}
        out.update(self.state_at(top).export())
        return out


def verify_data_dir(path: str | Path) -> dict[str, Any]:
    """Re-verify a node's chain database offline (``bazaar chain verify``).

    Args:
        path: a data directory holding ``chain.sqlite3``, or the database file itself.

    Returns:
        ``{"ok": bool, "path", "height", "finalized_height", "head", "supply", "conserved"}`` on success,
        ``{"ok": False, "path", "height", "error"}`` on failure (``height``: the first bad height); an empty store
        (created, then killed before its genesis was written: nothing to lose) is ``{"ok": True, "height": 0,
        "finalized_height": 0, "empty": True}``.
    """
    target = Path(path)
    db = target / CHAIN_DB if target.is_dir() else target
    if not db.exists():
        return {"ok": False, "path": str(db), "height": 0, "error": "no chain database"}
    try:
        store = SqliteStore(db)
    except LedgerError as err:
        return {"ok": False, "path": str(db), "height": 0, "error": str(err)}
    try:
        try:
            raw = store.get_meta(GENESIS_META)
            if raw is None and store.head_height() == 0:  # killed between creating it and writing the genesis
                return {"ok": True, "path": str(db), "height": 0, "finalized_height": 0, "empty": True,
                        "conserved": True}
            if raw is None:
                return {"ok": False, "path": str(db), "height": 0, "error": "no genesis in the database"}
            genesis = Genesis.from_dict(codec.decode(raw))
        except (LedgerError, ProtocolError, ValueError) as err:
            return {"ok": False, "path": str(db), "height": 0, "error": f"bad genesis: {err}"}
        try:
            chain = Chain(store, genesis)
        except StoreCorrupt as err:
            return {"ok": False, "path": str(db), "height": err.height, "error": str(err)}
        state = chain.state
        return {
            "ok": True,
            "path": str(db),
            "network_id": genesis.network_id,
            "height": chain.height,
            "finalized_height": chain.finalized_height,
            "head": chain.head_hash.hex(),
            "state_root": state.root().hex(),
            "supply": {
                "genesis": state.supply.genesis,
                "minted": state.supply.minted,
                "burned": state.supply.burned,
            },
            "conserved": state.conserved(),
        }
    finally:
        store.close()
