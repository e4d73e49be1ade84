"""``bazaar round``: scripted rounds on a running local network, with the scenario's faults applied.

Each round asks the market's leader (``POST /round``), then waits until every live node has finalized the
round's block, and yields the leader's summary with ``final_everywhere`` and ``latency_all_ms`` (from the
round's start to finality on the last node, by the nodes' own finality stamps; ``latency_polled_ms``: to when this
driver saw it, its polling and the leader's report work after finality included). Any market: the leader role
comes from its spec.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from .. import launcher
from ..httpapi import HttpError, http_json
from ..markets.registry import get_spec
from ..markets.spec import MarketSpec
from ..scenario import load_scenario
from ..waiting import WaitTimeout, wait_until

FINAL_POLL_S = 0.2
"""Before asking again a node whose HTTP API did not answer."""
FINAL_WAIT_S = 2.0
"""How long one ``GET /final`` may wait at a node before the driver checks which nodes are still alive."""
FINAL_POLL_TIMEOUT_S = 5.0
EARLY_WAIT_S = 60.0
"""How long a ``GET /final`` sent before the round's block exists may wait (the node's most; given up as soon as
the round turns out to have put its block at another height)."""


def leader_of(info: dict[str, Any], spec: MarketSpec) -> tuple[str, dict[str, Any]]:
    """The node that drives rounds: the first node of the market's leading role.

    Raises:
        LaunchError: the network has none.
    """
    for role in spec.leader_roles:
        for name, node in info["nodes"].items():
            if node["role"] == role:
                return name, node
    raise launcher.LaunchError(f"this network has no round leader (a {' or '.join(spec.leader_roles)})")


def progress_line(spec: MarketSpec, summary: Mapping[str, Any]) -> str:
    """The market's one-line progress text for a round (a generic one when the market has none)."""
    if spec.report.progress is not None:
        return spec.report.progress(summary)
    return (f"round {summary['round']} ({summary.get('mode')}): height {summary.get('height')}, left out "
            f"{len(summary.get('left_out', []))}, final everywhere: {summary.get('final_everywhere')}")


def _post_round(port: int, timeout: float, token: str | None, *, nodes: Mapping[str, dict[str, Any]] | None = None,
                guess: int | None = None) -> tuple[dict[str, Any], dict[str, int | None]]:
    """``POST /round`` at the leader; returns its summary and the finality stamps already collected.

    With ``nodes`` and ``guess`` (the height the round's block will most likely have), every node is asked
    ``GET /final?height=guess`` while the round runs, so the nodes read those requests before the round rather
    than while they finalize its block (docs/adr/0193); the answers count only if the round's block has that height
    (the waits are given up at once otherwise), and only from nodes that finalized it."""
    stamps: dict[str, int | None] = {}
    summary: dict[str, Any] = {}

    async def ask(name: str, node: dict[str, Any]) -> None:
        try:
            answer = await http_json(node["http_port"], "GET", f"/final?height={guess}&wait={EARLY_WAIT_S:g}",
                                     timeout=EARLY_WAIT_S + FINAL_POLL_TIMEOUT_S)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, HttpError, ValueError):
            return  # asked again once the round is known (a node may be down, or killed by a fault meanwhile)
        if isinstance(answer, dict) and isinstance(answer.get("finalized"), int) and guess is not None \
                and answer["finalized"] >= guess:
            stamp = answer.get("final_at_ms")
            stamps[name] = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None

    failed: list[BaseException] = []

    async def go() -> None:
        async with trio.open_nursery() as nursery:
            async def post() -> None:
                try:
                    summary.update(await http_json(port, "POST", "/round", {}, timeout=timeout, token=token))
                except (OSError, trio.TooSlowError, trio.BrokenResourceError, HttpError) as err:  # raised below
                    failed.append(err)
                    nursery.cancel_scope.cancel()
                    return
                if summary.get("height") != guess or not summary.get("final"):
                    nursery.cancel_scope.cancel()  # the early waits are for another height
                else:  # nodes not final by then are asked again, between checks of which nodes are alive
                    nursery.cancel_scope.deadline = trio.current_time() + FINAL_WAIT_S

            nursery.start_soon(post)
            if nodes is not None and guess is not None:
                for name, node in nodes.items():
                    nursery.start_soon(ask, name, node)

    trio.run(go)
    if failed:
        raise failed[0]
    return summary, (stamps if summary.get("height") == guess else {})


def _apply_faults(root: Path, scenario: Any, next_round: int, progress: Callable[[str], None] | None) -> None:
    info = launcher.NetDir(root).load()
    for fault in scenario.faults:
        if fault.round != next_round:
            continue
        if fault.action == "kill":
            launcher.net_kill(root, fault.node)
        elif not launcher.pid_alive(info["nodes"][fault.node]["pid"], info["nodes"][fault.node]["config"]):
            launcher.net_start(root, fault.node)
        if progress:
            progress(f"fault before round {next_round}: {fault.action} {fault.node}")


