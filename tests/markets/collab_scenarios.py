"""Collab scenario variants for tests: a shipped scenario whose rounds run another protocol (docs/adr/0160)."""

from __future__ import annotations

from pathlib import Path

from bazaar.node.scenario import load_scenario


def with_protocol(scenario: str, protocol: str, folder: Path, max_iter: int | None = None) -> Path:
    """A copy of a shipped collab scenario whose rounds run ``protocol`` (its parameter file stays shipped, or
    is copied beside it with ``max_iter`` changed)."""
    sc = load_scenario(scenario)
    text = sc.source.read_text()
    assert "\n[mechanism]\n" in text
    folder.mkdir(parents=True, exist_ok=True)
    if max_iter is not None:
        params = sc.resolve_file(str(sc.market["params"]), "mechanism.params")
        lines = params.read_text().splitlines()
        lines = [f"max_iter = {max_iter}" if ln.startswith("max_iter") else ln for ln in lines]
        (folder / "params.toml").write_text("\n".join(lines) + "\n")
        text = "\n".join('params = "params.toml"' if ln.startswith("params") else ln for ln in text.splitlines())
    out = folder / f"{scenario}-{protocol}.toml"
    out.write_text(text.replace("\n[mechanism]\n", f'\n[mechanism]\nprotocol = "{protocol}"\n', 1))
    return out
