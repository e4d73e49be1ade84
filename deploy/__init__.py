"""Scenario files (package data), container and cluster manifests for Bazaar networks."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def scenario_file(name: str) -> Path:
    """Path of a shipped scenario (``deploy/scenarios/<name>.toml``).

    Raises:
        FileNotFoundError: no scenario of that name is shipped.
    """
    path = Path(str(resources.files(__name__).joinpath("scenarios", f"{name}.toml")))
    if not path.is_file():
        shipped = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise FileNotFoundError(f"no shipped scenario {name!r} (shipped: {', '.join(shipped)})")
    return path


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    folder = Path(str(resources.files(__name__).joinpath("scenarios")))
    return sorted(p.stem for p in folder.glob("*.toml"))
