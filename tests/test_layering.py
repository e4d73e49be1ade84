"""Dependencies point down only (SPEC §2, STYLE "The house"); this test fails on any upward import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> what of ours it may import, and which third-party roots it must not touch
ALLOWED = {
    "mechanisms": (set(), {"trio", "libp2p", "multiaddr", "sqlite3", "socket", "asyncio"}),
    "protocol": (set(), {"sqlite3"}),
    "ledger": ({"protocol"}, {"trio", "libp2p", "multiaddr", "socket", "asyncio"}),
    "node": ({"protocol", "ledger", "mechanisms", "deploy"}, {"asyncio"}),
    "deploy": (set(), {"asyncio"}),
}
OURS = {"node", "protocol", "mechanisms", "ledger", "deploy"}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            # relative import leaving the package, e.g. "from ..ledger import x" from node/sub/mod.py
            rel = path.relative_to(ROOT).parts
            base = rel[: len(rel) - node.level]
            target = ".".join((*base, node.module or ""))
            found.append(("bazaar." + target, node.lineno))
    return found


def _violations(package: str) -> list[str]:
    may_use, banned = ALLOWED[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name, line in _imports(path):
            parts = name.split(".")
            if parts[0] == "bazaar" and len(parts) > 1 and parts[1] in OURS:
                if parts[1] != package and parts[1] not in may_use:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            elif parts[0] in OURS:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} without the bazaar prefix")
            elif parts[0] in banned:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_down(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert _violations(package) == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from bazaar.node import cli\nimport trio\n")
    names = [n for n, _ in _imports(bad)]
    assert names == ["bazaar.node", "trio"]
