"""Roles as apps (MARKETS.md, STYLE §2): a role is a class whose methods are declared handlers.

    class Mesp(Role):
        @serve(MSG_BID, reply=MSG_BID_ACK, from_roles=("miner",))
        async def on_bid(self, env: Envelope) -> dict[str, Any]: ...

        @on(MSG_UPPER_RESULT, from_roles=("ccsp",))
        async def on_result(self, env: Envelope) -> None: ...

        @block_check
        def settlement_matches(self, parent: State, block: Block) -> None: ...

    APP = RoleApp("mesp", Mesp)

The runtime does the wiring and the middleware once for every market: signature, schema, replay,
``sender == stream peer`` for direct requests, sender known and of an authorised role, coded rejects that are
logged and counted. A handler raises :class:`~.context.Refuse` to refuse with a reason.

* ``@on(mtype, from_roles=..., slow=False)`` — a gossip handler; ``slow`` handlers run in their own task so a
  slow one never stalls the topic.
* ``@serve(mtype, reply=..., from_roles=...)`` — a direct request; returns the body of the signed reply.
* ``@block_check`` — ``check(parent_state, block)``: a market contract every validator re-executes when it
  imports a block; raise ``InvalidBlock`` to refuse the block. ``@block_check(own_proposals=True)``: a role that
  does not attest runs it live only on the blocks it proposes itself (the validators' certificate vouches for
  the others, docs/adr/0179); ``bazaar chain audit`` runs it on every stored block all the same.
* ``@block_prepare`` — ``async prepare(block)`` before the checks of a block received from a peer (fetch what
  the contract needs, e.g. content-addressed weights).
* ``@block_propose`` — ``propose(parent_state, txs) -> [(kind, body), ...]``: the transactions the market
  contract makes this node write into the block it proposes on ``parent_state``, after the block's other
  transactions ``txs`` (decoded, in block order; the contract may act on them in the same block, docs/adr/0186),
  signed by the proposer, for the market's contract escrows; every validator's ``@block_check`` re-derives them.
  Pure: also asked, with no ``txs``, whether there is contract work to propose at all.
* ``@tx_admit`` — ``admit(state, env)``: the market's rules for one of its transactions against the head (raise
  ``Refuse``): the mempool refuses what fails (logged with the reason) and a proposer never builds on it.
* ``@batch_complete`` — ``complete(state) -> bool | None``: True — the mempool holds everything the market's
  next block is waiting for (e.g. every task a window names), so a ``pos``/``lottery`` proposer seals now
  instead of waiting out its quiet window; False — some of it is known to be still on its way, so the proposer
  holds on past a quiet mempool (at most its batch wait, 1 s); None — nothing awaited (docs/adr/0185). Pure and
  cheap: asked on every mempool change while a block is wanted.
* ``@on_block`` — ``observe(block)`` after every import.
* ``@lifespan`` — ``async run()``: background work for the node's lifetime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..rounds.work import WorkLog
from .context import RoleContext

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "_bazaar_role_handler"


@dataclass(frozen=True)
class Declared:
    """How one method is wired."""

    kind: str
    mtype: str = ""
    reply: str = ""
    from_roles: tuple[str, ...] | None = None
    slow: bool = False
    own_proposals: bool = False
    """A ``block_check`` run live only on the node's own proposals."""


def _mark(fn: F, declared: Declared) -> F:
    setattr(fn, _MARK, declared)
    return fn


def on(mtype: str, *, from_roles: tuple[str, ...] | None = None, slow: bool = False) -> Callable[[F], F]:
    """Declare a gossip handler ``async handler(self, env)`` for message type ``mtype``."""
    return lambda fn: _mark(fn, Declared("gossip", mtype, "", from_roles, slow))


def serve(mtype: str, *, reply: str, from_roles: tuple[str, ...] | None = None) -> Callable[[F], F]:
    """Declare a direct-request handler ``async handler(self, env) -> reply body``."""
    return lambda fn: _mark(fn, Declared("request", mtype, reply, from_roles))


def block_check(fn: F | None = None, *, own_proposals: bool = False) -> Any:
    """Declare a market contract ``check(self, parent_state, block)`` re-executed on every import; with
    ``own_proposals=True`` only on the blocks this node proposes (offline audits still run it on every block)."""
    def mark(f: F) -> F:
        return _mark(f, Declared("block_check", own_proposals=own_proposals))

    return mark(fn) if fn is not None else mark


def block_prepare(fn: F) -> F:
    """Declare ``async prepare(self, block)``, awaited before the block checks of a received block."""
    return _mark(fn, Declared("block_prepare"))


def block_propose(fn: F) -> F:
    """Declare ``propose(self, parent_state) -> list[(kind, body)]``: the contract's own transactions for a block
    this node proposes (pure; the chain signs them)."""
    return _mark(fn, Declared("block_propose"))


def tx_admit(fn: F) -> F:
    """Declare ``admit(self, state, env)``: refuse (``Refuse``) a transaction of this market the head cannot take."""
    return _mark(fn, Declared("tx_admit"))


def batch_complete(fn: F) -> F:
    """Declare ``complete(self, state) -> bool | None``: whether the mempool holds the whole batch the next block
    waits for (None: no batch awaited)."""
    return _mark(fn, Declared("batch_complete"))


def on_block(fn: F) -> F:
    """Declare an observer ``observe(self, block)`` called after every import."""
    return _mark(fn, Declared("on_block"))


def lifespan(fn: F) -> F:
    """Declare ``async run(self)``: background work owned by the node's nursery."""
    return _mark(fn, Declared("lifespan"))


class Role:
    """Base class of role implementations: holds the :class:`RoleContext`."""

    def __init__(self, ctx: RoleContext) -> None:
        self.ctx = ctx
        self.work = WorkLog()
        """Seconds of this node's own work (training, solving) per round (``GET /status`` ``work_s``)."""
        self.deadline_waits = WorkLog()
        """Per round, the longest this node waited out a deadline the contract sets for a participant that did
        not answer in time (e.g. an SLA's latency bound; ``GET /status`` ``deadline_wait_s``, docs/adr/0184)."""

    def status(self) -> dict[str, Any]:
        """Role fields for ``GET /status``."""
        return {}


@dataclass(frozen=True)
class Handler:
    """A declared method bound to its declaration."""

    name: str
    declared: Declared


class RoleApp:
    """A role's class and its declared handlers, collected once."""

    def __init__(self, role: str, cls: type[Role]) -> None:
        self.role = role
        self.cls = cls
        self.handlers: list[Handler] = []
        seen: set[tuple[str, str]] = set()
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                declared = getattr(value, _MARK, None)
                if isinstance(declared, Declared):
                    self.handlers = [h for h in self.handlers if h.name != name]
                    self.handlers.append(Handler(name, declared))
        for h in self.handlers:
            if h.declared.kind in ("gossip", "request"):
                key = (h.declared.kind, h.declared.mtype)
                if key in seen:
                    raise ValueError(f"role {role}: two handlers for {h.declared.kind} {h.declared.mtype}")
                seen.add(key)

    def of_kind(self, kind: str) -> list[Handler]:
        """The handlers of one kind (``gossip``, ``request``, ``block_check``, ``block_prepare``,
        ``block_propose``, ``tx_admit``, ``batch_complete``, ``on_block``, ``lifespan``)."""
        return [h for h in self.handlers if h.declared.kind == kind]

    def create(self, ctx: RoleContext) -> Role:
        """Instantiate the role for one node."""
        return self.cls(ctx)
