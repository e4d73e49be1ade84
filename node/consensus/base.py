"""What a consensus driver may use of its node, and the driver interface."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bazaar.protocol import KeyPair
from bazaar.protocol.transport import Transport

from ..chain.hooks import BlockHooks
from ..chain.service import ChainService
from ..config import NodeConfig


class DriverHost(Protocol):
    """The node as a consensus driver sees it."""

    @property
    def key(self) -> KeyPair:
        """The node's key (its account)."""
        ...

    @property
    def bls_secret(self) -> Any:
        """Its BLS secret (attestations, RANDAO reveals)."""
        ...

    @property
    def config(self) -> NodeConfig:
        """The node's configuration (its ``byzantine`` behaviours, for a testnet's misbehaving node)."""
        ...

    @property
    def network_id(self) -> str:
        """The network id."""
        ...

    @property
    def chain(self) -> ChainService:
        """The chain service."""
        ...

    @property
    def byzantine(self) -> frozenset[str]:
        """The Byzantine behaviours the node was started with (``node/byzantine``; empty when honest)."""
        ...

    @property
    def transport(self) -> Transport:
        """The transport (model weights are fetched over direct streams)."""
        ...

    def gossip_formed(self) -> bool:
        """Whether the node's part of the gossip overlay has formed (its kept peers connected and registered, a
        mesh on every topic it shares with others); True on a transport without one."""
        ...

    def deadline(self, name: str) -> float:
        """A named scenario deadline in seconds."""
        ...

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU work off the event loop."""
        ...


class ConsensusDriver(Protocol):
    """A proposer rule as the node runs it."""

    rule: str
    hooks: BlockHooks

    async def run(self) -> None:
        """Background work for the node's lifetime (may return at once)."""
        ...

    def status(self) -> dict[str, Any]:
        """Fields for ``GET /status``."""
        ...
