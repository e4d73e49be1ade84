"""Shipped data of Bazaar networks: scenario files and solver parameter files (package data).

Three kinds of shipped TOML files, each found by name inside the installed package (so they work from a wheel
as well as from a checkout): ``scenario`` (``deploy/scenarios/<name>.toml``), ``params``
(``deploy/scenarios/params/<name>.toml``) and ``testnet`` (``deploy/testnets/<name>.toml``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: kind -> folder (relative to this package) holding the shipped files of that kind
FOLDERS = {"scenario": ("scenarios",), "params": ("scenarios", "params"), "testnet": ("testnets",)}


def shipped_folder(kind: str) -> Path:
    """The installed folder of one kind of shipped file (``"scenario"`` or ``"params"``)."""
    return Path(str(resources.files(__name__).joinpath(*FOLDERS[kind])))


def shipped_names(kind: str) -> list[str]:
    """Names (file stems) of the shipped files of one kind, sorted."""
    return sorted(p.stem for p in shipped_folder(kind).glob("*.toml"))


def shipped_file(kind: str, name: str) -> Path:
    """Path of the shipped file ``name`` (with or without ``.toml``) of one kind.

    Raises:
        FileNotFoundError: no file of that name is shipped; the message lists the shipped names.
    """
    stem = name[: -len(".toml")] if name.endswith(".toml") else name
    path = shipped_folder(kind) / f"{stem}.toml"
    if "/" in name or not stem or not path.is_file():
        what = {"scenario": "scenario", "testnet": "testnet"}.get(kind, "parameter file")
        raise FileNotFoundError(f"no shipped {what} {name!r} (shipped: {', '.join(shipped_names(kind))})")
    return path


def scenario_file(name: str) -> Path:
    """Path of a shipped scenario (``deploy/scenarios/<name>.toml``).

    Raises:
        FileNotFoundError: no scenario of that name is shipped.
    """
    return shipped_file("scenario", name)


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios."""
    return shipped_names("scenario")
