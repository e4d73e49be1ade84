"""No generic module names a market or a role (MARKETS.md): the runtime, launcher, rounds, demo, scenario
loader, chain service, consensus drivers and CLI read the registry. Docstrings are examples and may."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from bazaar.node.markets.registry import MARKETS, get_spec

ROOT = Path(__file__).resolve().parents[1]
MARKET_OWN = ("node/markets/", "node/solve/", "node/experiments/", "node/train.py")
"""A market's own files: its folder under node/markets/, its solve, experiment and training modules."""
REGISTRIES = {"node/markets/registry.py", "node/cli_registry.py"}
"""The registries name markets (they are where a market is registered), never roles."""
FUTURE_MARKETS = ("tbcim", "collab", "cloudchain")


def _generic_modules() -> list[Path]:
    out = []
    for path in sorted((ROOT / "node").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(MARKET_OWN) and rel not in ("node/markets/app.py", "node/markets/context.py",
                                                      "node/markets/spec.py", "node/markets/registry.py",
                                                      "node/markets/__init__.py"):
            continue
        out.append(path)
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    for node in ast.walk(tree):  # attribute docstrings: a string statement right after an assignment
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for prev, stmt in itertools.pairwise(body):
                if (isinstance(prev, (ast.Assign, ast.AnnAssign)) and isinstance(stmt, ast.Expr)
                        and isinstance(stmt.value, ast.Constant)):
                    ids.add(id(stmt.value))
    return ids


def names_in(path: Path, words: set[str]) -> list[str]:
    """Occurrences of ``words`` as string tokens or identifiers in a module, docstrings excluded."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    found = []
    pattern = re.compile(r"(?<![a-z0-9_-])(" + "|".join(map(re.escape, sorted(words))) + r")(?![a-z0-9_])")
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {m!r}" for m in pattern.findall(node.value)]
        elif isinstance(node, ast.Name) and node.id in words:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} identifier {node.id}")
    return found


def _roles() -> set[str]:
    return {r for m in MARKETS for r in get_spec(m).role_names}


@pytest.mark.parametrize("path", _generic_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_generic_module_names_no_market_and_no_role(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    words = _roles() | (set() if rel in REGISTRIES else {*MARKETS, *FUTURE_MARKETS})
    assert names_in(path, words) == []


def test_the_check_catches_a_market_name(tmp_path: Path) -> None:
    bad = ROOT / "node" / "_probe_generic.py"
    try:
        bad.write_text('"""Docstrings may say cpp."""\nLEADER = ("cpp",)\nx = f"round of {1} hierarchical"\n')
        found = names_in(bad, {"cpp", "hierarchical"})
        assert len(found) == 2
    finally:
        bad.unlink()
