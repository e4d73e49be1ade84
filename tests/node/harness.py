"""Factories for in-process networks: N real nodes (the same runtime and role code as the processes) joined
through the in-memory transport, as one async context manager (STYLE §12)."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.protocol.memory import MemoryNetwork

CALIBRATED_3 = """
n = 3
epsilon = 1.0
tau = 0.01
delta = [0.6, 0.2, 0.3]
C_b = 20.0
u = [1.0, 1.2, 1.3]
m = [1.0, 1.2, 1.6]
R = 4000.0
B = 200.0
lambda = 5.0
beta = [0.2, 0.5, 0.45]
C = 5.0
F_min = 10.0
F_max = 100.0
p_min = 10.0
p_max = 20.0
"""


def small_scenario(folder: Path, *, consumers: int = 3, mining_s: float = 1.0, demand_s: float = 2.0,
                   phases: str = "") -> Path:
    """Write a small ai-bazaar scenario (its own n-consumer parameter set) and return its path."""
    assert consumers == 3, "the shipped test parameter set has n = 3"
    (folder / "p3.toml").write_text(CALIBRATED_3)
    phases = phases or textwrap.dedent("""
        [[phases]]
        name = "eq"
        params = "p3"
        mode = "equilibrium"
        rounds = 2

        [[phases]]
        name = "learn"
        params = "p3"
        mode = "learning"
        rounds = 2
        """)
    path = folder / "small.toml"
    path.write_text(textwrap.dedent(f"""
        name = "small"
        market = "ai-bazaar"
        network_id = "bazaar-test"
        consensus = "pol"

        [roles]
        cpp = 1
        consumer = {consumers}

        [economy]
        initial_balance = 100000.0
        stake = 100.0
        block_reward = 40.0
        reward_per_tx = 0.5

        [deadlines]
        demand_s = {demand_s}
        mining_s = {mining_s}
        block_s = 5.0
        final_s = 5.0

        [mechanism]
        steps_per_unit = 0.5
        max_steps = 50

        [mechanism.param_sets]
        p3 = "p3.toml"
        """) + phases)
    return path


@asynccontextmanager
async def memory_net(scenario_path: Path, root: Path, *, network: MemoryNetwork | None = None,
                     ) -> AsyncIterator[dict[str, Node]]:
    """Every node of the scenario, started in this trio run over one in-memory mesh."""
    async with open_memory_network(scenario_path, root, network=network) as nodes:
        yield nodes


def two_round_data_dirs(root: Path) -> Path:
    """Run 2 ai-bazaar rounds of :func:`small_scenario` on the in-memory network under ``root`` until every node
    holds height 2 as final; return the nodes' data dirs (the same files a process network writes)."""

    async def run() -> None:
        async with memory_net(small_scenario(root), root / "net") as nodes:
            for _ in range(2):
                with trio.fail_after(30):
                    await nodes["cpp"].engine.play()
            for node in nodes.values():
                await node.chain.changes.wait_for(lambda n=node: n.chain.finalized_height >= 2, timeout=10)

    trio.run(run)
    return root / "net" / "nodes"
