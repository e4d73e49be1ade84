"""``async with open_node(config) as node``: one participant's whole runtime (STYLE §7).

The node owns its key, its chain (SQLite store), its transport, the router that checks every message, the
chain service (mempool, import, attestations, finality, sync), the market app of its role, and a local HTTP
status/control endpoint. Every background task lives in the node's nursery; leaving the ``async with``
cancels them and closes the store.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from bazaar.ledger.bls import bls_keygen
from bazaar.ledger.chain import Chain
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import SqliteStore
from bazaar.protocol import Envelope, KeyPair, open_envelope, seal
from bazaar.protocol.chainmsg import chain_topic, market_topic
from bazaar.protocol.keys import load_or_create_seed
from bazaar.protocol.messages import validate_basic
from bazaar.protocol.transport import RemoteRejected, Transport

from . import explorer
from .chainsvc import ChainService
from .config import NodeConfig, PeerEntry
from .httpapi import HttpApi
from .logs import Events
from .router import Router
from .scenario import Scenario, load_scenario

TransportFactory = Callable[[KeyPair, NodeConfig, list[str]], AbstractAsyncContextManager[Transport]]

APPS = {"ai-bazaar": "bazaar.node.apps.ai_bazaar"}
"""Market name -> module exposing ``create_app(node) -> App``."""

_events = Events("node")


class App(Protocol):
    """A market role running inside a node."""

    async def run(self) -> None:
        """Background work of the role for the node's lifetime (may return at once)."""
        ...

    def status(self) -> dict[str, Any]:
        """Role-specific fields for the status endpoint."""
        ...


@dataclass
class Node:
    """A running participant (see module docstring)."""

    config: NodeConfig
    key: KeyPair
    scenario: Scenario
    genesis: Genesis
    transport: Transport
    router: Router
    chain: ChainService
    http: HttpApi
    data_dir: Path
    limiter: trio.CapacityLimiter = field(default_factory=lambda: trio.CapacityLimiter(1))
    started: float = field(default_factory=time.time)
    http_port: int = 0
    app: App | None = None
    stop: trio.Event = field(default_factory=trio.Event)
    _seq: int = field(default_factory=lambda: time.time_ns() // 1000)

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

    def peers_of_role(self, role: str) -> list[PeerEntry]:
        """Address-book entries of one role, in scenario order (ourselves included)."""
        me = PeerEntry(self.name, self.role, self.key.public, "")
        book = {p.name: p for p in (*self.config.peers, me)}
        return [book[n] for n in self.scenario.names(role) if n in book]

    def seal(self, mtype: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        """Sign a message of ours (sequence numbers are time-based, so they grow across restarts)."""
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return seal(self.key, self.network_id, mtype, body, seq=self._seq, market=self.scenario.market_name,
                    round=round)

    async def publish_market(self, mtype: str, body: dict[str, Any], *, round: int) -> Envelope:
        """Gossip a market announcement."""
        env = self.seal(mtype, body, round=round)
        await self.transport.publish(market_topic(self.network_id, self.scenario.market_name), env.wire)
        return env

    async def publish_chain(self, mtype: str, body: dict[str, Any]) -> None:
        """Gossip a chain message (block, attestation, certificate, transactions)."""
        await self.transport.publish(chain_topic(self.network_id), self.seal(mtype, body).wire)

    async def ask(self, peer: bytes, protocol: str, env: Envelope, *, timeout: float) -> Envelope:
        """Send a signed request and return the peer's verified, schema-checked, signed answer.

        Raises:
            PeerUnavailable, RemoteRejected, trio.TooSlowError, ProtocolError.
        """
        raw = await self.transport.request(peer, protocol, env.wire, timeout=timeout)
        answer = open_envelope(raw, self.network_id)
        validate_basic(answer)
        if answer.sender != peer:
            raise RemoteRejected("answer signed by another key")
        return answer

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a solver or training step off the event loop (STYLE §8)."""
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def status(self) -> dict[str, Any]:
        """The fields of ``GET /status``."""
        chain = self.chain.chain
        head = chain.head
        out = {
            "name": self.name, "role": self.role, "pid": os.getpid(), "key": self.key.public.hex(),
            "peer_id": getattr(self.transport, "peer_id", self.key.public.hex()),
            "height": chain.height, "finalized": chain.finalized_height,
            "head": head.hash.hex() if head is not None else None,
            "finalized_hash": _hash_at(chain, chain.finalized_height),
            "peers": len(self.transport.peers()), "mempool": len(self.chain.mempool),
            "accepted": self.router.accepted, "rejected": dict(self.router.rejected),
            "transport": dict(self.transport.stats), "uptime_s": round(time.time() - self.started, 1),
            "rss_mb": _rss_mb(),
        }
        if self.app is not None:
            out["app"] = self.app.status()
        return out


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


@asynccontextmanager
async def open_node(config: NodeConfig, *, transport_factory: TransportFactory | None = None) -> AsyncIterator[Node]:
    """Start a node; it runs until the ``async with`` block is left.

    Raises:
        ParamError: bad scenario or configuration.
        StoreCorrupt: the chain in ``data_dir`` does not verify.
    """
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "ready.json").unlink(missing_ok=True)
    seed = load_or_create_seed(data_dir / "node.key")
    key = KeyPair(seed)
    scenario = load_scenario(config.scenario)
    genesis_text = config.genesis.read_text()
    genesis = Genesis.from_dict(json.loads(genesis_text))
    local_genesis = data_dir / "genesis.json"
    if not local_genesis.exists():
        local_genesis.write_text(genesis_text)  # the data dir verifies offline on its own
    if scenario.market_name not in APPS:
        raise ValueError(f"market {scenario.market_name!r} has no node app (known: {', '.join(APPS)})")
    app_module = importlib.import_module(APPS[scenario.market_name])
    store = SqliteStore.in_dir(data_dir)
    try:
        chain = Chain(store, genesis)
        topics = [chain_topic(genesis.network_id), market_topic(genesis.network_id, scenario.market_name)]
        factory = transport_factory or libp2p_transport
        async with factory(key, config, topics) as transport:
            router = Router(genesis.network_id, local_key=key.public)
            node_ref: list[Node] = []

            async def publish_chain(mtype: str, body: dict[str, Any]) -> None:
                await node_ref[0].publish_chain(mtype, body)

            service = ChainService(chain, key=key, bls_secret=bls_keygen(seed), transport=transport,
                                   publish=publish_chain, network_id=genesis.network_id)
            service.register(router)
            node = Node(config=config, key=key, scenario=scenario, genesis=genesis, transport=transport,
                        router=router, chain=service, http=HttpApi(), data_dir=data_dir)
            node_ref.append(node)
            node.app = app_module.create_app(node)

            async def get_status(_: dict[str, Any]) -> Any:
                return node.status()

            async def post_stop(_: dict[str, Any]) -> Any:
                node.stop.set()
                return {"stopping": True}

            node.http.route("GET", "/status", get_status)
            explorer.register(node.http, chain, genesis.network_id)
            node.http.route("POST", "/stop", post_stop)
            async with trio.open_nursery() as nursery:
                for topic in topics:
                    nursery.start_soon(router.drain, transport.subscribe(topic))
                nursery.start_soon(service.sync_loop)
                node.http_port = await nursery.start(node.http.serve, config.http_port)
                nursery.start_soon(node.app.run)
                for peer in transport.peers()[:3]:
                    await service.sync_from(peer)
                _write_ready(node)
                _events.info("node.ready", name=node.name, role=node.role, height=chain.height,
                             http_port=node.http_port)
                try:
                    yield node
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        store.close()
