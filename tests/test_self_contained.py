"""The repository cites only itself: no code, doc or data file points at notes kept outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# spelled in pieces so that this file itself passes the same grep
OUTSIDE = ("SPEC " + "§", "../" + "shared", "shared" + "/seeds", "/work" + "/shared", "libp2p" + "-lab/")
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


def test_the_libp2p_notes_the_code_cites_are_in_the_repository() -> None:
    """``libp2p.md §N`` in the transport's code and ADRs names docs/libp2p.md, a copy kept here; every section
    cited exists in it."""
    notes = (ROOT / "docs" / "libp2p.md").read_text(encoding="utf-8")
    cited = set()
    for folder in ("protocol", "node", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and path.is_file():
                text = path.read_text(encoding="utf-8")
                cited |= set(re.findall(r"libp2p\.md[^§\n]{0,40}§(\d+(?:\.\d+)?)", text))
    assert cited, "the transport cites the notes by section"
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", notes, flags=re.M))
    for section, text in re.findall(r"^## (\d+)\. [^\n]*\n(.*?)(?=^## |\Z)", notes, flags=re.M | re.S):
        headings |= {f"{section}.{item}" for item in re.findall(r"^(\d+)\. ", text, flags=re.M)}  # §6.4: item 4
    assert cited <= headings, sorted(cited - headings)
