"""The hierarchical auction over real libp2p processes on loopback: 7 node processes (1 CCSP, 2 MESPs,
4 miners) agree on one finalized head; a killed MESP is left out and the round settles; restarted, it resyncs.

Every wait is bounded; only the processes the launcher started are ever signalled (by PID).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bazaar.node import launcher
from bazaar.node.chaintools import export_data_dir
from bazaar.node.cli import main
from bazaar.node.markets.registry import get_spec
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hier-net")
    launcher.net_up("hierarchical-small", root, timeout=120)
    try:
        yield root
    finally:
        launcher.net_down(root)


def _rows(root: Path) -> list[dict[str, Any]]:
    return list(launcher.net_status(root)["nodes"])


def _agree(root: Path, height: int) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        rows = [r for r in _rows(root) if r["alive"]]
        ok = all(r["finalized"] is not None and r["finalized"] >= height for r in rows)
        return rows if ok else None

    return wait_until(probe, timeout=30, what=f"every live node to finalize {height}")


def test_seven_processes_settle_the_auction_on_one_head(net: Path) -> None:
    rows = _rows(net)
    assert len(rows) == 7 and all(r["alive"] for r in rows) and len({r["pid"] for r in rows}) == 7
    summaries = list(run_rounds(net, 2))
    for s in summaries:
        assert s["final"] and s["final_everywhere"] and s["left_out"] == [], s
        assert s["market"] == "hierarchical" and s["outcome"]["welfare"] > 0
    rows = _agree(net, summaries[-1]["height"])
    assert len({(r["finalized"], r["finalized_hash"]) for r in rows}) == 1
    _payments_add_up(export_data_dir(net / "nodes" / "mesp-0"), json.loads((net / "genesis.json").read_text()))


def _payments_add_up(export: dict[str, Any], genesis: dict[str, Any]) -> None:
    """`bazaar chain export` shows the settlements as balance changes that add up: every account's change is
    what it was paid by escrow settlements and refunds, minus what it locked, plus the block rewards it won."""
    assert export["height"] == export["finalized_height"]
    expected: dict[str, int] = {}
    locks: dict[str, tuple[str, int]] = {}
    for block in export["blocks"]:
        expected[block["proposer"]] = expected.get(block["proposer"], 0) + block["reward"]
        for tx in block["txs"]:
            body = tx["body"]
            if tx["type"] == "tx/escrow_lock":
                locks[body["id"]] = (tx["sender"], body["amount"])
                expected[tx["sender"]] = expected.get(tx["sender"], 0) - body["amount"]
            elif tx["type"] == "tx/escrow_settle":
                payer, amount = locks.pop(body["id"])
                expected[body["to"]] = expected.get(body["to"], 0) + body["amount"]
                expected[payer] = expected.get(payer, 0) + amount - body["amount"]
    assert not locks and not export["escrow"]  # every lock of every round was settled
    for account, start in genesis["balances"].items():
        assert export["balances"].get(account, 0) - start == expected.get(account, 0), account
    minted = sum(b["reward"] for b in export["blocks"])
    assert sum(export["balances"].values()) - sum(genesis["balances"].values()) == minted


def test_bazaar_round_json_settles_what_bazaar_solve_prints(net: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["round", "--dir", str(net), "--rounds", "1", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("round", "market", "height", "final_everywhere", "latency_all_ms", "left_out", "outcome"):
        assert key in line, key
    assert line["final_everywhere"] and line["left_out"] == []
    params = get_spec("hierarchical").settings(load_scenario("hierarchical-small")).params_path
    assert main(["solve", "hierarchical", "--params", str(params), "--json"]) == 0
    offline = json.loads(capsys.readouterr().out)
    assert line["outcome"]["assignment"] == offline["assignment"]
    assert line["outcome"]["lottery_weights"] == offline["lottery_weights"]
    for key in ("bundles", "miner_payments", "mesp_payments", "welfare", "optimum_welfare", "utilisation"):
        assert line["outcome"][key] == pytest.approx(offline[key], rel=1e-9, abs=1e-12), key


def test_a_killed_mesp_is_left_out_and_resyncs_after_restart(net: Path) -> None:
    launcher.net_kill(net, "mesp-1")
    t0 = time.monotonic()
    summary = next(iter(run_rounds(net, 1)))
    assert summary["final"] and summary["final_everywhere"], summary
    assert "mesp-1" not in summary["participants"] or "mesp-1" in summary["left_out"]
    assert all(a in (None, 0) for a in summary["outcome"]["assignment"])  # nobody is served by the dead MESP
    assert time.monotonic() - t0 < 120
    launcher.net_start(net, "mesp-1")
    height = summary["height"]

    def synced() -> bool:  # back in step with the chain (so also back in the gossip mesh)
        rows = {r["name"]: r for r in _rows(net)}
        return bool(rows["mesp-1"]["alive"] and (rows["mesp-1"]["height"] or 0) >= height)

    wait_until(synced, timeout=60, what=f"mesp-1 to resync to height {height}")
    after = next(iter(run_rounds(net, 1)))
    assert after["final"] and "mesp-1" in after["participants"] and "mesp-1" not in after["left_out"], after
    rows = _agree(net, after["height"])
    assert all(r["alive"] for r in rows)
    assert len({(r["finalized"], r["finalized_hash"]) for r in rows}) == 1
