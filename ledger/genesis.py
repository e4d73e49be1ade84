"""The genesis description of a network: initial balances, stakes, validators and the consensus rule."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bazaar.protocol import codec
from bazaar.protocol.keys import KeyPair

from . import bls
from .amounts import MAX_AMOUNT

RULES = ("pol", "pos", "lottery")
GENESIS_DOMAIN = b"bazaar/genesis/v1\x00"
PPM = 1_000_000
DEFAULT_UNBONDING_BLOCKS = 20
"""Blocks an unstaked amount stays slashable before it returns to the balance, when genesis does not say."""
MAX_UNBONDING_BLOCKS = 1_000_000


def _hex_or_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError as err:
            raise ValueError(f"{what}: not hex: {value[:40]!r}") from err
    raise ValueError(f"{what}: expected bytes or hex string, got {type(value).__name__}")


@dataclass(frozen=True)
class Genesis:
    """Everything block 1 builds on.

    Attributes:
        network_id: the network's name; part of every signature domain.
        timestamp_ms: genesis time (block timestamps never go below it).
        consensus: proposer rule, ``"pol"``, ``"pos"`` or ``"lottery"``.
        balances: account -> micro-tokens.
        stakes: account -> staked micro-tokens (each must be in ``validators``).
        validators: account -> 48-byte BLS public key.
        block_reward: micro-tokens minted to each block's proposer.
        reward_per_tx: extra micro-tokens minted per transaction in the block.
        slash_fraction: share of an equivocating proposer's stake that is burned.
        params: free network parameters; the ledger reads ``"weights_authority"`` (hex account allowed to set
            the validator weight map with a ``weights`` record) and ``"unbonding_blocks"`` (blocks an unstaked
            amount stays slashable before it is released; default :data:`DEFAULT_UNBONDING_BLOCKS`, so genesis
            files written before it keep their meaning and their hash).
    """

    network_id: str
    timestamp_ms: int
    consensus: str
    balances: Mapping[bytes, int]
    stakes: Mapping[bytes, int]
    validators: Mapping[bytes, bytes]
    block_reward: int
    reward_per_tx: int
    slash_fraction: float = 0.5
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.network_id, str) or not 0 < len(self.network_id.encode()) <= 64:
            raise ValueError("network_id must be a non-empty string of at most 64 bytes")
        if "\x00" in self.network_id:
            raise ValueError("network_id must not contain NUL")
        if self.consensus not in RULES:
            raise ValueError(f"consensus must be one of {RULES}, got {self.consensus!r}")
        for name in ("timestamp_ms", "block_reward", "reward_per_tx"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
                raise ValueError(f"{name} must be a non-negative int")
        if not (isinstance(self.slash_fraction, (int, float)) and math.isfinite(self.slash_fraction)):
            raise ValueError("slash_fraction must be a finite number")
        if not 0.0 <= self.slash_fraction <= 1.0:
            raise ValueError("slash_fraction must lie in [0, 1]")
        for table, what in ((self.balances, "balances"), (self.stakes, "stakes")):
            for acct, amount in table.items():
                if not isinstance(acct, bytes) or len(acct) != 32:
                    raise ValueError(f"{what}: accounts must be 32 bytes")
                if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
                    raise ValueError(f"{what}: amount of {acct.hex()[:16]} must be a non-negative int")
        for acct, pk in self.validators.items():
            if not isinstance(acct, bytes) or len(acct) != 32:
                raise ValueError("validators: accounts must be 32 bytes")
            if not isinstance(pk, bytes) or len(pk) != bls.PUBKEY_LEN:
                raise ValueError(f"validators: BLS key of {acct.hex()[:16]} must be 48 bytes")
        missing = [a.hex()[:16] for a in self.stakes if a not in self.validators]
        if missing:
            raise ValueError(f"stakes without a validator BLS key: {missing}")
        authority = self.params.get("weights_authority")
        if authority is not None and len(_hex_or_bytes(authority, "weights_authority")) != 32:
            raise ValueError("params.weights_authority must be a 32-byte account (hex)")
        unbonding = self.params.get("unbonding_blocks", DEFAULT_UNBONDING_BLOCKS)
        if isinstance(unbonding, bool) or not isinstance(unbonding, int) \
                or not 0 <= unbonding <= MAX_UNBONDING_BLOCKS:
            raise ValueError(f"params.unbonding_blocks must be an int in [0, {MAX_UNBONDING_BLOCKS}]")
        object.__setattr__(self, "balances", dict(self.balances))
        object.__setattr__(self, "stakes", dict(self.stakes))
        object.__setattr__(self, "validators", dict(self.validators))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def slash_ppm(self) -> int:
        """The slash fraction in parts per million (integer arithmetic on chain)."""
        return round(self.slash_fraction * PPM)

    @property
    def supply(self) -> int:
        """Total micro-tokens at genesis (balances + stakes)."""
        return sum(self.balances.values()) + sum(self.stakes.values())

    @property
    def unbonding_blocks(self) -> int:
        """Blocks between an ``unstake`` and the release of its amount to the balance (0: released in the same
        block's end)."""
        return int(self.params.get("unbonding_blocks", DEFAULT_UNBONDING_BLOCKS))

    @property
    def weights_authority(self) -> bytes | None:
        """The account allowed to publish ``weights`` records, if any."""
        value = self.params.get("weights_authority")
        return None if value is None else _hex_or_bytes(value, "weights_authority")

    def to_dict(self, *, json: bool = False) -> dict[str, Any]:
        """A msgpack-able dict (bytes as bytes), or a JSON-able one with ``json=True`` (bytes as hex)."""

        def b(x: bytes) -> bytes | str:
            return x.hex() if json else x

        return {
            "network_id": self.network_id,
            "timestamp_ms": self.timestamp_ms,
            "consensus": self.consensus,
            "balances": {b(k): v for k, v in sorted(self.balances.items())},
            "stakes": {b(k): v for k, v in sorted(self.stakes.items())},
            "validators": {b(k): b(v) for k, v in sorted(self.validators.items())},
            "block_reward": self.block_reward,
            "reward_per_tx": self.reward_per_tx,
            "slash_fraction": float(self.slash_fraction),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genesis:
        """Inverse of :meth:`to_dict` (either form).

        Raises:
            ValueError: a missing or malformed field.
        """
        try:
            return cls(
                network_id=data["network_id"],
                timestamp_ms=data["timestamp_ms"],
                consensus=data["consensus"],
                balances={_hex_or_bytes(k, "balances"): v for k, v in data["balances"].items()},
                stakes={_hex_or_bytes(k, "stakes"): v for k, v in data["stakes"].items()},
                validators={
                    _hex_or_bytes(k, "validators"): _hex_or_bytes(v, "validators")
                    for k, v in data["validators"].items()
                },
                block_reward=data["block_reward"],
                reward_per_tx=data["reward_per_tx"],
                slash_fraction=data.get("slash_fraction", 0.5),
                params=data.get("params", {}),
            )
        except (KeyError, AttributeError, TypeError) as err:
            raise ValueError(f"malformed genesis: {err!r}") from err

    def encode(self) -> bytes:
        """Canonical msgpack of :meth:`to_dict`."""
        return codec.encode(self.to_dict())

    def hash(self) -> bytes:
        """The genesis hash: the parent of block 1 and part of every state root."""
        return hashlib.sha256(GENESIS_DOMAIN + self.encode()).digest()


def make_genesis(
    network_id: str,
    consensus: str = "pos",
    *,
    balances: Mapping[bytes, int] | None = None,
    validator_keys: Iterable[KeyPair] = (),
    stake: int = 0,
    bls_keys: Iterable[KeyPair] = (),
    block_reward: int = 0,
    reward_per_tx: int = 0,
    timestamp_ms: int = 0,
    slash_fraction: float = 0.5,
    params: Mapping[str, Any] | None = None,
    unbonding_blocks: int | None = None,
) -> Genesis:
    """Convenience constructor: validators given by their Ed25519 keys, BLS keys derived with ``bls_keygen``.

    Args:
        network_id: the network's name.
        consensus: ``"pol"``, ``"pos"`` or ``"lottery"``.
        balances: initial free balances.
        validator_keys: key pairs of the genesis validators; each gets ``stake`` staked micro-tokens.
        stake: genesis stake per validator.
        bls_keys: further accounts whose BLS keys are registered without stake (e.g. ``lottery`` proposers
            that do not validate).
        block_reward: minted per block.
        reward_per_tx: minted per transaction.
        timestamp_ms: genesis time.
        slash_fraction: share of stake burned on equivocation.
        params: network parameters (see :class:`Genesis`).
        unbonding_blocks: sets ``params["unbonding_blocks"]`` (None: leave the default).

    Returns:
        The genesis.
    """
    validators: dict[bytes, bytes] = {}
    stakes: dict[bytes, int] = {}
    for key in validator_keys:
        validators[key.public] = bls.sk_to_pk(bls.bls_keygen(key.seed))
        if stake:
            stakes[key.public] = stake
    for key in bls_keys:
        validators.setdefault(key.public, bls.sk_to_pk(bls.bls_keygen(key.seed)))
    return Genesis(
        network_id=network_id,
        timestamp_ms=timestamp_ms,
        consensus=consensus,
        balances=dict(balances or {}),
        stakes=stakes,
        validators=validators,
        block_reward=block_reward,
        reward_per_tx=reward_per_tx,
        slash_fraction=slash_fraction,
        params={**(params or {}), **({} if unbonding_blocks is None else {"unbonding_blocks": unbonding_blocks})},
    )