def _final_everywhere(root: Path, height: int, timeout: float, known: Mapping[str, int | None] | None = None,
                      ) -> tuple[bool, list[int | None]]:
    """Whether every live node finalized ``height`` within ``timeout``, and the wall-clock time (unix ms) at which
    each node says it did (its ``final_at_ms``; None when it has no stamp, e.g. it synced the height). Each node
    not yet final is asked once with ``GET /final?height=H&wait=S``, which it answers as soon as the height is
    final there (or after ``FINAL_WAIT_S``, when the question is asked again of the nodes still alive): no
    polling while the nodes are busy finalizing (docs/adr/0149). ``known``: nodes already seen final, with their
    stamps (asked before the round, :func:`_post_round`)."""
    info = launcher.NetDir(root).load()
    known = known or {}
    pending = {name: node for name, node in info["nodes"].items() if name not in known}
    stamps: list[int | None] = list(known.values())
    deadline = time.monotonic() + timeout

    async def ask(name: str, node: dict[str, Any], done: list[str]) -> None:
        wait = round(max(0.0, min(FINAL_WAIT_S, deadline - time.monotonic())), 3)
        try:
            answer = await http_json(node["http_port"], "GET", f"/final?height={height}&wait={wait}",
                                     timeout=wait + FINAL_POLL_TIMEOUT_S)
        except (OSError, trio.TooSlowError, HttpError, ValueError):
            await trio.sleep(min(FINAL_POLL_S, max(0.0, deadline - time.monotonic())))  # not listening (yet)
            return
        if isinstance(answer, dict) and isinstance(answer.get("finalized"), int) and answer["finalized"] >= height:
            done.append(name)
            stamp = answer.get("final_at_ms")
            stamps.append(stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None)

    async def wait_all() -> bool:
        with trio.move_on_after(timeout):
            while True:
                for name in [n for n, v in pending.items() if not launcher.pid_alive(v["pid"], v["config"])]:
                    del pending[name]  # a node that is down has nothing to finalize
                done: list[str] = []
                async with trio.open_nursery() as nursery:
                    for name, node in pending.items():
                        nursery.start_soon(ask, name, node, done)
                for name in done:
                    del pending[name]
                if not pending:
                    return True
        return False

    return bool(trio.run(wait_all)), stamps


def latency_final_ms(started_unix: float, stamps: list[int | None]) -> float | None:
    """From the round's start (unix seconds) to the last node's own finality stamp; None when a node has none."""
    if not stamps or any(s is None for s in stamps):
        return None
    return round(max(0.0, max(s for s in stamps if s is not None) - started_unix * 1000), 1)


LEADER_SYNC_WAIT_S = 120.0
"""How long a round waits for a leader that is still catching up with the chain (a hub of a 50-process network
just after ``net up``) before it is asked anyway and refuses with ``not synced`` (docs/adr/0200)."""


def _synced_status(name: str, leader: dict[str, Any], progress: Callable[[str], None] | None,
                   wait_s: float = LEADER_SYNC_WAIT_S) -> dict[str, Any]:
    """The leader's ``GET /status`` once it says it is synced (or whatever it said last, after ``wait_s``)."""
    last: dict[str, Any] = launcher.node_status(leader) or {}
    if last.get("synced", True):
        return last
    if progress is not None:
        progress(f"waiting (up to {wait_s:g} s) for the leader {name} to catch up with the chain")

    def synced() -> bool:
        last.clear()
        last.update(launcher.node_status(leader) or {})
        return bool(last.get("synced", False))

    with contextlib.suppress(WaitTimeout):  # the leader then refuses the round and says why
        wait_until(synced, timeout=wait_s, interval=0.5, what=f"the leader {name} to sync")
    return last


def run_rounds(root: Path, rounds: int, *, progress: Callable[[str], None] | None = None,
               ) -> Iterator[dict[str, Any]]:
    """Run ``rounds`` rounds; yields each round's summary as soon as it settles everywhere.

    Raises:
        LaunchError: no network, leader down, or a round the leader could not run.
    """
    net = launcher.NetDir(root)
    scenario = load_scenario(net.load()["scenario"])
    spec = get_spec(scenario.market_name)
    round_timeout = sum(scenario.deadlines.values()) + 60
    blocks_per_round = 1
    for _ in range(rounds):
        info = net.load()
        leader_name, leader = leader_of(info, spec)
        if not launcher.pid_alive(leader["pid"], leader["config"]):
            raise launcher.LaunchError(f"the leader {leader_name} is not running")
        status = _synced_status(leader_name, leader, progress)
        next_round = status.get("rounds", {}).get("round", 0) + 1
        _apply_faults(root, scenario, next_round, progress)
        info = net.load()
        head = status.get("height")
        guess = head + blocks_per_round if isinstance(head, int) else None
        t0, t0_unix = time.monotonic(), time.time()
        try:
            summary, early = _post_round(info["nodes"][leader_name]["http_port"], round_timeout,
                                         launcher.NetDir(root).control_token(), nodes=info["nodes"], guess=guess)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, HttpError) as err:
            raise launcher.LaunchError(f"round {next_round} failed at the leader: {err}") from err
        height = summary.get("height")
        if isinstance(head, int) and isinstance(height, int) and height > head:
            blocks_per_round = height - head  # e.g. cloudchain's tasks block and settlement block
        final_everywhere, stamps = (_final_everywhere(root, height, scenario.deadlines["final_s"] + 15, early)
                                    if height is not None and summary.get("final") else (False, []))
        summary["final_everywhere"] = final_everywhere
        leader_ms = float(summary.get("latency_ms") or 0.0)
        polled = round(max(leader_ms, (time.monotonic() - t0) * 1000), 1) if final_everywhere else None
        stamped = latency_final_ms(t0_unix, stamps) if final_everywhere else None
        # the nodes' own finality stamps when every node has one (the round's end, without the leader's report
        # work after it or this poll's granularity in it), else what this driver saw (docs/adr/0156)
        summary["latency_all_ms"] = stamped if stamped is not None else polled
        summary["latency_polled_ms"] = polled
        if progress:
            progress(progress_line(spec, summary))
        yield summary
