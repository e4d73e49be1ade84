"""Every node of a scenario in one trio run over the in-memory transport: the same runtime and role code as
the processes (for tests now, and the simulator later)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

from bazaar.protocol.memory import MemoryNetwork

from .launcher import NetDir, prepare_network
from .runtime import Node, open_node
from .scenario import load_scenario
from .waiting import wait_until_async


@asynccontextmanager
async def open_memory_network(scenario_ref: str | Path, root: Path, *, network: MemoryNetwork | None = None,
                              connect_timeout: float = 10.0, byzantine: Mapping[str, Sequence[str]] | None = None,
                              ) -> AsyncIterator[dict[str, Node]]:
    """Start every node of the scenario, joined through one :class:`MemoryNetwork`; yields them by name once
    every node sees all the others. ``byzantine``: node name -> the behaviours it is started with.

    Raises:
        ParamError: bad scenario.
        WaitTimeout: the mesh did not connect in ``connect_timeout`` seconds.
    """
    net = network or MemoryNetwork(seed=1)
    configs = prepare_network(load_scenario(scenario_ref), NetDir(root), log_json=False)
    for name, behaviours in (byzantine or {}).items():
        configs[name] = replace(configs[name], byzantine=tuple(behaviours))

    def factory(key, cfg, topics):  # type: ignore[no-untyped-def]
        return net.join(key)

    async with AsyncExitStack() as stack:
        nodes = {}
        for name, cfg in configs.items():
            nodes[name] = await stack.enter_async_context(open_node(cfg, transport_factory=factory))
        await wait_until_async(lambda: all(len(n.transport.peers()) == len(nodes) - 1 for n in nodes.values()),
                               timeout=connect_timeout, interval=0.001, what="the in-memory mesh to connect")
        await wait_until_async(lambda: all(n.chain.synced for n in nodes.values()), timeout=connect_timeout,
                               interval=0.001, what="every node to sync")
        yield nodes
