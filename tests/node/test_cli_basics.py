"""CLI basics: --version, help on every option, folders without a network, net status of a dead node,
non-UTF-8 files and a closed output pipe end in a one-line error and a documented exit code, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import bazaar
from bazaar.node.cli import build_parser, main
from bazaar.node.launcher import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert capsys.readouterr().out.strip() == f"bazaar {version}" == f"bazaar {bazaar.__version__}"


def _walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action | None, str]]:
    """(command path, action, label) for every argument and every sub-command (action None) of the tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield path, action, "(sub-commands)"
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", None, helps.get(name) or ""
                yield from _walk(sub, f"{path} {name}")
        else:
            yield path, action, "/".join(action.option_strings) or action.dest


def test_every_option_and_command_has_help() -> None:
    missing = []
    for path, action, label in _walk(build_parser(), "bazaar"):
        text = label if action is None else action.help
        if not text or text == argparse.SUPPRESS or not text.strip():
            missing.append(path if action is None else f"{path} {label}")
    assert missing == []


def test_help_lists_the_exit_codes() -> None:
    text = build_parser().format_help()
    assert "exit codes:" in text
    for code, meaning in (("0", "success"), ("1", "runtime failure"), ("2", "bad usage"), ("130", "interrupted"),
                          ("141", "pipe")):
        assert any(line.split()[:1] == [code] and meaning in line for line in text.splitlines()), code


@pytest.mark.parametrize("action", ["down", "status", "kill", "start"])
def test_a_folder_without_a_network_is_exit_2(action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    for folder in (tmp_path / "typo", tmp_path):  # absent, and present but empty
        assert main(["net", action, "--dir", str(folder), "--node", "cpp"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: no network in {folder}")
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_round_on_a_folder_without_a_network_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["round", "--dir", str(tmp_path / "typo")]) == 2
    assert capsys.readouterr().err.startswith("error: no network in")


@pytest.fixture
def fake_net(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A network folder of two nodes: ``alive`` a process whose command line holds its config (as a node's
    does), ``dead`` a PID that runs no node. Neither serves HTTP (their status fields are null)."""
    configs = {name: tmp_path / "nodes" / name / "node.toml" for name in ("alive", "dead")}
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(configs["alive"])])
    nodes = {name: {"role": "miner", "pid": proc.pid if name == "alive" else os.getpid(), "config": str(cfg),
                    "listen": "/ip4/127.0.0.1/tcp/1", "key": None, "http_port": free_port()}
             for name, cfg in configs.items()}
    (tmp_path / "net.json").write_text(json.dumps({"scenario": "x.toml", "name": "x", "nodes": nodes}))
    try:
        yield tmp_path, proc
    finally:
        proc.kill()
        proc.wait()


def test_net_status_exits_1_when_a_node_is_down(fake_net: tuple[Path, subprocess.Popen[bytes]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = fake_net
    assert main(["net", "status", "--dir", str(root), "--json"]) == 1
    captured = capsys.readouterr()
    rows = {r["name"]: r for r in json.loads(captured.out)["nodes"]}  # the JSON shape is unchanged
    assert (rows["alive"]["alive"], rows["dead"]["alive"]) == (True, False)
    assert captured.err.strip() == "1 of 2 nodes down: dead"
    assert main(["net", "status", "--dir", str(root)]) == 1


def test_net_status_exits_0_when_every_node_runs(fake_net: tuple[Path, subprocess.Popen[bytes]],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = fake_net
    info = json.loads((root / "net.json").read_text())
    del info["nodes"]["dead"]
    (root / "net.json").write_text(json.dumps(info))
    assert main(["net", "status", "--dir", str(root), "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)["nodes"]] == ["alive"]


LATIN1 = 'n = 8\nname = "caf\xe9"\n'.encode("latin-1")


@pytest.mark.parametrize("argv", [
    ["solve", "ai-bazaar", "--params"],
    ["solve", "hierarchical", "--params"],
    ["solve", "tbcim-auction", "--params"],
    ["net", "up", "--dir", "NET", "--scenario"],
])
def test_a_file_that_is_not_utf8_is_one_line_exit_2(argv: list[str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(LATIN1)
    argv = [str(tmp_path / "net") if a == "NET" else a for a in argv]
    assert main([*argv, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "UTF-8" in err
    assert not (tmp_path / "net").exists()


def test_an_unreadable_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "secret.toml"
    bad.write_text("n = 8\n")
    real_open = Path.open

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        if self == bad:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", denied)  # a chmod 000 file, even when the tests run as root
    assert main(["solve", "ai-bazaar", "--params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "Permission denied" in err


def test_a_closed_output_pipe_is_no_traceback(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command writes: every write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "bazaar.node.cli", "experiment", "--list"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=tmp_path)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141
