"""Transaction execution: each handler checks everything first, then writes to a :class:`Draft`.

Because no handler writes before its last check, a rejected transaction leaves the draft untouched; that
is what lets :func:`.apply.build_block` skip a bad transaction and keep building, and lets
:func:`check_tx` run the same code for the mempool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bazaar.protocol.envelope import Envelope
from bazaar.protocol.errors import SchemaError

from . import bls
from .amounts import MAX_AMOUNT
from .errors import InvalidBlock, InvalidTx, LedgerReason
from .evidence import check_evidence
from .genesis import PPM
from .state import RECORDS_DOMAIN, Escrow, ModelCommit, Overlay, State, Supply
from .txs import KIND_OF_TYPE, NONCELESS, WEIGHTS_RECORD, contract_account, tx_kind


class Draft:
    """The mutable state of the block being applied at ``height`` on top of ``base``."""

    def __init__(self, base: State, height: int, proposer: bytes | None = None) -> None:
        self.base = base
        self.height = height
        self.proposer = proposer
        """The block's proposer (None in a mempool check): the only signer that may act on a contract escrow."""
        self.balances: Overlay[bytes, int] = Overlay(base.balances)
        self.nonces: Overlay[bytes, int] = Overlay(base.nonces)
        self.escrows: Overlay[bytes, Escrow] = Overlay(base.escrows)
        self.stakes: Overlay[bytes, int] = Overlay(base.stakes)
        self.validators: Overlay[bytes, bytes] = Overlay(base.validators)
        self.slashed: Overlay[bytes, int] = Overlay(base.slashed)
        self.new_evidence: set[tuple[bytes, int]] = set()
        self.weights: dict[bytes, int] | None = None
        self.records_root = base.records_root
        self.records_count = base.records_count
        self.models: list[ModelCommit] = []
        self.minted = 0
        self.burned = 0
        self.unbonding: dict[int, dict[bytes, int]] = {h: dict(batch) for h, batch in base.unbonding.items()}
        self.expired: list[bytes] = []

    def balance(self, account: bytes) -> int:
        """Current free balance."""
        return int(self.balances.get(account, 0))

    def credit(self, account: bytes, amount: int) -> None:
        """Add ``amount`` to ``account``'s balance."""
        self.balances.set(account, self.balance(account) + amount)

    def debit(self, account: bytes, amount: int) -> None:
        """Subtract ``amount`` (the caller has checked the balance)."""
        self.balances.set(account, self.balance(account) - amount)

    def stake(self, account: bytes) -> int:
        """Current stake."""
        return int(self.stakes.get(account, 0))

    def unbond(self, account: bytes, amount: int) -> None:
        """Move ``amount`` (already taken off the stake) into an unbonding entry released by the block at
        ``height + unbonding_blocks``."""
        batch = self.unbonding.setdefault(self.height + self.base.genesis.unbonding_blocks, {})
        batch[account] = batch.get(account, 0) + amount

    def slash_unbonding(self, account: bytes, ppm: int) -> int:
        """Burn ``ppm`` parts per million of each of ``account``'s unbonding entries; returns what was burned."""
        burned = 0
        for batch in self.unbonding.values():
            amount = batch.get(account, 0)
            burn = amount * ppm // PPM
            if burn:
                burned += burn
                if amount == burn:
                    del batch[account]
                else:
                    batch[account] = amount - burn
        return burned

    def end_block(self) -> None:
        """The end-of-block rules, after every transaction (docs/ledger.md §End of block):

        1. release every unbonding entry due at this height to its account's balance;
        2. refund every open escrow whose ``expires`` is below this height to its payer, in escrow-id order.

        Every escrow open at the parent has ``expires ≥`` the parent's height (the rule ran at every earlier
        block, and a lock needs ``expires ≥`` its block's height), so the only escrows due are those of the
        index bucket ``height − 1``; one expiring in this very block was re-checked (an id closed and locked
        again in the block carries its new expiry).
        """
        for account, amount in sorted(self.unbonding.pop(self.height, {}).items()):
            self.credit(account, amount)
        due = self.base.expiring.get(self.height - 1, frozenset())
        for escrow_id in sorted(due):
            escrow = self.escrows.get(escrow_id)
            if escrow is None or escrow.expires >= self.height:
                continue  # closed in this block, or closed and locked again with a later expiry
            self.escrows.delete(escrow_id)
            self.credit(escrow.payer, escrow.amount)
            self.expired.append(escrow_id)

    def _expiring(self) -> dict[int, frozenset[bytes]]:
        """The expiry index after this block: the parent's, updated for the escrows the block touched."""
        index = dict(self.base.expiring)
        gone: dict[int, set[bytes]] = {}
        came: dict[int, set[bytes]] = {}
        for escrow_id in self.escrows.changes:
            before = self.base.escrows.get(escrow_id)
            after = self.escrows.get(escrow_id)
            if before is not None and (after is None or after.expires != before.expires):
                gone.setdefault(before.expires, set()).add(escrow_id)
            if after is not None and (before is None or after.expires != before.expires):
                came.setdefault(after.expires, set()).add(escrow_id)
        for height in gone.keys() | came.keys():  # one new bucket per height touched, not one per escrow
            bucket = (index.get(height, frozenset()) - gone.get(height, set())) | came.get(height, set())
            if bucket:
                index[height] = frozenset(bucket)
            else:
                index.pop(height, None)
        return index

    def freeze(self, *, head: bytes, timestamp_ms: int, seed: bytes, pol_round: int) -> State:
        """The resulting immutable :class:`State`."""
        base = self.base
        return State(
            genesis=base.genesis,
            height=self.height,
            head=head,
            timestamp_ms=timestamp_ms,
            seed=seed,
            balances=self.balances.merged(drop_zero=True),
            nonces=self.nonces.merged(),
            escrows=self.escrows.merged(),
            stakes=self.stakes.merged(drop_zero=True),
            validators=self.validators.merged(),
            slashed=self.slashed.merged(),
            evidence=base.evidence | frozenset(self.new_evidence),
            weights=base.weights if self.weights is None else self.weights,
            records_root=self.records_root,
            records_count=self.records_count,
            models=tuple(self.models),
            pol_round=pol_round,
            supply=Supply(
                base.supply.genesis, base.supply.minted + self.minted, base.supply.burned + self.burned
            ),
            unbonding={h: batch for h, batch in self.unbonding.items() if batch},
            expired=tuple(sorted(self.expired)),
            expiring=self._expiring(),
        ).derived(base, {name: getattr(self, name).changes.keys()
                         for name in ("balances", "nonces", "escrows", "stakes", "validators", "slashed")})


