"""What a market may add to the simulator, in its own folder (``node/markets/<market>/sim.py`` exposing ``SIM``).

A market without one is simulated with the generic rules: ``--agents N`` sets the count of its most numerous
non-leading role, and its telemetry rows carry its round ``metrics``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..markets.spec import MarketSpec

Populate = Callable[[dict[str, Any], int], int]
"""``populate(scenario_document, agents) -> hosted agents``: rewrite the scenario for ``agents`` agents in place."""
Extract = Callable[[dict[str, Any], Path], dict[str, Any]]
"""``extract(round_summary, scenario_file) -> telemetry fields`` (price, welfare, jain, equilibrium_gap, ...)."""


@dataclass(frozen=True)
class SimHooks:
    """A market's simulator hooks (each optional)."""

    populate: Populate | None = None
    extract: Extract | None = None
    hosts: str = ""
    """The role whose nodes host agents (not counted as agents themselves), when ``populate`` hosts them."""


def sim_hooks(spec: MarketSpec) -> SimHooks:
    """The market's hooks: ``SIM`` of the ``sim`` module beside its role apps, or none."""
    package = spec.roles[0].app.partition(":")[0].rsplit(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.sim")
    except ModuleNotFoundError as err:
        if err.name != f"{package}.sim":
            raise
        return SimHooks()
    hooks = getattr(module, "SIM", None)
    if not isinstance(hooks, SimHooks):
        raise TypeError(f"{package}.sim.SIM is not a SimHooks")
    return hooks
