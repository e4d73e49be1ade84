"""What a role may use of its node: :class:`RoleContext` (a ``typing.Protocol``; the runtime's ``Node``
implements it, tests may fake it), the :class:`ChainView` it sees of the ledger, and the two error families a
role meets: :class:`Refuse` (raise it to refuse a peer's message with a coded reason) and
:class:`RequestFailed` (what :meth:`RoleContext.ask` raises).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bazaar.protocol import Envelope, KeyPair, ProtocolError
from bazaar.protocol.errors import BazaarError

if TYPE_CHECKING:
    from bazaar.ledger.block import Block
    from bazaar.ledger.state import State

    from ..config import PeerEntry
    from ..logs import Events
    from ..scenario import Scenario


class Refuse(ProtocolError):
    """A role refuses a peer's message or request: ``Refuse("bid-over-cap", "bid 9e9 > cap 1e6")``.

    The runtime logs and counts ``reason``; a refused direct request is answered with the reason.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail, reason=reason)


class RequestFailed(BazaarError):
    """A direct request got no usable answer.

    Attributes:
        reason: ``unavailable`` (peer unreachable), ``timeout``, ``refused`` (the peer refused; ``detail`` has
            its reason) or ``bad-answer`` (the answer did not verify).
    """


class ChainView(Protocol):
    """The ledger as a role sees it."""

    @property
    def height(self) -> int:
        """Height of the head."""
        ...

    @property
    def finalized_height(self) -> int:
        """Height of the last finalized block."""
        ...

    @property
    def synced(self) -> bool:
        """Whether we hold the certified head our peers report (a restarted node is not, until it synced)."""
        ...

    @property
    def state(self) -> State:
        """The state at the head."""
        ...

    def block(self, height: int) -> Block | None:
        """The block at ``height`` on our chain."""
        ...

    def sign_tx(self, kind: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        """Sign one of our own transactions (next nonce, our market, ``round``)."""
        ...

    def forget_nonce(self, nonce: int) -> None:
        """A transaction we signed will never be sent."""
        ...

    def add_tx(self, raw: bytes) -> Envelope | None:
        """Keep a verified transaction in the mempool (None when unusable)."""
        ...

    async def submit(self, raws: Sequence[bytes], *, seal: bool = False) -> None:
        """Keep transactions locally and gossip them in one batch (``seal``: the batch is complete, a ``pos`` or
        ``lottery`` proposer may seal its block at once, docs/adr/0155)."""
        ...

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once ``predicate()`` holds after some chain change (``trio.TooSlowError`` at the deadline)."""
        ...


class RoleContext(Protocol):
    """Everything a role app may use (MARKETS.md "RoleContext")."""

    @property
    def name(self) -> str:
        """This node's scenario name (``mesp-1``)."""
        ...

    @property
    def role(self) -> str:
        """This node's role."""
        ...

    @property
    def key(self) -> KeyPair:
        """Its Ed25519 key (its ledger account)."""
        ...

    @property
    def network_id(self) -> str:
        """The network id every signature is bound to."""
        ...

    @property
    def scenario(self) -> Scenario:
        """The checked scenario."""
        ...

    @property
    def settings(self) -> Any:
        """The market's checked ``[mechanism]`` settings (what ``MarketSpec.settings`` returned)."""
        ...

    @property
    def data_dir(self) -> Path:
        """The node's data directory."""
        ...

    @property
    def chain(self) -> ChainView:
        """The ledger."""
        ...

    @property
    def consensus(self) -> Any:
        """The consensus driver chosen by the genesis (``node/consensus``)."""
        ...

    @property
    def byzantine(self) -> frozenset[str]:
        """The Byzantine behaviours this node was started with (empty for an honest node; ``node/byzantine``);
        a role acts on those its market declares for it (a false claim, a poisoned update, a lying verdict)."""
        ...

    @property
    def events(self) -> Events:
        """The role's event log."""
        ...

    def deadline(self, name: str) -> float:
        """A named deadline of the scenario in seconds (``bid_s``, ``block_s``, ...)."""
        ...

    def peers(self, role: str | None = None) -> list[PeerEntry]:
        """Address-book entries (ourselves included), in scenario order, of one role or all."""
        ...

    def name_of(self, key: bytes) -> str:
        """A peer's scenario name (hex prefix when unknown)."""
        ...

    def role_of(self, key: bytes) -> str | None:
        """A peer's role, or None when it is not in the address book."""
        ...

    def connected(self) -> set[bytes]:
        """Keys of the peers we are connected to right now."""
        ...

    def now_ms(self) -> int:
        """The node's wall clock in Unix milliseconds, the one it stamps its envelopes with."""
        ...

    def seal(self, mtype: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        """Sign a message of ours."""
        ...

    async def publish(self, mtype: str, body: dict[str, Any], *, round: int) -> Envelope:
        """Gossip a market message on the market's topic (or its audience's: ``MarketSpec.gossip_among``)."""
        ...

    async def ask(self, peer: bytes, mtype: str, body: dict[str, Any], *, round: int,
                  timeout: float) -> Envelope:
        """Send a signed direct request; returns the peer's verified, schema-checked answer.

        Raises:
            RequestFailed: no usable answer.
        """
        ...

    async def ask_envelope(self, peer: bytes, request: Envelope, *, timeout: float) -> Envelope:
        """Like :meth:`ask` for a message already sealed (one signed bid sent to several peers).

        Raises:
            RequestFailed: no usable answer.
        """
        ...

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a solver off the event loop (a thread with the node's limiter)."""
        ...

    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a background task in the node's nursery; its failure is logged, never fatal."""
        ...

    def load_state(self, name: str) -> Any:
        """A JSON document the role saved in its data dir (None when absent or unreadable)."""
        ...

    def save_state(self, name: str, value: Any) -> None:
        """Atomically save a JSON document in the data dir."""
        ...

    def set_protocol(self, protocol: str, handler: Callable[[bytes, bytes], Awaitable[bytes]]) -> None:
        """Serve a raw direct-stream protocol (content-addressed blobs such as model weights)."""
        ...

    async def request_raw(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """A raw direct-stream request (raises ``RequestFailed``)."""
        ...
