"""The lower defects of issue 12's probe: a group/world-readable key file is one line at start, a SIGSTOPped
node is "stopped" (not alive) in ``net status``, a truncated database is a JSON error under ``--json``, and a
chain that lost finalized blocks (a half-truncated WAL) fails ``chain verify`` as a regression."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.node.cli import main
from bazaar.node.launcher import NetDir, prepare_network
from bazaar.node.scenario import load_scenario
from bazaar.node.waiting import wait_until

from .harness import small_scenario, two_round_data_dirs


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-round in-memory network's data dirs."""
    return two_round_data_dirs(tmp_path_factory.mktemp("lower"))


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, dst / f.name)
    return dst


def test_a_readable_key_file_is_refused_in_one_line(tmp_path: Path) -> None:
    configs = prepare_network(load_scenario(small_scenario(tmp_path)), NetDir(tmp_path / "net"), log_json=False)
    key = configs["consumer-0"].data_dir / "node.key"
    key.chmod(0o644)
    run = subprocess.run([sys.executable, "-m", "bazaar.node.cli", "node", "--config",
                          str(configs["consumer-0"].data_dir / "node.toml")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "readable by group/others" in run.stderr, run.stderr
    with pytest.raises(Exception) as raised:  # the launcher's own preparation says the same in one line
        prepare_network(load_scenario(small_scenario(tmp_path)), NetDir(tmp_path / "net"), log_json=False)
    assert "readable by group/others" in str(raised.value) and "\n" not in str(raised.value)


def test_a_sigstopped_node_is_stopped_not_alive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "nodes" / "paused" / "node.toml"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(config)])
    try:
        node = {"role": "miner", "pid": proc.pid, "config": str(config), "listen": "/ip4/127.0.0.1/tcp/1",
                "key": None, "http_port": 1}
        (tmp_path / "net.json").write_text(json.dumps({"scenario": "x.toml", "name": "x", "nodes": {"paused": node}}))
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: Path(f"/proc/{proc.pid}/stat").read_text().split(") ", 1)[-1][:1] in "Tt",
                   timeout=10, interval=0.01, what="the kernel to stop the process")
        assert main(["net", "status", "--dir", str(tmp_path), "--json"]) == 1
        captured = capsys.readouterr()
        (row,) = json.loads(captured.out)["nodes"]
        assert row["alive"] is False and row["state"] == "stopped"
        assert "paused (stopped)" in captured.err
        os.kill(proc.pid, signal.SIGCONT)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("action", ["show", "export", "verify"])
def test_a_truncated_database_is_a_json_error(action: str, data_dirs: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(data_dirs / "consumer-1", tmp_path / "copy")
    db = copy / "chain.sqlite3"
    for suffix in ("-wal", "-shm"):
        (copy / f"chain.sqlite3{suffix}").unlink(missing_ok=True)
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    assert main(["chain", action, "--data-dir", str(copy), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["error"]


def test_lost_finalized_blocks_fail_verify_as_a_regression(data_dirs: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(data_dirs / "consumer-2", tmp_path / "copy")
    assert main(["chain", "verify", "--data-dir", str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["finalized_height"] == 2
    db = sqlite3.connect(copy / "chain.sqlite3")  # what a half-truncated WAL leaves: the last block is gone
    db.execute("DELETE FROM certificates WHERE height = 2")
    db.execute("DELETE FROM blocks WHERE height = 2")
    db.commit()
    db.close()
    assert main(["chain", "verify", "--data-dir", str(copy), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["finalized_height"] == 1 and report["recorded_finalized"] == 2
    assert "regress" in report["error"]
