"""Fuzz targets inside running nodes: every node of a market's small scenario on the in-memory network, fed
structurally fuzzed messages of every registered type (signed by address-book keys, so they pass the
signature and sender checks and reach the role handlers) and byte mutations of valid envelopes, on gossip (the
router's middleware chain, then the handler) and on every direct-stream protocol a node serves (the market's
request handlers, chain sync, model and blob fetches).

The in-memory transport's handler table is the one the node registered; calling it directly runs exactly the
code a libp2p stream would run after framing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio
from hypothesis import strategies as st

from bazaar.node.runtime import Node
from bazaar.protocol import codec
from bazaar.protocol.chainmsg import market_protocol
from bazaar.protocol.envelope import now_ms, seal
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.messages import REGISTRY, registered_types

from .oracle import CODED, Tally, reason_of
from .strategies import Pool, msgpack_values, mutations, shaped

HANDLER_DEADLINE_S = 20.0
"""A handler that takes longer than this on one input is reported as a hang (a crash of its own kind)."""


@dataclass(frozen=True)
class NodeCase:
    """One input for a node: a recipe (type, body, signer, target, channel, header) or mutated bytes."""

    channel: str  # "gossip" | "request" | "raw"
    recipe: Any
    signer: int
    target: int
    how: str


@dataclass(frozen=True)
class Route:
    """A message type a role handles, the nodes that handle it and the nodes allowed to send it."""

    mtype: str
    channel: str  # "gossip" | "request"
    targets: tuple[int, ...]
    senders: tuple[int, ...]


def node_cases(pool: Pool, wires: Sequence[bytes], types: Sequence[str] | None = None,
               routes: Sequence[Route] = ()) -> st.SearchStrategy[NodeCase]:
    """Inputs for the nodes of one network: structural messages of ``types`` (default: every registered
    type) from any node to any node, messages aimed along ``routes`` (an authorised sender to a node whose role
    handles the type, so the role handler's own checks run), raw requests for the non-envelope protocols, and
    mutations of ``wires``."""
    names = sorted(types if types is not None else registered_types())

    @st.composite
    def aimed(draw: st.DrawFn) -> NodeCase:
        route = draw(st.sampled_from(list(routes)))
        body = draw(shaped(REGISTRY.schema(route.mtype), pool))
        header = {"round": draw(st.sampled_from(["current", "next", "current"])), "market": "ours",
                  "seq": "fresh", "ts": "now"}
        return NodeCase(route.channel, (route.mtype, body, header), draw(st.sampled_from(route.senders)),
                        draw(st.sampled_from(route.targets)), "aimed")

    @st.composite
    def structural(draw: st.DrawFn) -> NodeCase:
        mtype = draw(st.sampled_from(names))
        body = draw(shaped(REGISTRY.schema(mtype), pool))
        header = {
            "round": draw(st.one_of(st.just("current"), st.just("next"), st.integers(0, 2**63 - 1))),
            "market": draw(st.one_of(st.just("ours"), st.sampled_from(["", "ai-bazaar", "tbcim", "zz"]))),
            "seq": draw(st.one_of(st.just("fresh"), st.just("fresh"), st.just("fresh"), st.integers(0, 2**63 - 1))),
            "ts": draw(st.one_of(st.just("now"), st.just("now"), st.integers(0, 2**63 - 1))),
        }
        channel = draw(st.sampled_from(["gossip", "gossip", "request"]))
        return NodeCase(channel, (mtype, body, header), draw(st.integers(0, 63)), draw(st.integers(0, 63)),
                        "structural")

    @st.composite
    def raw_requests(draw: st.DrawFn) -> NodeCase:
        shaped = draw(st.one_of(
            st.fixed_dictionaries({"from": st.one_of(st.integers(-(2**63), 2**64 - 1), msgpack_values())},
                                  optional={"limit": st.one_of(st.integers(-(2**63), 2**64 - 1), msgpack_values())}),
            st.fixed_dictionaries({"hash": st.one_of(st.binary(min_size=32, max_size=32), msgpack_values())}),
            msgpack_values(),
        ))
        data = draw(st.one_of(st.just(codec.encode(shaped)), st.binary(max_size=64)))
        return NodeCase("raw", data, draw(st.integers(0, 63)), draw(st.integers(0, 63)), "raw")

    @st.composite
    def mutated(draw: st.DrawFn) -> NodeCase:
        data = draw(mutations(wires))
        return NodeCase(draw(st.sampled_from(["gossip", "request"])), data, draw(st.integers(0, 63)),
                        draw(st.integers(0, 63)), "mutation")

    parts = [structural(), structural(), raw_requests(), mutated()]
    if routes:
        parts += [aimed(), aimed(), aimed()]
    return st.one_of(parts)


class NodeTargets:
    """The nodes of one in-memory network and the way to feed them."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = [nodes[n] for n in sorted(nodes)]
        self.market = self.nodes[0].market
        self.routes = _routes(self.nodes)
        self.pool = Pool(keys=[n.key.public for n in self.nodes])
        self.wires = [self._sign(n, "chain/txs", {"txs": [b"x"]}, {}).wire for n in self.nodes[:4]]
        leader = self.leader
        if leader is not None:
            self.wires.append(self._sign(leader, "chain/attest", {"height": 1, "hash": bytes(32), "sig": bytes(96)},
                                         {}).wire)

    @property
    def leader(self) -> Node | None:
        """The node that drives rounds."""
        return next((n for n in self.nodes if n.engine is not None), None)

    def _round(self, mode: Any) -> int:
        leader = self.leader
        current = leader.engine.number if leader is not None and leader.engine is not None else 0
        return {"current": current, "next": current + 1}.get(str(mode), mode) if isinstance(mode, str) else mode

    def _sign(self, signer: Node, mtype: str, body: Any, header: dict[str, Any]) -> Any:
        seq = header.get("seq", "fresh")
        if seq == "fresh":
            signer._seq += 1
            seq = signer._seq
        market = header.get("market", "ours")
        ts = header.get("ts", "now")
        return seal(signer.key, signer.network_id, mtype, body, seq=seq,
                    market=self.market if market == "ours" else market,
                    round=self._round(header.get("round", "current")), ts=now_ms() if ts == "now" else ts)

    async def feed(self, case: NodeCase, tally: Tally) -> None:
        """Deliver one input to one node and count the outcome."""
        signer = self.nodes[case.signer % len(self.nodes)]
        target = self.nodes[case.target % len(self.nodes)]
        if target is signer:
            target = self.nodes[(case.target + 1) % len(self.nodes)]
        if case.how in ("structural", "aimed"):
            mtype, body, header = case.recipe
            try:
                data = self._sign(signer, mtype, body, header).wire
            except (TypeError, ValueError, OverflowError):  # our encoder cannot sign it: a peer cannot send it
                tally.skipped += 1
                return
        else:
            data = case.recipe
        if case.channel == "gossip":
            await self._gossip(target, data, tally)
        elif case.channel == "request":
            await self._request(target, market_protocol(self.market), signer.key.public, data, tally)
        else:
            handlers = getattr(target.transport, "_handlers", {})
            others = sorted(p for p in handlers if p != market_protocol(self.market))
            if others:
                protocol = others[case.signer % len(others)]
                await self._request(target, protocol, signer.key.public, data, tally)

    async def _gossip(self, target: Node, data: bytes, tally: Tally) -> None:
        name = "node.gossip"
        tally.tried[name] += 1
        router = target.router
        before = dict(router.rejected)
        errors_before = before.get("handler-error", 0)
        try:
            with trio.fail_after(HANDLER_DEADLINE_S):
                env = router.check(data, origin="fuzz")
                if env is not None and env.sender != router.local_key:
                    await router.dispatch(env)
        except trio.TooSlowError:
            tally.crash(name, f"hang: handler took over {HANDLER_DEADLINE_S} s", data[:64])
            return
        except Exception as err:
            tally.crash(name, err, data[:64])
            return
        if router.rejected.get("handler-error", 0) > errors_before:
            tally.crash(name, "handler-error (a handler raised an uncoded exception)", data[:64])
            return
        changed = [r for r, n in router.rejected.items() if n > before.get(r, 0)]
        if changed:
            tally.refuse(name, changed[0])
        else:
            tally.accepted[name] += 1

    async def _request(self, target: Node, protocol: str, peer: bytes, data: bytes, tally: Tally) -> None:
        handlers = getattr(target.transport, "_handlers", {})
        handler = handlers.get(protocol)
        name = "node.request" if protocol == market_protocol(self.market) else f"node.{protocol.strip('/')}"
        if handler is None:
            return
        tally.tried[name] += 1
        try:
            with trio.fail_after(HANDLER_DEADLINE_S):
                out = await handler(peer, data)
        except trio.TooSlowError:
            tally.crash(name, f"hang: handler took over {HANDLER_DEADLINE_S} s", data[:64])
            return
        except CODED as err:
            reason = reason_of(err) or "uncoded"
            if reason == "handler-error":
                tally.crash(name, err.__cause__ if err.__cause__ is not None else err, data[:64])
            else:
                tally.refuse(name, reason)
            return
        except Exception as err:
            tally.crash(name, err, data[:64])
            return
        if not isinstance(out, (bytes, bytearray)):
            tally.crash(name, f"handler returned {type(out).__name__}", data[:64])
            return
        tally.accepted[name] += 1


def _routes(nodes: Sequence[Node]) -> list[Route]:
    """Every (type, channel) some node's role handles, with its handlers and its authorised senders."""
    from bazaar.node.wiring import load_app

    table: dict[tuple[str, str], tuple[set[int], tuple[str, ...] | None]] = {}
    for i, node in enumerate(nodes):
        app = load_app(node.spec.role(node.role).app)
        for kind in ("gossip", "request"):
            for h in app.of_kind(kind):
                slot = table.setdefault((h.declared.mtype, kind), (set(), h.declared.from_roles))
                slot[0].add(i)
    out = []
    for (mtype, kind), (targets, from_roles) in sorted(table.items()):
        senders = tuple(i for i, n in enumerate(nodes) if from_roles is None or n.role in from_roles)
        senders = senders or tuple(range(len(nodes)))
        out.append(Route(mtype, kind, tuple(sorted(targets)), senders))
    return out


def keys_of(nodes: Sequence[Node]) -> list[KeyPair]:
    """The nodes' key pairs."""
    return [n.key for n in nodes]
