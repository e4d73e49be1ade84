"""``bazaar round``: scripted rounds on a running local network, with the scenario's faults applied.

Each round asks the leader (``POST /round``), then waits until every live node has finalized the round's
block, and reports one JSON-able summary per round, including the latency from the price announcement to
finality on the last node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trio

from . import launcher
from .httpapi import HttpError, http_json
from .scenario import load_scenario

LEADER_ROLES = ("cpp",)


def _leader(info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for name, node in info["nodes"].items():
        if node["role"] in LEADER_ROLES:
            return name, node
    raise launcher.LaunchError("this network has no round leader (a cpp)")


def _post_round(port: int, timeout: float) -> dict[str, Any]:
    async def go() -> Any:
        return await http_json(port, "POST", "/round", {}, timeout=timeout)

    return dict(trio.run(go))


def run_rounds(root: Path, rounds: int, *, progress: Callable[[str], None] | None = None,
               ) -> Iterator[dict[str, Any]]:
    """Run ``rounds`` rounds; yields each round's summary as soon as it settles everywhere.

    Raises:
        LaunchError: no network, leader down, or a round the leader could not run.
    """
    net = launcher.NetDir(root)
    info = net.load()
    scenario = load_scenario(info["scenario"])
    dl = scenario.deadlines
    round_timeout = sum(dl.values()) + 60
    for _ in range(rounds):
        info = net.load()
        leader_name, leader = _leader(info)
        if not launcher.pid_alive(leader["pid"], leader["config"]):
            raise launcher.LaunchError(f"the leader {leader_name} is not running")
        status = launcher.node_status(leader)
        next_round = (status or {}).get("app", {}).get("round", 0) + 1
        for fault in scenario.faults:
            if fault.round == next_round:
                if fault.action == "kill":
                    launcher.net_kill(root, fault.node)
                elif not launcher.pid_alive(info["nodes"][fault.node]["pid"], info["nodes"][fault.node]["config"]):
                    launcher.net_start(root, fault.node)
                if progress:
                    progress(f"fault before round {next_round}: {fault.action} {fault.node}")
                info = net.load()
        t0 = time.monotonic()
        try:
            summary = _post_round(leader["http_port"], round_timeout)
        except (OSError, trio.TooSlowError, HttpError) as err:
            raise launcher.LaunchError(f"round {next_round} failed at the leader: {err}") from err
        height = summary.get("height")
        final_everywhere = False
        if height is not None and summary.get("final"):
            deadline = time.monotonic() + dl["final_s"] + 15
            while time.monotonic() < deadline:
                live = [v for v in info["nodes"].values() if launcher.pid_alive(v["pid"], v["config"])]
                statuses = [launcher.node_status(v) for v in live]
                if all(s is not None and s["finalized"] >= height for s in statuses):
                    final_everywhere = True
                    break
                time.sleep(0.05)
        summary["final_everywhere"] = final_everywhere
        summary["latency_all_ms"] = round((time.monotonic() - t0) * 1000, 1) if final_everywhere else None
        if progress:
            progress(f"round {summary['round']} ({summary['mode']}, {summary['params']}): price "
                     f"{summary['price']:.4g}, winner {summary.get('winner')}, height {height}, "
                     f"final everywhere: {final_everywhere}")
        yield summary
