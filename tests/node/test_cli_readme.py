"""Every ``bazaar`` command the README and docs/ show is one the CLI accepts, and every shipped name it passes to
``--params`` / ``--scenario`` / ``testnet run`` is shipped (so the command works from an installed wheel too)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bazaar.deploy import shipped_file
from bazaar.node.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"NAME", "P.toml", "my.toml", "R", "N", "DIR", "D", "MECHANISM", "COMMAND", "FILE"}


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for line in doc.read_text(encoding="utf-8").splitlines():
            if not line.startswith("    ") or "bazaar " not in line:
                continue  # only the indented command blocks
            text = line.split(" # ")[0].strip()
            for part in re.split(r"&&|\|", text):
                words = shlex.split(part.replace(">", " > ").split(" > ")[0])
                if words[:1] == ["bazaar"] and len(words) > 1:
                    found.append((f"{doc.name}: {part.strip()}", words[1:]))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_parses_and_names_shipped_files(where: str, argv: list[str]) -> None:
    if any(w in PLACEHOLDERS or "<" in w or w.endswith("...") or w.startswith("[") for w in argv):
        pytest.skip("a template, not a command")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as err:
        pytest.fail(f"{where}: the CLI refuses it (exit {err.code})")
    for option, kind in (("params", "params"), ("scenario", "scenario")):
        values = getattr(args, option, None)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and "/" not in value and not value.endswith(".toml"):
                assert shipped_file(kind, value).is_file(), f"{where}: {value} is not a shipped {kind}"
    if argv[:2] == ["testnet", "run"] and "/" not in argv[2] and not argv[2].endswith(".toml"):
        assert shipped_file("testnet", argv[2]).is_file(), where
