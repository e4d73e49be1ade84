"""The repository cites only itself: no code, doc or data file points at notes kept outside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# spelled in pieces so that this file itself passes the same grep
OUTSIDE = ("SPEC " + "§", "../" + "shared", "shared" + "/seeds")
SKIP = {".git", ".venv", "build", "dist", "runs", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".hypothesis"}


def test_no_reference_to_files_outside_the_repository() -> None:
    found = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if (path.suffix not in (".py", ".md", ".toml") or not path.is_file()
                or any(p in SKIP or p.endswith(".egg-info") for p in rel.parts)):
            continue
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{rel}:{no}: {needle}" for needle in OUTSIDE if needle in line]
    assert found == []
