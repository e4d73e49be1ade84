"""Market collab over real libp2p processes on loopback: 6 node processes (the pool, 3 devices, 2 publishers)
regulate the prices and settle exactly what `bazaar solve collab-pricing` prints for the scenario's file, and
agree on one finalized head with every escrow closed (declared protocol, the default); on the iterative
protocol (the paper's, docs/adr/0160) a device killed mid-regulation is dropped and a killed pool moves no
token.

Every wait is bounded; only the processes the launcher started are ever signalled (by PID).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bazaar.node import launcher
from bazaar.node.chaintools import export_data_dir
from bazaar.node.cli import main
from bazaar.node.markets.registry import get_spec
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until

from .collab_scenarios import with_protocol

pytestmark = pytest.mark.network
SMALL = "collab-small"


def test_six_processes_regulate_and_settle_as_the_offline_solver(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "net"
    launcher.net_up(SMALL, root, timeout=120)
    try:
        assert main(["round", "--dir", str(root), "--rounds", "1", "--json"]) == 0
        line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        for key in ("round", "market", "height", "final_everywhere", "left_out", "outcome"):
            assert key in line, key
        assert line["final_everywhere"] and line["left_out"] == [], line
        params = get_spec("collab").settings(load_scenario(SMALL)).params_path
        assert main(["solve", "collab-pricing", "--params", str(params), "--json"]) == 0
        offline = json.loads(capsys.readouterr().out)
        for key in ("iterations", "cleared", "prices", "price_path", "trades", "payoff", "gap"):
            assert line["outcome"][key] == offline[key], key  # the same code on the same input: equal floats

        def agreed() -> bool:
            rows = launcher.net_status(root)["nodes"]
            return len({(r["finalized"], r["finalized_hash"]) for r in rows}) == 1 and all(r["alive"] for r in rows)

        wait_until(agreed, timeout=30, what="every node on one finalized head")
        export = export_data_dir(root / "nodes" / "device-0")
        assert not export["escrow"]
        genesis = json.loads((root / "genesis.json").read_text())
        minted = sum(b["reward"] for b in export["blocks"])
        assert sum(export["balances"].values()) - sum(genesis["balances"].values()) == minted
    finally:
        launcher.net_down(root)


def _pool_iteration(root: Path) -> int | None:
    info = launcher.NetDir(root).load()
    st = launcher.node_status(info["nodes"]["pool"]) or {}
    return st.get("app", {}).get("iteration")


def test_a_killed_device_is_dropped_and_a_killed_pool_moves_no_token_then_restarts(tmp_path: Path) -> None:
    root = tmp_path / "net"
    launcher.net_up(with_protocol("collab", "iterative", tmp_path), root, timeout=150)
    try:
        genesis_balances = json.loads((root / "genesis.json").read_text())["balances"]
        with ThreadPoolExecutor(1) as pool_thread:
            running = pool_thread.submit(lambda: next(iter(run_rounds(root, 1))))
            wait_until(lambda: (_pool_iteration(root) or 0) >= 3, timeout=60, what="the regulation's 3rd iteration")
            launcher.net_kill(root, "device-2")
            summary = running.result(timeout=120)
        assert summary["final"] and summary["final_everywhere"], {k: v for k, v in summary.items() if k != "outcome"}
        assert "device-2" in summary["left_out"]
        assert all(t["compute"][2] == 0 and t["data"][2] == 0 for t in summary["outcome"]["trades"])
        height = summary["height"]
        # now the pool dies mid-regulation: no lock ever reaches the chain, so no token moves
        with ThreadPoolExecutor(1) as pool_thread:
            running = pool_thread.submit(lambda: list(run_rounds(root, 1)))
            wait_until(lambda: (_pool_iteration(root) or 0) >= 2, timeout=60, what="the regulation's 2nd iteration")
            launcher.net_kill(root, "pool")
            with pytest.raises(launcher.LaunchError):
                running.result(timeout=120)
        export = export_data_dir(root / "nodes" / "device-0")
        assert export["height"] == height and not export["escrow"]
        assert sum(export["balances"].values()) - sum(genesis_balances.values()) == sum(
            b["reward"] for b in export["blocks"])
        # Restarted at once, before its peers noticed its death: their pubsub still holds its old stream until
        # their watchdog kicks the connection (protocol/p2p.py), so its first round may reach nobody (everyone is
        # left out and nothing moves). One of its first three rounds settles trades (the publishers drop the locks
        # that never landed; each watchdog kicks at most 2 stale connections every 2 s, docs/adr/0123).
        launcher.net_start(root, "pool")

        def reconnected() -> bool:
            rows = {r["name"]: r for r in launcher.net_status(root)["nodes"]}
            pool = rows["pool"]
            return ((pool["peers"] or 0) >= len(rows) - 2  # every live node but itself (device-2 is dead)
                    and (pool.get("mesh_min") or 0) >= 1)

        wait_until(reconnected, timeout=60, what="the restarted pool to reconnect")
        rounds = list(run_rounds(root, 3))
        assert any(r["final"] and r["final_everywhere"] and any(t["cost"] > 0 for t in r["outcome"]["trades"])
                   for r in rounds), [{k: v for k, v in r.items() if k != "outcome"} for r in rounds]
    finally:
        launcher.net_down(root)
