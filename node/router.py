"""Roles as apps (STYLE §2): one handler per message type; checks are middleware, not preambles.

Every gossip delivery passes: size cap -> envelope signature (over the received bytes) -> ``validate_basic``
(schema) -> network/market/round filter -> replay guard -> handler. A failure at any stage drops the message
with a logged, counted reason; a handler's own exception is logged and never reaches the transport.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import trio

from bazaar.protocol import Envelope, ProtocolError, open_envelope
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.errors import BazaarError, ProtocolReason
from bazaar.protocol.messages import validate_basic
from bazaar.protocol.replay import ReplayGuard
from bazaar.protocol.transport import MAX_GOSSIP, Delivery
from bazaar.protocol.verified import open_checked

from .logs import Events
from .notify import Changes

MessageHandler = Callable[[Envelope], Awaitable[None]]
Tap = Callable[[Delivery, Envelope], None]

_events = Events("router")


class Router:
    """Dispatches verified envelopes to the handler registered for their type."""

    def __init__(self, network_id: str, *, local_key: bytes, max_skew_ms: int = 60_000,
                 clock: Callable[[], int] = now_ms) -> None:
        self.network_id = network_id
        self.clock = clock
        """The node's wall clock in milliseconds (the replay guard's skew check)."""
        self.local_key = local_key
        self.handlers: dict[str, MessageHandler] = {}
        self.replay = ReplayGuard(max_skew_ms=max_skew_ms)
        self.rejected: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        """Verified envelopes by message type (gossip and direct requests; ``/metrics``)."""
        self.accepted = 0
        self.ignored = 0
        self.changes = Changes()
        self.taps: list[Tap] = []
        """Observers of every verified gossip envelope from a peer (a Byzantine ``replay-flood`` node keeps them)."""

    def on(self, mtype: str, handler: MessageHandler) -> None:
        """Register ``handler`` for envelopes of type ``mtype`` (one handler per type)."""
        if mtype in self.handlers:
            raise ValueError(f"handler for {mtype} already registered")
        self.handlers[mtype] = handler

    def verify(self, data: bytes) -> Envelope:
        """Signature, schema and replay checks for a direct request (no handler lookup).

        Raises:
            ProtocolError: the reason to refuse it.
        """
        # remembered as checked (protocol/verified.py): a direct request is often a message the role then opens
        # again from its bytes (a hierarchical bid or offer, docs/adr/0177), which now skips its second Ed25519 check
        env = open_checked(data, self.network_id)
        self.replay.check(env, self.clock())
        self.received[env.type] += 1
        return env

    def refuse(self, reason: str, detail: str = "", **fields: object) -> None:
        """Count and log one refused message (the runtime's middleware and the roles' ``Refuse``)."""
        self.rejected[reason] += 1
        self.changes.notify()
        _events.warning("msg.rejected", reason=reason, detail=detail[:200], **fields)

    def check(self, data: bytes, origin: str, delivery: Delivery | None = None) -> Envelope | None:
        """Run the middleware chain; returns the envelope, or None after logging why it was dropped.

        A gossip frame past ``MAX_GOSSIP`` is refused as ``oversize`` before anything is decoded: our transports
        never carry one, but a peer running other software may publish up to its pubsub's own limit.
        """
        if len(data) > MAX_GOSSIP:
            self.refuse(ProtocolReason.OVERSIZE, f"gossip frame of {len(data)} bytes > {MAX_GOSSIP}", origin=origin)
            return None
        try:
            env = open_envelope(data, self.network_id)
            validate_basic(env)
            self.replay.check(env, self.clock())
        except ProtocolError as err:
            self.refuse(err.reason, err.detail, origin=origin)
            return None
        self.received[env.type] += 1
        if delivery is not None and env.sender != self.local_key:
            for tap in self.taps:
                tap(delivery, env)
        if env.type not in self.handlers:
            self.ignored += 1  # a valid message for other roles (gossip reaches everyone): not an offence
            return None
        return env

    async def dispatch(self, env: Envelope) -> None:
        """Run the handler for an already-checked envelope; its failures are logged, not raised: a coded
        refusal (any :class:`~bazaar.protocol.errors.BazaarError`, a ledger refusal included) is counted by its
        reason, anything else as ``handler-error``."""
        try:
            await self.handlers[env.type](env)
            self.accepted += 1
        except trio.Cancelled:
            raise
        except BazaarError as err:  # a coded refusal (protocol, ledger or node reason), counted by its code
            self.refuse(err.reason, err.detail, type=env.type, sender=env.sender)
        except Exception as err:
            self.rejected["handler-error"] += 1
            _events.error("msg.handler_failed", type=env.type, sender=env.sender, error=repr(err)[:300])

    async def drain(self, channel: trio.MemoryReceiveChannel[Delivery]) -> None:
        """Consume one subscription channel for the node's lifetime."""
        async for delivery in channel:
            env = self.check(delivery.data, origin=delivery.forwarder.hex()[:16], delivery=delivery)
            if env is not None and env.sender != self.local_key:
                await self.dispatch(env)
