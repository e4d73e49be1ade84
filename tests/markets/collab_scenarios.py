"""Collab scenario variants for tests: a shipped scenario whose rounds run another protocol (docs/adr/0160)."""

from __future__ import annotations

from pathlib import Path

from bazaar.node.scenario import load_scenario


def with_protocol(scenario: str, protocol: str, folder: Path) -> Path:
    """A copy of a shipped collab scenario whose rounds run ``protocol`` (its parameter file stays shipped)."""
    text = load_scenario(scenario).source.read_text()
    assert "\n[mechanism]\n" in text
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{scenario}-{protocol}.toml"
    out.write_text(text.replace("\n[mechanism]\n", f'\n[mechanism]\nprotocol = "{protocol}"\n', 1))
    return out