def _funds(draft: Draft, account: bytes, amount: int) -> None:
    have = draft.balance(account)
    if have < amount:
        raise InvalidTx(LedgerReason.INSUFFICIENT_FUNDS, f"balance {have} < {amount}")


def _transfer(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    # _funds, debit and credit written out: the commonest transaction. A balance this block already wrote is
    # read from the overlay's changes directly (an int there is exactly what Overlay.get returns); anything
    # else, and every write, is the overlay's own get / set (set is a store into changes)
    amount, to, sender, balances = body["amount"], body["to"], env.sender, draft.balances
    changes = balances.changes
    have: Any = changes.get(sender)
    if type(have) is not int:
        have = int(balances.get(sender, 0))
    if have < amount:
        raise InvalidTx(LedgerReason.INSUFFICIENT_FUNDS, f"balance {have} < {amount}")
    dest: Any
    if to == sender:
        dest = have
    else:
        dest = changes.get(to)
        if type(dest) is not int:
            dest = int(balances.get(to, 0))
    if dest + amount > MAX_AMOUNT:
        raise InvalidTx(LedgerReason.OVERFLOW, "recipient balance would overflow")
    changes[sender] = have - amount
    changes[to] = (have - amount if to == sender else dest) + amount  # paying oneself leaves the balance


def _escrow_lock(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    if body["id"] in draft.escrows:
        raise InvalidTx(LedgerReason.ESCROW_EXISTS, f"escrow {body['id'].hex()[:16]} is already open")
    if body["expires"] < draft.height:
        raise InvalidTx(LedgerReason.BAD_EXPIRY, f"expires {body['expires']} < height {draft.height}")
    _funds(draft, env.sender, body["amount"])
    draft.debit(env.sender, body["amount"])
    draft.escrows.set(
        body["id"],
        Escrow(
            payer=env.sender,
            payee=body["payee"],
            amount=body["amount"],
            expires=body["expires"],
            arbiter=body.get("arbiter"),
            ref=body.get("ref") or b"",
            market=env.market,
        ),
    )


def _open_escrow(draft: Draft, escrow_id: bytes) -> Escrow:
    escrow = draft.escrows.get(escrow_id)
    if escrow is None:
        raise InvalidTx(LedgerReason.UNKNOWN_ESCROW, f"no open escrow {escrow_id.hex()[:16]}")
    return escrow  # type: ignore[no-any-return]


def _is_contract(escrow: Escrow) -> bool:
    """Whether the escrow's arbiter is its market's contract (docs/ledger.md §Contract escrows)."""
    return escrow.arbiter is not None and escrow.arbiter == contract_account(escrow.market)


def _acts_as_arbiter(draft: Draft, env: Envelope, escrow: Escrow) -> bool:
    """Whether ``env``'s signer may act as the escrow's arbiter: its arbiter, or — for a contract escrow — the
    block's proposer signing for the escrow's market (the market contract every validator re-executes decides
    whether what it does is right; no peer's transaction can touch a contract escrow)."""
    if _is_contract(escrow):
        return draft.proposer is not None and env.sender == draft.proposer and env.market == escrow.market
    return escrow.arbiter is not None and env.sender == escrow.arbiter


def _escrow_release(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    escrow = _open_escrow(draft, body["id"])
    if _is_contract(escrow):
        if not _acts_as_arbiter(draft, env, escrow):
            raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the market contract may release a contract escrow")
    elif env.sender not in (escrow.payer, escrow.arbiter):
        raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the payer or the arbiter may release")
    draft.escrows.delete(body["id"])
    draft.credit(escrow.payee, escrow.amount)


def _escrow_refund(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    escrow = _open_escrow(draft, body["id"])
    if _is_contract(escrow):
        if not _acts_as_arbiter(draft, env, escrow):
            if env.sender != escrow.payer:
                raise InvalidTx(LedgerReason.NOT_AUTHORISED,
                                "only the market contract, or the payer after expiry, may refund a contract escrow")
            if draft.height <= escrow.expires:
                raise InvalidTx(LedgerReason.NOT_EXPIRED, f"payer may refund only after height {escrow.expires}")
    elif env.sender == escrow.payer and env.sender not in (escrow.payee, escrow.arbiter):
        if draft.height <= escrow.expires:
            raise InvalidTx(LedgerReason.NOT_EXPIRED, f"payer may refund only after height {escrow.expires}")
    elif env.sender not in (escrow.payee, escrow.arbiter):
        raise InvalidTx(
            LedgerReason.NOT_AUTHORISED, "only the payee, the arbiter, or the payer after expiry may refund"
        )
    draft.escrows.delete(body["id"])
    draft.credit(escrow.payer, escrow.amount)


def _escrow_settle(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    escrow = draft.escrows.get(body["id"])
    if escrow is None:
        return  # settles nothing: the lock never landed (its payer spent the funds) or was already closed
    if not _acts_as_arbiter(draft, env, escrow):
        raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the escrow's arbiter may settle it")
    if body["amount"] > escrow.amount:
        raise InvalidTx(LedgerReason.OVER_ESCROW, f"settles {body['amount']} > escrow {escrow.amount}")
    draft.escrows.delete(body["id"])
    draft.credit(body["to"], body["amount"])
    draft.credit(escrow.payer, escrow.amount - body["amount"])


def _escrow_split(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    escrow = draft.escrows.get(body["id"])
    if escrow is None:
        return  # splits nothing: the lock never landed or was already closed (as for escrow_settle)
    if not _acts_as_arbiter(draft, env, escrow):
        raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the escrow's arbiter may split it")
    total = sum(body["to"].values())
    if total > escrow.amount:
        raise InvalidTx(LedgerReason.OVER_ESCROW, f"splits {total} > escrow {escrow.amount}")
    draft.escrows.delete(body["id"])
    for account, amount in sorted(body["to"].items()):
        draft.credit(account, amount)
    draft.credit(escrow.payer, escrow.amount - total)


def _escrow_take(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    escrow = _open_escrow(draft, body["id"])
    if not _acts_as_arbiter(draft, env, escrow):
        raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the escrow's arbiter may take from it")
    total = sum(body["to"].values())
    if total > escrow.amount:
        raise InvalidTx(LedgerReason.OVER_ESCROW, f"takes {total} > escrow {escrow.amount}")
    if total == escrow.amount:
        draft.escrows.delete(body["id"])  # taken whole: closed
    else:
        draft.escrows.set(body["id"], replace(escrow, amount=escrow.amount - total))
    for account, amount in sorted(body["to"].items()):
        draft.credit(account, amount)


def _stake(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    sender = env.sender
    if sender in draft.slashed:
        raise InvalidTx(LedgerReason.SLASHED, "a slashed account may not stake")
    registered = draft.validators.get(sender)
    pubkey = body.get("bls_pubkey")
    if registered is None:
        pop = body.get("bls_pop")
        if pubkey is None or pop is None:
            raise InvalidTx(LedgerReason.MISSING_BLS_KEY, "the first stake must carry bls_pubkey and bls_pop")
        if any(pk == pubkey for _, pk in draft.validators.items()):
            raise InvalidTx(LedgerReason.BLS_KEY_TAKEN, "this BLS key is registered to another account")
        if not bls.pop_verify(pubkey, pop):
            raise InvalidTx(LedgerReason.BAD_POP, "BLS proof of possession does not verify")
    elif pubkey is not None and pubkey != registered:
        raise InvalidTx(LedgerReason.BLS_KEY_MISMATCH, "bls_pubkey differs from the registered key")
    _funds(draft, sender, body["amount"])
    draft.debit(sender, body["amount"])
    draft.stakes.set(sender, draft.stake(sender) + body["amount"])
    if registered is None and pubkey is not None:
        draft.validators.set(sender, pubkey)


def _unstake(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    have = draft.stake(env.sender)
    if have < body["amount"]:
        raise InvalidTx(LedgerReason.INSUFFICIENT_STAKE, f"stake {have} < {body['amount']}")
    draft.stakes.set(env.sender, have - body["amount"])
    draft.unbond(env.sender, body["amount"])


def parse_weights(data: dict[str, Any]) -> dict[bytes, int]:
    """Parse a ``weights`` record's data ``{"weights": [[account, int weight], ...]}``.

    Raises:
        InvalidTx: reason ``bad-weights``.
    """
    rows = data.get("weights")
    if set(data) != {"weights"} or not isinstance(rows, list):
        raise InvalidTx(LedgerReason.BAD_WEIGHTS, 'weights record data must be {"weights": [[account, weight], ...]}')
    out: dict[bytes, int] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], bytes) and len(row[0]) == 32):
            raise InvalidTx(LedgerReason.BAD_WEIGHTS, "each row must be [32-byte account, weight]")
        weight = row[1]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_AMOUNT:
            raise InvalidTx(LedgerReason.BAD_WEIGHTS, "weights must be non-negative ints")
        if row[0] in out:
            raise InvalidTx(LedgerReason.BAD_WEIGHTS, "duplicate account in weights")
        out[row[0]] = weight
    return out


def _record(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    if body["kind"] == WEIGHTS_RECORD:
        authority = draft.base.genesis.weights_authority
        if authority is None or env.sender != authority:
            raise InvalidTx(LedgerReason.NOT_AUTHORISED, "only the network's weights_authority may set weights")
        weights = parse_weights(body["data"])
        unknown = [a.hex()[:16] for a in weights if a not in draft.validators and weights[a] > 0]
        if unknown and draft.base.genesis.consensus in ("pos", "lottery"):
            raise InvalidTx(LedgerReason.UNKNOWN_VALIDATOR, f"accounts without a BLS key: {unknown}")
        draft.weights = {a: w for a, w in weights.items() if w > 0}
    draft.records_root = hashlib.sha256(RECORDS_DOMAIN + draft.records_root + env.digest).digest()
    draft.records_count += 1


def _model_commit(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    draft.models.append(
        ModelCommit(
            miner=env.sender,
            hash=body["hash"],
            size=body["size"],
            pointer=body["pointer"],
            loss=float(body["loss"]),
            market=env.market,
            round=env.round,
        )
    )


def _evidence(draft: Draft, env: Envelope, body: dict[str, Any]) -> None:
    proposer, height = check_evidence(body["a"], body["b"], draft.base.network_id)
    key = (proposer, height)
    if key in draft.base.evidence or key in draft.new_evidence:
        raise InvalidTx(LedgerReason.DUPLICATE_EVIDENCE, f"proposer already punished for height {height}")
    ppm = draft.base.genesis.slash_ppm
    stake = draft.stake(proposer)
    burn = stake * ppm // PPM
    draft.stakes.set(proposer, stake - burn)
    draft.burned += burn + draft.slash_unbonding(proposer, ppm)  # unstaking does not escape the evidence
    if proposer not in draft.slashed:
        draft.slashed.set(proposer, draft.height)
    draft.new_evidence.add(key)


HANDLERS: dict[str, Callable[[Draft, Envelope, dict[str, Any]], None]] = {
    "transfer": _transfer,
    "escrow_lock": _escrow_lock,
    "escrow_release": _escrow_release,
    "escrow_refund": _escrow_refund,
    "escrow_settle": _escrow_settle,
    "escrow_split": _escrow_split,
    "escrow_take": _escrow_take,
    "stake": _stake,
    "unstake": _unstake,
    "record": _record,
    "model_commit": _model_commit,
    "evidence": _evidence,
}


def check_tx(state: State, env: Envelope) -> None:
    """Stateful check of one transaction against ``state``, as the next block would apply it (the mempool's
    check; ``state`` is unchanged). The envelope must already be opened (``decode_tx``).

    Raises:
        InvalidTx: with the reject reason (``bad-nonce``, ``insufficient-funds``, ...).
    """
    apply_tx(Draft(state, state.height + 1), env)


def apply_tx(draft: Draft, env: Envelope) -> None:
    """Check ``env`` against ``draft`` and apply it; on :class:`InvalidTx` the draft is unchanged.

    Args:
        draft: the block under construction.
        env: an opened, schema-checked transaction (``decode_tx``).

    Raises:
        InvalidTx: the reject reason.
    """
    kind = KIND_OF_TYPE.get(env.type)
    if kind is None:
        try:
            kind = tx_kind(env)  # raises, naming the type
        except SchemaError as err:
            raise InvalidTx(LedgerReason.UNKNOWN_TYPE, str(err)) from err
    body = env.body
    if kind not in NONCELESS:
        expected = int(draft.nonces.get(env.sender, 0)) + 1
        if body.get("nonce") != expected or env.seq != expected:
            raise InvalidTx(LedgerReason.BAD_NONCE, f"nonce {body.get('nonce')} (seq {env.seq}), expected {expected}")
    try:
        HANDLERS[kind](draft, env, body)
    except InvalidBlock as err:  # evidence decoding reports header problems as InvalidBlock
        raise InvalidTx(LedgerReason.BAD_EVIDENCE, f"{err.reason}: {err.detail}") from err
    if kind not in NONCELESS:
        draft.nonces.set(env.sender, expected)
