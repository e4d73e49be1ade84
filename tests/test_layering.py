"""Dependencies point down only (docs/adr/0001-architecture.md); this test fails on any upward import."""

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


# ---------------------------------------------------------------- module cycles (lazy imports included)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _guarded_by_type_checking(tree: ast.AST) -> set[int]:
    """``id()`` of the import nodes inside ``if TYPE_CHECKING:`` bodies (they never run; ``else`` branches do)."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for sub in node.body:
                guarded |= {id(n) for n in ast.walk(sub) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return guarded


def import_graph(root: Path, packages: tuple[str, ...] = tuple(sorted(OURS))) -> dict[str, set[str]]:
    """``module -> modules of ours it imports`` anywhere in the file (functions included), ``TYPE_CHECKING``
    blocks excluded; ``from pkg import name`` counts as importing ``pkg.name`` when that is a module."""
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    modules = {_module_name_in(root, p): p for p in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _guarded_by_type_checking(tree)
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                subs = [f"{target}.{a.name}" for a in node.names]
                # "from pkg import mod" imports the module; the package itself only for names it defines
                targets = subs + ([target] if any(t not in modules for t in subs) else [])
            for t in targets:
                if t in modules and t != mod:
                    graph[mod].add(t)
    return graph


def _module_name_in(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "bazaar." + ".".join(parts)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (each holds at least one cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycles_through(graph: dict[str, set[str]], package: str) -> list[list[str]]:
    """One cycle (modules in order) per strongly connected component that holds a module of ``package``."""
    prefix = f"bazaar.{package}"
    out = []
    for component in strongly_connected(graph):
        if any(m == prefix or m.startswith(prefix + ".") for m in component):
            cycle = find_cycle({m: graph[m] & component for m in component})
            assert cycle is not None
            out.append(cycle)
    return out


# node/ is being refactored by another engineer; mark it xfail(strict=False) here only while it holds a cycle.
CYCLE_XFAIL: dict[str, str] = {}


@pytest.mark.parametrize(
    "package",
    [pytest.param(p, marks=pytest.mark.xfail(strict=False, reason=CYCLE_XFAIL[p])) if p in CYCLE_XFAIL else p
     for p in sorted(OURS)],
)
def test_no_import_cycles(package: str) -> None:
    """No module of ``package`` is on an import cycle (edges over the whole tree, lazy imports included)."""
    graph = import_graph(ROOT)
    assert any(m.startswith(f"bazaar.{package}") for m in graph)
    assert cycles_through(graph, package) == []


def test_the_cycle_check_finds_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "ledger"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from . import a  # lazy\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    graph = import_graph(tmp_path, ("ledger",))
    assert find_cycle(graph) in (["bazaar.ledger.a", "bazaar.ledger.b", "bazaar.ledger.a"],
                                 ["bazaar.ledger.b", "bazaar.ledger.a", "bazaar.ledger.b"])
    assert "bazaar.ledger.a" not in graph["bazaar.ledger.c"]
    assert cycles_through(graph, "ledger") == [find_cycle(graph)]


def test_a_cycle_is_reported_for_its_own_packages_only(tmp_path: Path) -> None:
    """A cycle among node modules (absolute, relative and ``from pkg import module`` imports, one of them lazy)
    fails the ``node`` parameter and not ``ledger``, which node imports."""
    for pkg in ("node", "node/sub", "ledger"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "ledger" / "state.py").write_text("X = 1\n")
    (tmp_path / "node" / "a.py").write_text("import bazaar.ledger.state\nfrom .sub import b\n")
    (tmp_path / "node" / "sub" / "b.py").write_text("def f():\n    from bazaar.node import c\n    return c\n")
    (tmp_path / "node" / "c.py").write_text("from .. import ledger\nfrom ..node.a import thing\n")
    graph = import_graph(tmp_path, ("ledger", "node"))
    assert graph["bazaar.node.a"] == {"bazaar.ledger.state", "bazaar.node.sub.b"}
    assert graph["bazaar.node.c"] == {"bazaar.ledger", "bazaar.node.a"}  # "from .. import ledger": the package
    assert cycles_through(graph, "ledger") == []
    [cycle] = cycles_through(graph, "node")
    assert set(cycle) == {"bazaar.node.a", "bazaar.node.sub.b", "bazaar.node.c"} and cycle[0] == cycle[-1]
