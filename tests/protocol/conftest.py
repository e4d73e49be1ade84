"""Fixtures shared by the protocol tests: N connected transports of either implementation (STYLE §10, §12)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from bazaar.protocol.keys import KeyPair
from bazaar.protocol.memory import MemoryNetwork

TOPIC = "conformance/t"
SETUP_DEADLINE = 30.0


@dataclass
class Cluster:
    """Connected transports, each running in its own task so that any one can be closed on its own."""

    kind: str
    keys: list[KeyPair]
    nodes: list[Any]
    _stops: list[trio.Event] = field(default_factory=list)
    _done: list[trio.Event] = field(default_factory=list)

    async def close(self, index: int) -> None:
        """Shut node ``index`` down and wait until its transport context has exited."""
        self._stops[index].set()
        with trio.fail_after(10):
            await self._done[index].wait()


async def _run_node(
    cm: AbstractAsyncContextManager[Any], stop: trio.Event, done: trio.Event, *, task_status: Any
) -> None:
    try:
        async with cm as transport:
            task_status.started(transport)
            await stop.wait()
    finally:
        done.set()


async def _wait_until(predicate: Any) -> None:
    """Poll ``predicate`` with short checkpoints under the setup deadline (no fixed sleeps)."""
    with trio.fail_after(SETUP_DEADLINE):
        while not predicate():
            await trio.sleep(0.02)


@pytest.fixture(params=["memory", "libp2p"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """Three connected transports subscribed to :data:`TOPIC`, mesh formed, of the parametrised kind."""
    keys = [KeyPair.from_label(f"conformance-{i}") for i in range(3)]
    net = MemoryNetwork(seed=7)
    result = Cluster(request.param, keys, [])
    async with trio.open_nursery() as nursery:
        for i, key in enumerate(keys):
            stop, done = trio.Event(), trio.Event()
            result._stops.append(stop)
            result._done.append(done)
            cm: AbstractAsyncContextManager[Any]
            if request.param == "memory":
                cm = net.join(key)
            else:
                from bazaar.protocol.p2p import open_libp2p_transport

                book = [(keys[j].public, result.nodes[j].listen_addrs[0]) for j in range(i)]
                cm = open_libp2p_transport(key, peers=book, topics=[TOPIC])
            with trio.fail_after(SETUP_DEADLINE):
                node = await nursery.start(_run_node, cm, stop, done)
            node.subscribe(TOPIC)
            result.nodes.append(node)
        if request.param == "libp2p":
            others = [{k.public for k in keys} - {n.local_key} for n in result.nodes]
            await _wait_until(
                lambda: all(
                    set(n.peers()) >= o and set(n.mesh_peers(TOPIC)) >= o
                    for n, o in zip(result.nodes, others, strict=True)
                )
            )
        yield result
        for stop in result._stops:
            stop.set()
