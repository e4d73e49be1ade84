"""``async with open_node(config) as node``: one participant's whole runtime (STYLE §7).

The node owns its key, its chain (SQLite store), its transport, the router that checks every message, the
chain service (mempool, import, attestations, finality, sync), the consensus driver the genesis names, the
role app of its market (from the registry), the round engine when its role leads, and a local HTTP
status/control endpoint. Every background task lives in the node's nursery; leaving the ``async with``
cancels them and closes the store.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bazaar.ledger.bls import bls_keygen
from bazaar.ledger.chain import Chain
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import SqliteStore
from bazaar.protocol import Envelope, KeyPair, ProtocolError, seal
from bazaar.protocol.chainmsg import chain_topic, market_protocol, market_topic
from bazaar.protocol.dial_set import DIAL_HUBS, sparse
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.errors import BazaarError
from bazaar.protocol.keys import load_or_create_seed
from bazaar.protocol.transport import PeerUnavailable, RemoteRejected, Transport
from bazaar.protocol.verified import open_checked

from . import explorer
from .byzantine import check_behaviours
from .byzantine import install as install_byzantine
from .chain.service import ChainService
from .chaintools import record_finalized, recorded_finalized
from .clock import Clock
from .config import NodeConfig, PeerEntry
from .consensus.base import ConsensusDriver
from .consensus.factory import make_driver
from .httpapi import TOKEN_FILE, HttpApi, HttpError, load_or_create_token
from .logs import Events
from .markets.app import Role
from .markets.context import RequestFailed
from .markets.registry import get_spec
from .markets.spec import MarketSpec
from .metrics import NodeMetrics
from .readiness import notify_ready
from .rounds.engine import RoundEngine, RoundPlan
from .router import Router
from .scenario import Scenario, load_scenario
from .spread import Spread, node_topics
from .wiring import wire_role

TransportFactory = Callable[[KeyPair, NodeConfig, list[str]], AbstractAsyncContextManager[Transport]]

_events = Events("node")


@dataclass
class Node:
    """A running participant; implements :class:`~.markets.context.RoleContext` for its role app."""

    config: NodeConfig
    key: KeyPair
    scenario: Scenario
    spec: MarketSpec
    settings: Any
    genesis: Genesis
    transport: Transport
    router: Router
    chain: ChainService
    http: HttpApi
    data_dir: Path
    bls_secret: Any
    nursery: trio.Nursery
    limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(1))
    started: float = field(default_factory=time.time)
    http_port: int = 0
    consensus: Any = None
    app: Role | None = None
    engine: RoundEngine | None = None
    stop: trio.Event = field(default_factory=trio.Event)
    events: Events = field(default_factory=lambda: Events("role"))
    clock: Clock = field(default_factory=Clock)
    _seq: int = field(default_factory=lambda: now_ms() * 1000)
    _book: dict[bytes, PeerEntry] = field(default_factory=dict)
    byzantine: frozenset[str] = frozenset()
    """The misbehaviours this node was started with (checked against its market's declaration; node/byzantine)."""
    sent: Counter[str] = field(default_factory=Counter)
    """Envelopes this node signed, by type (``/metrics``; a bid sent to several peers counts once)."""

    @functools.cached_property
    def spread(self) -> Spread:
        """How this node sends its market messages (pushed or gossiped, docs/adr/0194)."""
        return Spread(self)

    # ------------------------------------------------------------------ identity and peers
    @property
    def name(self) -> str:
        """The node's scenario name."""
        return self.config.name

    @property
    def role(self) -> str:
        """The node's role."""
        return self.config.role

    @property
    def network_id(self) -> str:
        """The network id every signature is bound to."""
        return self.genesis.network_id

    @property
    def market(self) -> str:
        """The market this node trades in."""
        return self.spec.name

    def deadline(self, name: str) -> float:
        """A named deadline of the scenario, in seconds.

        Raises:
            KeyError: no such deadline.
        """
        return float(self.scenario.deadlines[name])

    @property
    def topics(self) -> list[str]:
        """The gossip topics this node subscribes to: the chain's, its market's, and its role's audiences'."""
        return node_topics(self.network_id, self.spec, self.role)

    def shared_topics(self) -> list[str]:
        """Our topics that another node of the scenario also subscribes to: the ones a gossip mesh must form on
        (the audience topic of a role only we hold in this scenario has none to wait for)."""
        roles = {r for n, r in self.scenario.nodes if n != self.name}
        theirs = {t for r in roles for t in node_topics(self.network_id, self.spec, r)}
        return [t for t in self.topics if t in theirs]

    @staticmethod
    def mesh_min(report: dict[str, dict[str, int]] | None) -> int | None:
        """Our smallest gossip mesh in a :meth:`gossip_report` (what ``bazaar net up`` waits to be ≥ 1); None on a
        transport without meshes (in memory) or when no other node shares a topic with us."""
        return min(r["mesh"] for r in report.values()) if report else None

    def gossip_formed(self) -> bool:
        """Whether our part of the gossip overlay has formed (``Libp2pTransport.formed`` over
        :meth:`shared_topics`); True on a transport without one (in memory)."""
        formed = getattr(self.transport, "formed", None)
        return formed is None or formed(self.shared_topics())

    def peers(self, role: str | None = None) -> list[PeerEntry]:
        """Address-book entries (ourselves included) of one role or all, in scenario order."""
        me = PeerEntry(self.name, self.role, self.key.public, "")
        book = {p.name: p for p in (*self.config.peers, me)}
        return [book[n] for n, r in self.scenario.nodes if n in book and (role is None or r == role)]

    def _entries(self) -> dict[bytes, PeerEntry]:
        if not self._book:
            self._book = {p.key: p for p in self.peers()}
        return self._book

    def name_of(self, key: bytes) -> str:
        """A peer's scenario name (a hex prefix when unknown)."""
        entry = self._entries().get(key)
        return entry.name if entry is not None else key.hex()[:12]

    def role_of(self, key: bytes) -> str | None:
        """A peer's role, or None when it is not in the address book."""
        entry = self._entries().get(key)
        return entry.role if entry is not None else None

    def connected(self) -> set[bytes]:
        """Keys of the peers we are connected to now."""
        return set(self.transport.peers())

    # ------------------------------------------------------------------ messages
    def now_ms(self) -> int:
        """The node's wall clock in Unix milliseconds (skewed in a ``clock-skew`` testnet)."""
        return self.clock.now_ms()

    def seal(self, mtype: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        """Sign a message of ours.

        Sequence numbers start at the start-up time in microseconds and then count messages one by one, so
        they grow across restarts (a node never seals a million messages a second) and two messages sealed in
        a row differ by one: receivers accept them in any order within the replay window (4096 messages), even
        when they travel on different topics and one waits behind slow handlers.
        """
        self._seq += 1
        self.sent[mtype] += 1
        return seal(self.key, self.network_id, mtype, body, seq=self._seq, market=self.market, round=round,
                    ts=self.clock.now_ms())

    async def publish(self, mtype: str, body: dict[str, Any], *, round: int) -> Envelope:
        """Send a market message to every node of its topic: pushed or gossiped (:class:`~.spread.Spread`)."""
        env = self.seal(mtype, body, round=round)
        await self.spread.send(market_topic(self.network_id, self.market, self.spec.audience(mtype)), env.wire)
        return env

    async def publish_chain(self, mtype: str, body: dict[str, Any]) -> None:
        """Gossip a chain message (block, attestation, certificate, transactions)."""
        await self.transport.publish(chain_topic(self.network_id), self.seal(mtype, body).wire)

    async def ask(self, peer: bytes, mtype: str, body: dict[str, Any], *, round: int,
                  timeout: float) -> Envelope:
        """Send a signed direct request; returns the peer's verified, schema-checked, signed answer.

        Raises:
            RequestFailed: ``unavailable``, ``timeout``, ``refused`` or ``bad-answer``.
        """
        return await self.ask_envelope(peer, self.seal(mtype, body, round=round), timeout=timeout)

    async def ask_envelope(self, peer: bytes, request: Envelope, *, timeout: float) -> Envelope:
        """Like :meth:`ask` for a message already sealed (the same signed bid sent to several peers).

        Raises:
            RequestFailed: ``unavailable``, ``timeout``, ``refused`` or ``bad-answer``.
        """
        raw = await self.request_raw(peer, market_protocol(self.market), request.wire, timeout=timeout)
        try:
            answer = open_checked(raw, self.network_id)  # remembered: a role may open the answer's bytes again
        except ProtocolError as err:
            raise RequestFailed("bad-answer", err.reason) from err
        if answer.sender != peer:
            raise RequestFailed("bad-answer", "answer signed by another key")
        return answer

    async def request_raw(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """A raw direct-stream request (raises ``RequestFailed``)."""
        try:
            return await self.transport.request(peer, protocol, data, timeout=max(0.05, timeout))
        except PeerUnavailable as err:
            raise RequestFailed("unavailable", str(err)[:200]) from err
        except RemoteRejected as err:
            raise RequestFailed("refused", err.reason) from err
        except trio.TooSlowError as err:
            raise RequestFailed("timeout", f"no answer within {timeout:.2f} s") from err

    def set_protocol(self, protocol: str, handler: Callable[[bytes, bytes], Awaitable[bytes]]) -> None:
        """Serve a raw direct-stream protocol."""
        self.transport.set_handler(protocol, handler)

    # ------------------------------------------------------------------ work
    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a solver or training step off the event loop (STYLE §8) — inline under a virtual clock
        (``bazaar sim``, trio's ``MockClock``): a thread's work takes no virtual time there, and the clock
        would jump past every deadline while it runs."""
        from trio.testing import MockClock  # imported with trio's own test tools only when asked

        if isinstance(trio.lowlevel.current_clock(), MockClock):
            await trio.lowlevel.checkpoint()
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a background task in the node's nursery; its failure is logged, never fatal: a coded refusal
        (a ``BazaarError``, e.g. a peer's message that turned out unacceptable) as a warning with its reason, any
        other exception as an error (a bug of ours)."""

        async def guarded() -> None:
            try:
                await fn(*args)
            except trio.Cancelled:
                raise
            except BazaarError as err:
                _events.warning("task.refused", task=name, reason=err.reason, detail=str(err)[:200])
            except Exception as err:  # a peer's odd input must not take the node down
                _events.error("task.failed", task=name, error=repr(err)[:300])

        self.nursery.start_soon(guarded)

    def load_state(self, name: str) -> Any:
        """A JSON document saved in the data dir (None when absent or unreadable)."""
        path = self.data_dir / name
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def save_state(self, name: str, value: Any) -> None:
        """Atomically save a JSON document in the data dir."""
        tmp = self.data_dir / (name + ".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(self.data_dir / name)

    # ------------------------------------------------------------------ status
    def gossip_report(self) -> dict[str, dict[str, int]] | None:
        """Per shared topic: mesh size, connected subscribers, how many of them are in gossipsub's prune backoff,
        and the connected and pubsub-registered peers (why a mesh is empty, docs/adr/0202); None on a transport
        without meshes."""
        report = getattr(self.transport, "mesh_report", None)
        return report(self.shared_topics()) if report is not None else None

    def status(self) -> dict[str, Any]:
        """The fields of ``GET /status``."""
        chain = self.chain.chain
        gossip = self.gossip_report()
        head = chain.head
        out = {
            "name": self.name, "role": self.role, "market": self.market, "pid": os.getpid(),
            "key": self.key.public.hex(), "peer_id": getattr(self.transport, "peer_id", self.key.public.hex()),
            "height": chain.height, "finalized": chain.finalized_height,
            "final_at_ms": self.chain.finality.final_at_status(),
            "head": head.hash.hex() if head is not None else None,
            "finalized_hash": _hash_at(chain, chain.finalized_height),
            "peers": len(self.transport.peers()), "synced": self.chain.synced, "mempool": len(self.chain.mempool),
            "sealed_pushes": dict(self.chain.sealed_pushes),
            "cert_pushes": dict(self.chain.finality.pushes),
            "block_pushes": dict(self.chain.blockpush.counts),
            "msg_pushes": dict(self.spread.counts),
            "mesh_min": self.mesh_min(gossip), "gossip": gossip,
            "accepted": self.router.accepted, "rejected": dict(self.router.rejected),
            "ignored": self.router.ignored,
            "transport": dict(self.transport.stats), "uptime_s": round(time.time() - self.started, 1),
            "rss_mb": _rss_mb(), "consensus": self.consensus.status() if self.consensus is not None else {},
            "clock_skew_ms": self.clock.skew_ms,
            "blocked": [self.name_of(k) for k in getattr(self.transport, "blocked", [])],
        }
        if self.app is not None:
            out["app"] = self.app.status()
            out["work_s"] = self.app.work.status()
            out["deadline_wait_s"] = self.app.deadline_waits.status()
        if self.engine is not None:
            out["rounds"] = self.engine.status()
        return out


FINAL_WAIT_MAX_S = 60.0
"""The longest ``GET /final`` holds a request open."""


async def wait_final(node: Node, query: dict[str, str]) -> dict[str, Any]:
    """``GET /final?height=H&wait=S``: answer once our finalized height reaches ``H``, or after ``S`` seconds
    (at most ``FINAL_WAIT_MAX_S``), with ``{"finalized", "final_at_ms"}`` (the time ``H`` became final here, or
    null: not yet, or synced rather than seen). One request per node replaces polling ``/status`` while a round
    finalizes (docs/adr/0149).

    Raises:
        HttpError: 400 for a missing or malformed ``height`` or ``wait``.
    """
    try:
        height = int(query["height"])
        wait = float(query.get("wait", "0"))
    except (KeyError, ValueError) as err:
        raise HttpError(400, "GET /final needs height=<int> and optionally wait=<seconds>") from err
    if height < 0 or not 0 <= wait <= FINAL_WAIT_MAX_S:
        raise HttpError(400, f"height must be >= 0 and wait within 0..{FINAL_WAIT_MAX_S:g} s")
    chain = node.chain
    if wait > 0 and chain.finalized_height < height:
        with contextlib.suppress(trio.TooSlowError):
            await chain.wait_for(lambda: chain.finalized_height >= height, wait)
    at = chain.finality.final_at.get(height)
    return {"finalized": chain.finalized_height, "final_at_ms": None if at is None else int(at * 1000)}


async def post_partition(node: Node, request: dict[str, Any]) -> Any:
    """``POST /partition {"peers": [name, ...]}``: exchange no traffic with these address-book peers (replacing
    the previous set; ``[]`` heals) — a testnet's ``disconnect``/``heal`` (docs/testnets.md)."""
    body = request["body"]
    names = body.get("peers") if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise HttpError(400, 'expected {"peers": [node names]}')
    book = {p.name: p.key for p in node.peers()}
    unknown = sorted(set(names) - set(book))
    if unknown:
        raise HttpError(400, f"not in the address book: {', '.join(unknown)}")
    node.transport.set_blocked([book[n] for n in names])
    _events.warning("node.partition", blocked=sorted(names))
    return {"blocked": sorted(n for n in names if n != node.name)}


async def post_clock(node: Node, request: dict[str, Any]) -> Any:
    """``POST /clock {"skew_ms": N}``: set the node's clock skew (a testnet's ``clock-skew``)."""
    body = request["body"]
    skew = body.get("skew_ms") if isinstance(body, dict) else None
    if isinstance(skew, bool) or not isinstance(skew, int) or abs(skew) > 86_400_000:
        raise HttpError(400, 'expected {"skew_ms": integer milliseconds within a day}')
    node.clock.skew_ms = skew
    _events.warning("node.clock_skew", skew_ms=skew)
    return {"clock_skew_ms": skew}


def _hash_at(chain: Chain, height: int) -> str | None:
    block = chain.block(height) if height else None
    return block.hash.hex() if block is not None else None


def _rss_mb() -> float:
    try:
        with open(f"/proc/{os.getpid()}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


@asynccontextmanager
async def libp2p_transport(key: KeyPair, config: NodeConfig, topics: list[str]) -> AsyncIterator[Transport]:
    """The default transport: py-libp2p on the configured listen address, the address book as peers."""
    from bazaar.protocol.p2p import open_libp2p_transport

    peers = [(p.key, p.addr) for p in config.peers if p.addr]
    async with open_libp2p_transport(key, listen=config.listen, peers=peers, topics=topics) as transport:
        yield transport


def _write_ready(node: Node) -> None:
    ready = {
        "name": node.name, "role": node.role, "pid": os.getpid(), "key": node.key.public.hex(),
        "http_port": node.http_port, "listen": list(getattr(node.transport, "listen_addrs", [])),
        "peer_id": node.status()["peer_id"],
    }
    tmp = node.data_dir / "ready.json.tmp"
    tmp.write_text(json.dumps(ready))
    tmp.replace(node.data_dir / "ready.json")
    notify_ready(ready)


def _aggregator_key(scenario: Scenario, config: NodeConfig, key: KeyPair) -> bytes | None:
    """The key of the attestation aggregator and block relay (docs/adr/0148): a hub every node keeps connected.
    On a fully connected network the scenario's first node; on a sparse one the last of its hubs, so the round
    leader (the first node) and the aggregator are different processes (docs/adr/0200)."""
    if not scenario.nodes:
        return None
    n = len(scenario.nodes)
    name = scenario.nodes[min(DIAL_HUBS, n) - 1 if sparse(n) else 0][0]
    if name == config.name:
        return key.public
    return next((p.key for p in config.peers if p.name == name), None)


def _leads(node: Node) -> bool:
    """Whether this node drives rounds: the first node of the market's first leading role."""
    for role in node.spec.leader_roles:
        names = node.scenario.names(role)
        if names:
            return names[0] == node.name
    return False


@asynccontextmanager
async def open_node(config: NodeConfig, *, transport_factory: TransportFactory | None = None) -> AsyncIterator[Node]:
    """Start a node; it runs until the ``async with`` block is left.

    Raises:
        ParamError: bad scenario or configuration (an unknown market or role included, or a Byzantine
            behaviour its market does not declare for its role: key ``byzantine``).
        StoreCorrupt: the chain in ``data_dir`` does not verify.
    """
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "ready.json").unlink(missing_ok=True)
    try:
        seed = load_or_create_seed(data_dir / "node.key")
    except ValueError as err:  # group/world-readable or malformed: one line, no traceback
        from .params import ParamError

        raise ParamError("key", str(err)) from err
    key = KeyPair(seed)
    scenario = load_scenario(config.scenario)
    spec = get_spec(scenario.market_name)
    role_spec = spec.role(config.role) if config.role in spec.role_names else None
    if role_spec is None:
        from .params import ParamError

        raise ParamError("role", f"market {spec.name} has no role {config.role!r} (roles: "
                                 f"{', '.join(spec.role_names)})")
    settings = spec.settings(scenario)
    genesis_text = config.genesis.read_text()
    genesis = Genesis.from_dict(json.loads(genesis_text))
    byzantine = check_behaviours(config.byzantine, spec, config.role, genesis.consensus)
    local_genesis = data_dir / "genesis.json"
    if not local_genesis.exists():
        local_genesis.write_text(genesis_text)  # the data dir verifies offline on its own
    store = SqliteStore.in_dir(data_dir)
    try:
        chain = Chain(store, genesis)
        topics = node_topics(genesis.network_id, spec, config.role)
        factory = transport_factory or libp2p_transport
        async with factory(key, config, topics) as transport, trio.open_nursery() as nursery:
            clock = Clock(config.clock_skew_ms)
            router = Router(genesis.network_id, local_key=key.public, clock=clock.now_ms)
            node_ref: list[Node] = []

            async def publish_chain(mtype: str, body: dict[str, Any]) -> None:
                await node_ref[0].publish_chain(mtype, body)

            service = ChainService(chain, key=key, bls_secret=bls_keygen(seed), transport=transport,
                                   publish=publish_chain, network_id=genesis.network_id)
            service.market = spec.name
            service.mempool.resize(scenario.chain["mempool"])  # the scenario's [chain] mempool (ADR 0170)
            service.clock = clock
            service.finality.on_final = functools.partial(record_finalized, data_dir)
            recorded = recorded_finalized(data_dir)
            if recorded is not None and recorded > chain.finalized_height:  # e.g. a truncated WAL: sync it back
                _events.warning("chain.finalized_regressed", recorded=recorded, held=chain.finalized_height)
            service.register(router)
            node = Node(config=config, key=key, scenario=scenario, spec=spec, settings=settings, genesis=genesis,
                        transport=transport, router=router, chain=service,
                        http=HttpApi(token=load_or_create_token(config.genesis.parent / TOKEN_FILE)), data_dir=data_dir,
                        bls_secret=service.bls_secret, nursery=nursery, byzantine=byzantine, clock=clock)
            node_ref.append(node)
            service.spawn = node.spawn
            service.aggregator = _aggregator_key(scenario, config, key)
            service.network_size = len(scenario.nodes)
            service.votes = scenario.chain["votes"]
            service.blocks = scenario.chain["blocks"]
            task = spec.learning_task(settings) if spec.learning_task is not None else None
            driver: ConsensusDriver = make_driver(genesis.consensus, node, learning_task=task, data_dir=data_dir)
            node.consensus = driver
            service.hooks.append(driver.hooks)
            app = wire_role(node, spec, role_spec.app)
            node.app = app
            if _leads(node):
                if not isinstance(app, RoundPlan):
                    raise TypeError(f"role {node.role} leads rounds of {spec.name} but is no RoundPlan")
                node.engine = RoundEngine(node, app, spec.name)
                node.http.route("POST", "/round", node.engine.http_round, control=True)

            async def get_status(_: dict[str, Any]) -> Any:
                return node.status()

            async def get_final(request: dict[str, Any]) -> Any:
                return await wait_final(node, request["query"])

            async def post_stop(_: dict[str, Any]) -> Any:
                node.stop.set()
                return {"stopping": True}

            node.http.route("GET", "/status", get_status)
            node.http.route("GET", "/final", get_final)
            views = explorer.register(node.http, node)
            metrics = NodeMetrics(node)
            service.observe_import = metrics.observe_import
            node.http.route("GET", "/metrics", metrics.http_metrics)
            if node.engine is not None:
                node.engine.observers += [views.observe_round, metrics.observe_round]
            node.http.route("POST", "/stop", post_stop, control=True)
            node.http.route("POST", "/partition", functools.partial(post_partition, node), control=True)
            node.http.route("POST", "/clock", functools.partial(post_clock, node), control=True)
            try:
                for topic in topics:
                    nursery.start_soon(router.drain, transport.subscribe(topic))
                nursery.start_soon(service.sync_loop)
                node.http_port = await nursery.start(node.http.serve, config.http_port)
                node.spawn("consensus", driver.run)
                install_byzantine(node)
                for peer in transport.peers()[:3]:
                    await service.sync_from(peer)
                _write_ready(node)
                _events.info("node.ready", name=node.name, role=node.role, market=spec.name, height=chain.height,
                             http_port=node.http_port, consensus=genesis.consensus)
                yield node
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store.close()
