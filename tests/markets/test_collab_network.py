"""Market collab over real libp2p processes on loopback: 6 node processes (the pool, 3 devices, 2 publishers)
regulate the prices and settle exactly what `bazaar solve collab-pricing` prints for the scenario's file, and
agree on one finalized head with every escrow closed.

Every wait is bounded; only the processes the launcher started are ever signalled (by PID).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.node import launcher
from bazaar.node.chaintools import export_data_dir
from bazaar.node.cli import main
from bazaar.node.markets.registry import get_spec
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until

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
