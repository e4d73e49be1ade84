"""Soak: many rounds of one market on the in-memory network with token conservation checked at every block of
every node (shared by tests/fuzz/test_soak.py and benchmarks/soak.py).

The ledger's rule (docs/ledger.md, state invariants): ``genesis + minted − burned == Σ balances + Σ escrow +
Σ stake`` with no negative balance. The soak checks it independently of the ledger's own ``Supply`` counters:
``genesis`` is summed from the genesis document, ``minted`` from the ``reward`` of the headers of the blocks
the node holds (heights 1..head, so a rewind is followed), ``burned`` is the state's (only slashing burns;
the soak also requires it never decreases) — and the ledger's ``Supply.minted`` must equal the headers' sum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bazaar.deploy import scenario_file
from bazaar.ledger.block import Block
from bazaar.ledger.chain import Chain
from bazaar.ledger.store import SqliteStore
from bazaar.node.chain.hooks import BlockHooks
from bazaar.node.markets.registry import get_spec
from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.protocol.memory import MemoryNetwork

ROUND_S = 120.0
FIXED = ("block_s", "final_s")
"""Deadlines that bound a wait for an event (kept); the others are windows a round always waits out (scaled)."""


FUND = 1000.0
"""Factor on ``[economy] initial_balance`` of a soak scenario: the small scenarios fund a few dozen rounds (a
collab publisher with budget 60 and balance 1000 runs dry in round 17), a soak runs a thousand."""


def scaled_scenario(market: str, folder: Path, scale: float, fund: float = FUND) -> Path:
    """A copy of ``market``'s small scenario (and its parameter files) with its collection windows (every
    deadline but ``block_s`` and ``final_s``) multiplied by ``scale`` — the in-memory network answers in
    milliseconds, so a soak need not wait out windows sized for real processes — and its participants'
    initial balance multiplied by ``fund``."""
    src = scenario_file(get_spec(market).small_scenario)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params").mkdir(exist_ok=True)
    for f in (src.parent / "params").glob("*.toml"):
        (folder / "params" / f.name).write_text(f.read_text())
    out, section = [], ""
    for line in src.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[deadlines]" and "=" in stripped and not stripped.startswith("#"):
            key, value = (x.strip() for x in stripped.split("=", 1))
            if key not in FIXED:
                line = f"{key} = {max(0.05, float(value) * scale):.3f}"
        elif section == "[economy]" and stripped.startswith("initial_balance"):
            line = f"initial_balance = {float(stripped.split('=', 1)[1]) * fund:.1f}"
        out.append(line)
    path = folder / src.name
    path.write_text("\n".join(out) + "\n")
    return path


@dataclass
class Conservation:
    """Checks conservation on every block a node imports or proposes."""

    node: Node
    genesis_total: int
    rewards: dict[int, int] = field(default_factory=dict)
    checks: int = 0
    burned: int = 0
    failures: list[str] = field(default_factory=list)
    before: int = 0
    """Blocks the node held when the watch began (a start-up block, e.g. cloudchain's registrations, can land
    before the network is handed over): checked once together at the first import, not counted as watched."""

    @property
    def watched(self) -> int:
        """Heights whose import the hook saw."""
        return len(self.rewards) - self.before

    def __call__(self, block: Block) -> None:
        """The ``imported`` hook: called with every new head."""
        self.rewards[block.height] = block.header.reward
        state = self.node.chain.state
        minted = sum(self.rewards.get(h, 0) for h in range(1, state.height + 1))
        missing = [h for h in range(1, state.height + 1) if h not in self.rewards]
        for h in missing:  # blocks imported before the hook was attached (the node's start-up sync)
            held = self.node.chain.block(h)
            self.rewards[h] = held.header.reward if held is not None else 0
        if missing:
            minted = sum(self.rewards[h] for h in range(1, state.height + 1))
        self.checks += 1
        problems = []
        if state.supply.minted != minted:
            problems.append(f"supply.minted {state.supply.minted} != Σ header rewards {minted}")
        if state.supply.burned < self.burned:
            problems.append(f"burned went down {self.burned} -> {state.supply.burned}")
        self.burned = state.supply.burned
        if state.held() != self.genesis_total + minted - state.supply.burned:
            problems.append(f"held {state.held()} != genesis {self.genesis_total} + minted {minted} − burned "
                            f"{state.supply.burned}")
        if not state.conserved():
            problems.append("State.conserved() is false")
        if problems:
            self.failures.append(f"{self.node.name} height {state.height}: {'; '.join(problems)}")


@dataclass
class SoakReport:
    """Figures of one market's soak."""

    market: str
    rounds: int = 0
    settled: int = 0
    blocks: int = 0
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    round_s: list[float] = field(default_factory=list)
    reverified: bool = False
    one_head: bool = False
    scale: float = 1.0
    left_out: int = 0

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON object."""
        rate = self.rounds / self.wall_s if self.wall_s else 0.0
        return {"market": self.market, "rounds": self.rounds, "settled": self.settled, "blocks_checked": self.blocks,
                "conservation_checks": self.checks, "failures": self.failures[:20], "wall_s": round(self.wall_s, 1),
                "rounds_per_s": round(rate, 3), "reverified_from_store": self.reverified, "one_head": self.one_head,
                "window_scale": self.scale, "left_out": self.left_out}


async def soak(market: str, rounds: int, root: Path, *, seed: int = 1, budget_s: float | None = None,
               scale: float = 1.0) -> SoakReport:
    """Play ``rounds`` rounds of ``market`` (fewer if ``budget_s`` runs out) with conservation checked at every
    block of every node; at the end every node's store is re-verified from genesis and the heads compared.
    ``scale`` < 1 shortens the scenario's collection windows (see :func:`scaled_scenario`)."""
    report = SoakReport(market, scale=scale)
    scenario: str | Path
    scenario = scaled_scenario(market, root.parent / "scenario", scale)
    start = time.monotonic()
    async with open_memory_network(scenario, root, network=MemoryNetwork(seed=seed)) as nodes:
        watchers = []
        for node in nodes.values():
            state = node.chain.state
            genesis = state.genesis
            watcher = Conservation(node, sum(genesis.balances.values()) + sum(genesis.stakes.values()),
                                   before=node.chain.chain.height)
            node.chain.hooks.append(BlockHooks(imported=watcher))
            watchers.append(watcher)
        leader = next(n for n in nodes.values() if n.engine is not None)
        assert leader.engine is not None
        for _ in range(rounds):
            if budget_s is not None and time.monotonic() - start > budget_s:
                break
            t0 = time.monotonic()
            with trio.fail_after(ROUND_S):
                summary = await leader.engine.play()
            report.round_s.append(time.monotonic() - t0)
            report.rounds += 1
            report.settled += 1 if summary.get("final") else 0
            report.left_out += len(summary.get("left_out") or [])
        height = leader.chain.height
        with trio.move_on_after(60):
            for node in nodes.values():
                await node.chain.wait_for(lambda n=node: n.chain.height >= height, timeout=60)
        heads = {n.chain.block(height).hash if n.chain.chain.height >= height else None for n in nodes.values()}
        report.one_head = len(heads) == 1 and None not in heads
        report.blocks = sum(w.watched for w in watchers)
        report.checks = sum(w.checks for w in watchers)
        report.failures = [f for w in watchers for f in w.failures]
        data_dirs = [n.data_dir for n in nodes.values()]
        genesis = leader.genesis
    report.reverified = all(_reverify(d, genesis) for d in data_dirs)
    report.wall_s = time.monotonic() - start
    return report


def _reverify(data_dir: Path, genesis: Any) -> bool:
    """Re-execute a node's stored chain from genesis (state roots, signatures, certificates)."""
    store = SqliteStore.in_dir(data_dir)
    try:
        chain = Chain(store, genesis)
        return chain.state.conserved()
    finally:
        store.close()
