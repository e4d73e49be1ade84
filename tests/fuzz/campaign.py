"""Fuzz campaigns shared by the CI-sized tests (tests/fuzz/test_structural.py) and the full run
(benchmarks/fuzz_structural.py): draw inputs with hypothesis, push them through the targets, tally the outcome.

Inputs are drawn in batches before they run (hypothesis drives a plain function that collects them), so the
async targets inside running nodes take the same strategies as the synchronous ledger targets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import trio
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from bazaar.ledger.errors import LedgerReason
from bazaar.node.markets.registry import get_spec
from bazaar.node.memnet import open_memory_network
from bazaar.node.reasons import NodeReason
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.memory import MemoryNetwork

from .ledger_targets import LedgerTargets
from .node_targets import NodeTargets, node_cases
from .oracle import Tally, watch_events

T = TypeVar("T")
CODES = {r.value for r in ProtocolReason} | {r.value for r in LedgerReason} | {r.value for r in NodeReason}
"""Every documented reason code (docs/protocol.md §5)."""
BATCH = 500
ROUND_S = 120.0


def collect(strategy: st.SearchStrategy[T], n: int, at: int) -> list[T]:
    """``n`` examples of ``strategy`` drawn by hypothesis (generation only: no shrinking, no database)."""
    out: list[T] = []

    @seed(at)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def gather(x: T) -> None:
        out.append(x)

    gather()
    return out


def uncoded(tally: Tally) -> dict[str, int]:
    """Refusals whose reason is not a documented code."""
    return {f"{t} {r}": n for (t, r), n in tally.refused.items() if r not in CODES}


@dataclass
class Report:
    """What one campaign did: inputs, the tally, the node's own error events, and the liveness checks."""

    name: str
    inputs: int = 0
    tally: Tally = field(default_factory=Tally)
    errors: list[str] = field(default_factory=list)
    logged_reasons: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def crashes(self) -> int:
        """Crashes: uncoded exceptions that escaped plus error events the nodes logged."""
        return len(self.tally.crashes) + len(self.errors)

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON object."""
        return {"campaign": self.name, "inputs": self.inputs, "wall_s": round(self.wall_s, 1),
                "crashes": self.crashes, "error_events": self.errors[:20], "uncoded": uncoded(self.tally),
                "logged_refusals_by_reason": self.logged_reasons, "checks": self.checks, **self.tally.to_json()}


def fuzz_ledger(n: int, at: int = 0, progress: Callable[[int], None] | None = None) -> Report:
    """``n`` inputs through the router's checks, decode_tx, the submit path, Block.decode and import_block."""
    report = Report("ledger")
    start = time.monotonic()
    targets = LedgerTargets()
    with watch_events() as watch:
        done = 0
        while done < n:
            size = min(BATCH, n - done)
            for case in collect(targets.cases(), size, at + done):
                targets.feed(case, report.tally)
                report.inputs += 1
            done += size
            if progress is not None:
                progress(done)
    report.errors = watch.errors + watch.handler_errors
    report.logged_reasons = dict(watch.reasons.most_common())
    report.checks = {"chain_conserved": targets.chain.state.conserved(), "chain_height": targets.chain.height}
    report.wall_s = time.monotonic() - start
    return report


async def fuzz_market(market: str, n: int, root: Path, at: int = 0,
                      progress: Callable[[int], None] | None = None) -> Report:
    """``n`` inputs into every node of ``market``'s small scenario on the in-memory network while rounds run;
    then one more round must settle, every node's state conserve tokens and all agree on the finalized head.
    A node task that dies (the in-memory network then stops) is recorded as a crash with its exception."""
    report = Report(market)
    try:
        await _fuzz_market(report, market, n, root, at, progress)
    except Exception as err:  # a node died and took the network down: that is the finding
        for leaf in leaves(err):
            report.tally.crash(f"{market}.node-died", leaf, "a node task")
    return report


def leaves(err: BaseException) -> list[BaseException]:
    """The innermost exceptions of (nested) exception groups."""
    if isinstance(err, BaseExceptionGroup):
        return [leaf for e in err.exceptions for leaf in leaves(e)]
    return [err]


async def _fuzz_market(report: Report, market: str, n: int, root: Path, at: int,
                       progress: Callable[[int], None] | None) -> None:
    """``n`` inputs into every node of ``market``'s small scenario on the in-memory network while rounds run;
    then one more round must settle, every node's state conserve tokens and all agree on the finalized head."""
    start = time.monotonic()
    spec = get_spec(market)
    with watch_events() as watch:
        async with open_memory_network(spec.small_scenario, root, network=MemoryNetwork(seed=at + 1)) as nodes:
            targets = NodeTargets(nodes)
            leader = targets.leader
            played: list[dict[str, Any]] = []
            async with trio.open_nursery() as nursery:
                stop = trio.Event()

                async def rounds() -> None:
                    assert leader is not None and leader.engine is not None
                    while not stop.is_set():
                        with trio.move_on_after(ROUND_S):
                            played.append(await leader.engine.play())

                if leader is not None:
                    nursery.start_soon(rounds)
                done = 0
                while done < n:
                    size = min(BATCH, n - done)
                    cases = node_cases(targets.pool, targets.wires, routes=targets.routes)
                    for case in collect(cases, size, at + done):
                        await targets.feed(case, report.tally)
                        report.inputs += 1
                        await trio.sleep(0)  # let the round and the spawned handlers run between inputs
                    done += size
                    if progress is not None:
                        progress(done)
                stop.set()
            assert leader is not None and leader.engine is not None
            with trio.fail_after(ROUND_S):
                after = await leader.engine.play()
            height = after.get("height") or leader.chain.height  # an unsettled round has no height
            with trio.move_on_after(30):
                for node in nodes.values():
                    await node.chain.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=30)
            heads = {n.chain.block(height).hash if n.chain.chain.height >= height else None
                     for n in nodes.values()}
            report.checks = {
                "rounds_during_fuzz": len(played),
                "settled_during_fuzz": sum(1 for s in played if s.get("final")),
                "round_after_fuzz_final": bool(after.get("final")),
                "one_head": len(heads) == 1 and None not in heads,
                "conserved": all(n.chain.state.conserved() for n in nodes.values()),
            }
    report.errors = watch.errors + watch.handler_errors
    report.logged_reasons = dict(watch.reasons.most_common())
    report.wall_s = time.monotonic() - start
