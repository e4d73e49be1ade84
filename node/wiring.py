"""Wire a role app into its node: handlers, middleware, block hooks and background work (MARKETS.md).

The middleware runs once for every market, in this order: signature, schema and replay (the router, before
any handler), then for market messages: the sender is in the address book (``unknown-sender``), its role
may send this type (``not-authorised``), and for direct requests the signer is the stream's peer
(``wrong-sender``). Every refusal is logged with its reason and counted in ``GET /status``'s ``rejected``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from bazaar.ledger.block import Block
from bazaar.ledger.state import State
from bazaar.protocol import Envelope, ProtocolError
from bazaar.protocol.chainmsg import market_protocol
from bazaar.protocol.errors import BazaarError
from bazaar.protocol.transport import RejectRequest

from .chain.hooks import BlockHooks, batch_verdict
from .markets.app import Declared, Role, RoleApp
from .markets.spec import MarketSpec

if TYPE_CHECKING:
    from .runtime import Node


def load_app(ref: str) -> RoleApp:
    """Import ``"module:attribute"`` and check it is a :class:`RoleApp`."""
    module_name, _, attr = ref.partition(":")
    app = getattr(importlib.import_module(module_name), attr)
    if not isinstance(app, RoleApp):
        raise TypeError(f"{ref} is not a RoleApp")
    return app


def _authorise(node: Node, env: Envelope, declared: Declared) -> None:
    role = node.role_of(env.sender)
    if role is None:
        raise ProtocolError("sender is not in the address book", reason="unknown-sender")
    if declared.from_roles is not None and role not in declared.from_roles:
        raise ProtocolError(f"a {role} may not send {env.type}", reason="not-authorised")
    if env.market != node.market:
        raise ProtocolError(f"message of market {env.market!r}", reason="wrong-market")


def _gossip_handler(node: Node, declared: Declared, fn: Callable[[Envelope], Awaitable[None]],
                    ) -> Callable[[Envelope], Awaitable[None]]:
    async def handle(env: Envelope) -> None:
        _authorise(node, env, declared)
        if declared.slow:
            node.spawn(f"{env.type}", _guarded, node, fn, env)
        else:
            await fn(env)

    return handle


async def _guarded(node: Node, fn: Callable[[Envelope], Awaitable[None]], env: Envelope) -> None:
    try:
        await fn(env)
    except BazaarError as err:  # coded: a protocol, ledger or node refusal
        node.router.refuse(err.reason, err.detail, type=env.type, sender=env.sender)
    except trio.Cancelled:
        raise
    except Exception as err:  # a slow handler's bug: logged and counted like the router does for fast ones
        node.router.refuse("handler-error", repr(err)[:300], type=env.type, sender=env.sender)


def _request_server(node: Node, app: RoleApp, role: Role) -> Callable[[bytes, bytes], Awaitable[bytes]]:
    table = {h.declared.mtype: (h.declared, getattr(role, h.name)) for h in app.of_kind("request")}

    async def serve(peer: bytes, data: bytes) -> bytes:
        try:
            env = node.router.verify(data)
            if env.sender != peer:
                raise ProtocolError("request signed by another key than the stream's peer", reason="wrong-sender")
            if env.type not in table:
                raise ProtocolError(f"{node.role} serves no {env.type}", reason="unexpected-type")
            declared, fn = table[env.type]
            _authorise(node, env, declared)
            body = await fn(env)
        except BazaarError as err:  # coded: a protocol, ledger or node refusal
            node.router.refuse(err.reason, err.detail, peer=peer)
            raise RejectRequest(err.reason) from err
        except trio.Cancelled:
            raise
        except Exception as err:  # our handler's bug: answered and counted, never a crash
            node.router.refuse("handler-error", repr(err)[:300], peer=peer)
            raise RejectRequest("handler-error") from err
        node.router.accepted += 1
        return node.seal(declared.reply, body, round=env.round).wire

    return serve


def _own_only(node: Node, contract: Callable[[State, Block], None]) -> Callable[[State, Block], None]:
    """A ``@block_check(own_proposals=True)``: run on the blocks this node proposes, skipped on the others."""
    me = node.key.public

    def check(parent: State, block: Block) -> None:
        if block.header.proposer == me:
            contract(parent, block)

    return check


def wire_role(node: Node, spec: MarketSpec, ref: str) -> Role:
    """Instantiate the node's role app and plug every declared handler into the node."""
    app = load_app(ref)
    if app.role != node.role:
        raise TypeError(f"{ref} is the app of role {app.role!r}, not {node.role!r}")
    role = app.create(node)
    for h in app.of_kind("gossip"):
        audience = spec.audience(h.declared.mtype)
        if audience and node.role not in audience:
            raise TypeError(f"{ref} handles {h.declared.mtype}, which {spec.name} gossips only among "
                            f"{', '.join(audience)} (MarketSpec.gossip_among)")
        node.router.on(h.declared.mtype, _gossip_handler(node, h.declared, getattr(role, h.name)))
    if app.of_kind("request"):
        node.set_protocol(market_protocol(spec.name), _request_server(node, app, role))
    checks = [_own_only(node, getattr(role, h.name)) if h.declared.own_proposals else getattr(role, h.name)
              for h in app.of_kind("block_check")]
    prepares = [getattr(role, h.name) for h in app.of_kind("block_prepare")]
    observers = [getattr(role, h.name) for h in app.of_kind("on_block")]
    proposers = [getattr(role, h.name) for h in app.of_kind("block_propose")]
    admits = [getattr(role, h.name) for h in app.of_kind("tx_admit")]
    completes = [getattr(role, h.name) for h in app.of_kind("batch_complete")]
    if checks or observers or prepares or proposers or admits or completes:

        def check(parent: State, block: Block) -> None:
            for fn in checks:
                fn(parent, block)

        def imported(block: Block) -> None:
            for fn in observers:
                fn(block)

        async def prepare(block: Block) -> None:
            for fn in prepares:
                await fn(block)

        def propose(parent: State, txs: Sequence[Envelope]) -> list[tuple[str, dict[str, Any]]]:
            return [tx for fn in proposers for tx in fn(parent, txs)]

        def admit(state: State, env: Envelope) -> None:
            for fn in admits:
                fn(state, env)

        def complete(state: State) -> bool | None:
            return batch_verdict(fn(state) for fn in completes)

        node.chain.hooks.append(BlockHooks(prepare=prepare if prepares else None, check=check if checks else None,
                                           imported=imported if observers else None,
                                           propose=propose if proposers else None, admit=admit if admits else None,
                                           complete=complete if completes else None))
    for h in app.of_kind("lifespan"):
        node.spawn(f"{node.role}.{h.name}", getattr(role, h.name))
    return role

