"""``bazaar testnet run`` end to end, multi-process on 127.0.0.1 (docs/testnets.md): a short run with every
perturbation kind (kill/restart mid-round, pause/resume, disconnect/heal, clock skew), its JSON and its invariants;
a deliberately tampered chain database fails the re-check with exit 1; a short version of a shipped testnet."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bazaar.node.testnet import INVARIANTS

pytestmark = pytest.mark.network

# The pause and the partition last two rounds: neither round gets a certificate of its own (two of four validators
# are out), so the paused and the cut node must pull past PoL heights they cannot re-check (docs/adr/0199).
SHORT = """
name = "ci-short"
scenario = "ai-bazaar-small"
rounds = 6
seed = 3
settle_timeout_s = 30

[clock_skew_ms]
"consumer-2" = 1500

[[perturbations]]
round = 2
at = "settle"
action = "kill"
nodes = ["random-follower"]
for_rounds = 1

[[perturbations]]
round = 3
action = "pause"
nodes = ["consumer-0"]
for_rounds = 2

[[perturbations]]
round = 3
action = "disconnect"
nodes = ["consumer-1"]
for_rounds = 2

[[perturbations]]
round = 3
action = "clock-skew"
nodes = ["consumer-2"]
skew_ms = -2500
"""
KEYS = {"testnet", "rounds", "settled", "perturbations", "invariants", "tokens_lost", "honest_crashed", "resync_s"}


def _bazaar(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bazaar.node.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _one_object(out: str) -> dict[str, Any]:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return dict(json.loads(lines[0]))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("testnet")
    (folder / "short.toml").write_text(SHORT)
    done = _bazaar("testnet", "run", str(folder / "short.toml"), "--json", "--quiet", "--root", str(folder / "net"))
    return folder / "net", done


def test_a_short_run_applies_every_perturbation_and_every_invariant_holds(
        short_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, done = short_run
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    result = _one_object(done.stdout)
    assert set(result) >= KEYS
    assert result["testnet"] == "ci-short" and result["rounds"] == 6 and 1 <= result["settled"] <= 6
    assert set(result["invariants"]) == set(INVARIANTS) and all(result["invariants"].values()), result["problems"]
    actions = [p["action"] for p in result["perturbations"]]
    assert {"kill", "restart", "pause", "resume", "disconnect", "heal", "clock-skew"} <= set(actions)
    assert all(p["ok"] for p in result["perturbations"]), result["perturbations"]
    assert result["tokens_lost"] == 0 and result["honest_crashed"] == []
    assert len(result["resync_s"]) == 1 and result["resync_s"][0] >= 0
    log = (root / "nodes" / "consumer-1" / "node.log").read_text()
    assert "node.partition blocked=['consumer-0', 'consumer-2', 'cpp']" in log  # the peer filter was applied
    assert "node.partition blocked=[]" in log  # and healed
    toml = (root / "nodes" / "consumer-2" / "node.toml").read_text()
    assert "clock_skew_ms = 1500" in toml
    down = _bazaar("net", "status", "--dir", str(root), "--json")
    assert not any(row["alive"] for row in json.loads(down.stdout)["nodes"])  # the run stopped every node


def test_a_tampered_chain_fails_the_recheck_with_exit_1(
        short_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    root, done = short_run
    assert done.returncode == 0
    copy = tmp_path / "net"
    shutil.copytree(root, copy)
    ok = _bazaar("testnet", "check", "--root", str(copy), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    node = copy / "nodes" / "consumer-2"
    with sqlite3.connect(node / "chain.sqlite3") as db:  # block 2's bytes replaced by block 1's
        raw = db.execute("SELECT raw FROM blocks WHERE height = 1").fetchone()[0]
        db.execute("UPDATE blocks SET raw = ? WHERE height = 2", (raw,))
    bad = _bazaar("testnet", "check", "--root", str(copy), "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    result = _one_object(bad.stdout)
    assert result["invariants"]["tokens-conserved"] is False
    assert any("consumer-2" in why for why in result["problems"]["tokens-conserved"])
    audit = _bazaar("chain", "audit", "--data-dir", str(node), "--json")
    assert audit.returncode == 1 and _one_object(audit.stdout)["first_bad"] == 2


def test_a_short_crash_leader(tmp_path: Path) -> None:
    done = _bazaar("testnet", "run", "crash-leader", "--rounds", "4", "--json", "--quiet", "--root",
                   str(tmp_path / "net"))
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    result = _one_object(done.stdout)
    assert result["rounds"] == 3  # round 3 cannot run: its leader is down
    kill, restart = result["perturbations"]
    assert (kill["round"], kill["at"], kill["action"], kill["nodes"]) == (2, "settle", "kill", ["cpp"])
    assert (restart["round"], restart["action"], restart["nodes"]) == (4, "restart", ["cpp"])
    assert all(result["invariants"].values()), result["problems"]
    assert result["tokens_lost"] == 0 and len(result["resync_s"]) == 1
