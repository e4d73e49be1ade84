"""The CLI for people and for programs (docs/cli.md): tables and sentences by default, the old JSON documents
under ``--json``; ``bazaar net logs``; one line and a documented exit code for every bad input.

A "network" here is a folder as ``bazaar net up`` lays it out whose recorded PIDs run no node (this test
process's own PID: alive, but not running the node command of that config), so every node reads as down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.node import cli_logs
from bazaar.node.cli import main
from bazaar.node.commands import _past_phases
from bazaar.node.output import names_of_data_dir, tokens

CPP_KEY, CONSUMER_KEY = "11" * 32, "22" * 32


def _network(root: Path) -> Path:
    """A two-node network folder (cpp logging text lines, consumer-0 JSON lines) with no node running."""
    nodes = {}
    for name, role, key in (("cpp", "cpp", CPP_KEY), ("consumer-0", "consumer", CONSUMER_KEY)):
        (root / "nodes" / name).mkdir(parents=True)
        nodes[name] = {"role": role, "pid": os.getpid(), "config": str(root / "nodes" / name / "node.toml"),
                       "key": key, "http_port": 40000 if name == "cpp" else 40001}
    (root / "net.json").write_text(json.dumps({"scenario": "ai-bazaar-small", "name": "ai-bazaar-small",
                                               "nodes": nodes}))
    (root / "nodes" / "cpp" / "node.log").write_text(
        "10:00:00.100 I cpp node.ready height=0 http_port=40000\n"
        "10:00:02.000 W cpp round.late round=1 missing=consumer-0\n"
        "Fatal Python error: Segmentation fault\n"       # no timestamp: stamped with the line before
        "10:00:03.000 I cpp block.final height=1 final=True proposer=2222222222222222\n")
    # a fixed file date (noon), not "now": just after midnight, today's 10:00 lies in the future and a text line's
    # time of day resolves to yesterday's (the run that found it started at 00:04)
    dt = __import__("datetime").datetime
    stamp = dt(2026, 1, 2, 12, 0, 0).timestamp()
    day = dt.fromtimestamp(stamp).replace(hour=10, minute=0, second=1, microsecond=0)
    lines = [{"ts": day.timestamp(), "level": "info", "node": "consumer-0", "event": "node.ready", "height": 0},
             {"ts": day.timestamp() + 1.5, "level": "info", "node": "consumer-0", "event": "block.imported",
              "height": 1}]
    (root / "nodes" / "consumer-0" / "node.log").write_text("".join(json.dumps(x) + "\n" for x in lines))
    os.utime(root / "nodes" / "cpp" / "node.log", (stamp, stamp))
    return root


def test_tokens_are_printed_as_tokens_not_micro_tokens() -> None:
    assert tokens(104_787_023_560) == "104,787.02356"
    assert tokens(100_000_000) == "100"
    assert tokens(-1) == "-0.000001"
    assert tokens(None) == "-"


def test_net_logs_merges_text_and_json_lines_by_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    assert main(["net", "logs", "--dir", str(root), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    order = [(r["node"], r.get("event") or r["text"]) for r in rows]
    assert order == [("cpp", "node.ready"), ("consumer-0", "node.ready"), ("cpp", "round.late"),
                     ("cpp", "Fatal Python error: Segmentation fault"), ("consumer-0", "block.imported"),
                     ("cpp", "block.final")]
    assert rows[-1]["final"] is True and rows[-1]["height"] == 1  # k=v values read back as numbers and booleans
    assert rows[-1]["proposer"] == "2222222222222222"  # a key prefix stays a string
    assert rows[2]["level"] == "warning" and rows[3]["ts"] == rows[2]["ts"]

    assert main(["net", "logs", "--dir", str(root)]) == 0  # for people: time, node, level, event, fields
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("10:00:00.100 cpp ") and "node.ready" in text[0] and "http_port=40000" in text[0]
    assert "warn" in text[2] and "round.late" in text[2]
    assert "proposer=consumer-0" in text[-1]  # a key prefix shown as the node's name

    assert main(["net", "logs", "--dir", str(root), "--node", "consumer-0", "--lines", "1", "--json"]) == 0
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (only["node"], only["event"]) == ("consumer-0", "block.imported")


def test_net_logs_follow_ends_when_every_node_has_exited(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    assert main(["net", "logs", "--dir", str(root), "-f", "--json"]) == 0  # every node down: a last read, done
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_a_log_file_is_read_in_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "node.log"
    path.write_text('{"ts": 1.0, "level": "info", "event": "a"}\n{"ts": 2.0, "lev')
    log = cli_logs.LogFile("n", path)
    assert [r.event for r in log.read()] == ["a"]  # the partial line waits for its end
    with path.open("a") as fh:
        fh.write('el": "info", "event": "b"}\n')
    assert [r.event for r in log.read()] == ["b"]
    assert log.read() == []
    path.write_text('{"ts": 3.0, "level": "info", "event": "c"}\n')  # truncated and rewritten: from the start
    assert [r.event for r in log.read()] == ["c"]


def test_net_logs_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    assert main(["net", "logs", "--dir", str(root), "--node", "nobody"]) == 2
    assert "no node 'nobody'" in capsys.readouterr().err
    assert main(["net", "logs", "--dir", str(root), "--lines", "-1"]) == 2
    assert main(["net", "logs", "--dir", str(tmp_path / "typo")]) == 2
    assert "no network" in capsys.readouterr().err


def test_net_status_for_people_is_a_table_and_exits_1_when_nodes_are_down(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    assert main(["net", "status", "--dir", str(root)]) == 1
    out, err = capsys.readouterr()
    header = next(line for line in out.splitlines() if line.split()[:2] == ["node", "role"])
    assert header.split() == ["node", "role", "pid", "alive", "height", "finalized", "peers", "sync", "RSS", "MB"]
    assert any(line.split()[:4] == ["consumer-0", "consumer", str(os.getpid()), "no"] for line in out.splitlines())
    assert "explorer: http://127.0.0.1:40000/" in out
    assert "2 of 2 nodes down: cpp, consumer-0" in err


def test_net_down_says_what_it_stopped_and_json_keeps_its_shape(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    assert main(["net", "down", "--dir", str(root)]) == 0
    assert capsys.readouterr().out.strip() == f"no node of {root} was running"
    assert main(["net", "down", "--dir", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": []}
    assert main(["net", "down", "--dir", str(tmp_path / "typo")]) == 2


def test_round_says_when_it_runs_past_the_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    _past_phases({"round": 2}, (2, "eq"))
    assert capsys.readouterr().err == ""
    _past_phases({"round": 3}, (2, "eq"))
    assert "round 3 is past the scenario's 2 scripted rounds: it repeats the last phase ('eq')" in \
        capsys.readouterr().err


def test_names_of_a_data_dir_come_from_the_network(tmp_path: Path) -> None:
    root = _network(tmp_path / "net")
    assert names_of_data_dir(root / "nodes" / "cpp") == {CPP_KEY: "cpp", CONSUMER_KEY: "consumer-0"}
    assert names_of_data_dir(tmp_path / "elsewhere") == {}


def test_a_permission_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    real = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "net.json":  # as for a folder of another user (root reads everything: simulated)
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)
    assert main(["net", "status", "--dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"error: Permission denied: {root / 'net.json'}"


def test_a_corrupt_or_non_utf8_net_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _network(tmp_path / "net")
    (root / "net.json").write_bytes(b"\xff\xfe{not json")
    code = main(["net", "status", "--dir", str(root)])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_a_corrupt_chain_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "node"
    data.mkdir()
    (data / "chain.sqlite3").write_bytes(os.urandom(4096))
    (data / "genesis.json").write_text("{}")
    for action in ("show", "verify", "export"):
        code = main(["chain", action, "--data-dir", str(data)])
        err = capsys.readouterr().err
        assert code in (1, 2) and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (action, err)


def test_experiment_list_as_json_and_a_missing_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"name", "title"} == set(listed[0]) and any(e["name"] == "ai-bazaar-convergence" for e in listed)
    assert main(["experiment"]) == 2
    assert "which experiment" in capsys.readouterr().err


def test_net_logs_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    root = _network(tmp_path / "net")
    with (root / "nodes" / "cpp" / "node.log").open("a") as fh:  # more than a pipe buffer
        fh.writelines(f"10:00:04.{i % 1000:03d} I cpp filler n={i}\n" for i in range(5000))
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run([sys.executable, "-m", "bazaar.node.cli", "net", "logs", "--dir", str(root)],
                          stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    os.close(write_end)
    assert proc.returncode == 141 and b"Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(("solver", "shown"), [("collab-pricing", "iterations"), ("collab-portfolio", "payoff"),
                                               ("tbcim-stackelberg", "es_profit"),
                                               ("cloudchain-allocate", "provider_profit")])
def test_solvers_print_tables_for_people_and_one_json_line_for_programs(
        solver: str, shown: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", solver, "--params", solver]) == 0
    text = capsys.readouterr().out
    assert shown in text and any(line.split()[:2] == ["quantity", "value"] for line in text.splitlines())
    with pytest.raises(ValueError):
        json.loads(text)
    assert main(["solve", solver, "--params", solver, "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1 and shown in json.loads(out)


@pytest.mark.parametrize(("action", "sentence", "doc_key"), [
    ("kill", "killed cpp (pid 4321, SIGKILL sent)", "killed"),
    ("pause", "paused cpp (pid 4321, SIGSTOP sent)", "paused"),
    ("resume", "resumed cpp (pid 4321, SIGCONT sent)", "resumed"),
    ("start", "started cpp (pid 4321); it resyncs its chain", "started"),
])
def test_one_node_actions_print_a_sentence_or_their_json(
        action: str, sentence: str, doc_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bazaar.node import launcher

    root = _network(tmp_path / "net")
    calls = []

    def act(folder: Path, name: str) -> object:  # the launcher's action itself is tested with real processes
        calls.append((folder, name))
        return {"pid": 4321} if action == "start" else 4321

    monkeypatch.setattr(launcher, f"net_{action}", act)
    assert main(["net", action, "--dir", str(root), "--node", "cpp"]) == 0
    assert capsys.readouterr().out.strip() == sentence
    assert main(["net", action, "--dir", str(root), "--node", "cpp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {doc_key: "cpp", "pid": 4321}
    assert calls == [(root, "cpp")] * 2
    assert main(["net", action, "--dir", str(root)]) == 2  # which node?
