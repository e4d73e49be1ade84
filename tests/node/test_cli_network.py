"""The network commands' contract: chain verify/export on real data dirs, clear errors and exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bazaar.node.cli import main
from bazaar.node.params import ParamError
from bazaar.node.scenario import load_scenario

from .harness import small_scenario, two_round_data_dirs


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-round in-memory network's data dirs (the same files a process network writes)."""
    return two_round_data_dirs(tmp_path_factory.mktemp("cli"))


def test_chain_verify_and_export(data_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chain", "verify", "--data-dir", str(data_dirs / "consumer-1"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["height"] == 2 and report["conserved"]
    assert main(["chain", "export", "--data-dir", str(data_dirs / "cpp"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [b["height"] for b in exported["blocks"]] == [1, 2]
    for key in ("balances", "escrow", "stake", "supply"):
        assert key in exported
    assert set(exported["supply"]) >= {"genesis", "minted", "burned"}
    assert {"height", "hash", "parent", "proposer", "txs"} <= set(exported["blocks"][0])
    held = sum(exported["balances"].values()) + sum(exported["stake"].values()) + sum(
        e["amount"] for e in exported["escrow"].values())
    s = exported["supply"]
    assert held == s["genesis"] + s["minted"] - s["burned"]


def test_chain_verify_names_a_corrupted_block(data_dirs: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in (data_dirs / "consumer-2").iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    db = sqlite3.connect(copy / "chain.sqlite3")
    (raw,) = db.execute("SELECT raw FROM blocks WHERE height = 2").fetchone()
    flipped = bytearray(raw)
    flipped[len(flipped) // 2] ^= 0x01
    db.execute("UPDATE blocks SET raw = ? WHERE height = 2", (bytes(flipped),))
    db.commit()
    db.close()
    assert main(["chain", "verify", "--data-dir", str(copy), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and report["height"] == 2


def test_bad_inputs_get_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chain", "verify", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["node", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["net", "status", "--dir", str(tmp_path)]) == 2  # no network: a usage error
    assert "no network" in capsys.readouterr().err
    assert main(["round", "--dir", str(tmp_path), "--rounds", "0"]) == 2


def test_scenario_errors_name_the_key(tmp_path: Path) -> None:
    good = small_scenario(tmp_path).read_text()
    bad = tmp_path / "bad.toml"
    for needle, replacement, key in (
        ("demand_s = 2.0", "demand_s = -1.0", "demand_s"),
        ("consumer = 3", "consumer = 0", "roles.consumer"),
        ("[economy]", "[economy]\nsurprise = 1", "surprise"),
        ('consensus = "pol"', 'consensus = "magic"', "consensus"),
    ):
        bad.write_text(good.replace(needle, replacement))
        with pytest.raises(ParamError) as err:
            load_scenario(bad)
        assert key in str(err.value)
