"""One simulation run: every node of a population in one trio run over the in-memory transport, on the virtual
clock, rounds played by the leader's round engine exactly as ``bazaar round`` asks a process network to."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from bazaar.protocol import KeyPair
from bazaar.protocol.memory import MemoryNetwork

from ..launcher import NetDir, build_genesis
from ..memnet import open_memory_network
from ..runtime import Node
from ..scenario import load_scenario
from .clock import EPOCH_MS, derive_seed, run_virtual
from .population import Population

SETTLE_S = 600.0
"""Virtual seconds the end of a run waits for every node to hold the leader's last final block."""


@dataclass
class RoundRecord:
    """One simulated round: the engine's summary and what it cost."""

    summary: dict[str, Any]
    wall_s: float
    virtual_s: float
    cpu_s: float
    """CPU seconds of this process during the round (the machine is shared: steadier than ``wall_s``)."""


@dataclass
class SimResult:
    """What a run produced."""

    population: Population
    seed: int
    rounds: list[RoundRecord] = field(default_factory=list)
    head_height: int = 0
    head_hash: str = ""
    one_head: bool = False
    start_wall_s: float = 0.0
    virtual_s: float = 0.0
    transport: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    """Warnings and errors the nodes logged, counted by event (each one is in ``<root>/events.log``)."""


class _Counter(logging.Handler):
    def __init__(self, counts: dict[str, int]) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname.lower()}:{record.getMessage()}"
        self.counts[key] = self.counts.get(key, 0) + 1


def write_keys_and_genesis(pop: Population, root: Path, seed: int) -> None:
    """Every node's key seed from the simulation seed, and a genesis at virtual time zero (what
    ``prepare_network`` would otherwise draw from ``os.urandom`` and the wall clock)."""
    scenario = load_scenario(pop.scenario)
    net = NetDir(root)
    keys = {}
    for name, _ in scenario.nodes:
        ndir = net.node_dir(name)
        ndir.mkdir(parents=True, exist_ok=True)
        path = ndir / "node.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(derive_seed(seed, name))
        keys[name] = KeyPair(path.read_bytes())
    genesis = build_genesis(scenario, keys)
    genesis = replace(genesis, timestamp_ms=EPOCH_MS)
    net.genesis.write_text(json.dumps(genesis.to_dict(json=True), indent=1))


async def _simulate(pop: Population, root: Path, seed: int, on_round: Callable[[RoundRecord], None] | None,
                    ) -> SimResult:
    result = SimResult(pop, seed)
    t0 = time.perf_counter()
    async with open_memory_network(pop.scenario, root, network=MemoryNetwork(seed=seed, queue_size=100_000),
                                   connect_timeout=60.0) as nodes:
        result.start_wall_s = time.perf_counter() - t0
        leader = next(n for n in nodes.values() if n.engine is not None)
        assert leader.engine is not None
        for _ in range(pop.rounds):
            w0, v0, c0 = time.perf_counter(), trio.current_time(), time.process_time()
            summary = await leader.engine.play()
            record = RoundRecord(summary, time.perf_counter() - w0, trio.current_time() - v0,
                                 time.process_time() - c0)
            result.rounds.append(record)
            if on_round is not None:
                on_round(record)
        await _settle(nodes, leader, result)
        for node in nodes.values():
            for k, v in node.transport.stats.items():
                result.transport[k] = result.transport.get(k, 0) + v
            for k, v in node.router.rejected.items():
                result.rejected[k] = result.rejected.get(k, 0) + v
        result.virtual_s = trio.current_time()
    return result


async def _settle(nodes: dict[str, Node], leader: Node, result: SimResult) -> None:
    """Wait (virtual time) until every node holds the leader's finalized head; record it and whether they agree."""
    target = leader.chain.chain.finalized_height

    def caught_up() -> bool:
        return all(n.chain.chain.finalized_height >= target for n in nodes.values())

    with trio.move_on_after(SETTLE_S):
        while not caught_up():
            await leader.chain.changes.wait_for(caught_up, timeout=SETTLE_S)
    block = leader.chain.chain.block(target) if target else None
    result.head_height = target
    result.head_hash = block.hash.hex() if block is not None else ""
    hashes = set()
    for n in nodes.values():
        b = n.chain.chain.block(target) if target else None
        hashes.add(b.hash.hex() if b is not None else "")
    result.one_head = hashes == {result.head_hash}


def simulate(pop: Population, root: Path, *, seed: int,
             on_round: Callable[[RoundRecord], None] | None = None) -> SimResult:
    """Run ``pop`` under ``root`` (the nodes' data dirs) on the virtual clock; returns its rounds and head.

    Raises:
        ParamError: bad scenario.
        WaitTimeout: the in-memory network did not come up.
    """
    root.mkdir(parents=True, exist_ok=True)
    write_keys_and_genesis(pop, root, seed)
    events: dict[str, int] = {}
    log = logging.getLogger("bazaar")
    saved = log.propagate, log.level, list(log.handlers)
    to_file = logging.FileHandler(root / "events.log")
    to_file.setLevel(logging.WARNING)
    to_file.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(fields)s"))
    log.handlers[:] = [to_file, _Counter(events)]  # the nodes' warnings: counted and in a file, not on the terminal
    log.propagate, log.level = False, logging.WARNING
    try:
        result: SimResult = run_virtual(_simulate, pop, root, seed, on_round, seed=seed)
    finally:
        log.propagate, log.level, log.handlers[:] = saved[0], saved[1], saved[2]
        to_file.close()
    result.events = dict(sorted(events.items()))
    return result
