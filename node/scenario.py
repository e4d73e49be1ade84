"""Scenario files: which market, which roles and how many, economy, deadlines, phases, faults (TOML).

The market-specific table ``[mechanism]`` is checked by the market's app (``node/apps/<market>.py``); this module
checks everything else and names the offending key in every error (:class:`~bazaar.node.params.ParamError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.deploy import scenario_file

from .params import Field, ParamError, check_params, read_toml

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")

ECONOMY = (
    Field("initial_balance", "float", low=0, doc="tokens each account starts with"),
    Field("stake", "float", low=0, low_open=True, doc="tokens each validator stakes at genesis"),
    Field("block_reward", "float", low=0, doc="R: tokens minted per block to its proposer"),
    Field("reward_per_tx", "float", low=0, doc="lambda: tokens minted per transaction in the block"),
)
DEADLINES = (
    Field("demand_s", "float", low=0.1, high=600, doc="seconds the leader waits for answers"),
    Field("mining_s", "float", low=0.1, high=600, doc="seconds for local work (training, solving)"),
    Field("block_s", "float", low=0.1, high=600, doc="seconds to wait for the round's block"),
    Field("final_s", "float", low=0.1, high=600, doc="seconds to wait for finality"),
)
PHASE = (
    Field("name", "str"),
    Field("rounds", "int", low=1, high=100_000),
    Field("mode", "str"),
    Field("params", "str"),
)
FAULT = (
    Field("round", "int", low=1),
    Field("action", "str", choices=("kill", "restart")),
    Field("node", "str"),
)


@dataclass(frozen=True)
class Phase:
    """A run of rounds with one mode and one parameter set."""

    name: str
    rounds: int
    mode: str
    params: str


@dataclass(frozen=True)
class Fault:
    """Kill or restart a node before a given (1-based, global) round."""

    round: int
    action: str
    node: str


@dataclass(frozen=True)
class Scenario:
    """A checked scenario.

    Attributes:
        nodes: (name, role) in start order; names are ``<role>-<i>`` (or the role alone for a single node).
        market: the raw ``[mechanism]`` table, checked by the market app.
    """

    name: str
    market_name: str
    network_id: str
    consensus: str
    roles: dict[str, int]
    economy: dict[str, float]
    deadlines: dict[str, float]
    phases: tuple[Phase, ...]
    faults: tuple[Fault, ...]
    market: dict[str, Any]
    source: Path
    nodes: tuple[tuple[str, str], ...] = field(default=())

    def role_of(self, name: str) -> str:
        """The role of node ``name``."""
        for node, role in self.nodes:
            if node == name:
                return role
        raise ParamError("node", f"no node named {name!r} in scenario {self.name}")

    def names(self, role: str) -> list[str]:
        """Node names of one role, in index order."""
        return [n for n, r in self.nodes if r == role]

    @property
    def total_rounds(self) -> int:
        """Rounds over every phase."""
        return sum(p.rounds for p in self.phases)

    def phase_of(self, round_no: int) -> Phase:
        """The phase a (1-based) round belongs to; rounds past the end repeat the last phase."""
        left = round_no
        for phase in self.phases:
            if left <= phase.rounds:
                return phase
            left -= phase.rounds
        return self.phases[-1]


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ParamError(key, "expected a table")
    return value


def _list_of_tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ParamError(key, "expected an array of tables ([[" + key + "]])")
    return value


def node_names(roles: dict[str, int]) -> tuple[tuple[str, str], ...]:
    """Name every node: ``cpp`` for a single node of a role, ``consumer-0``... for several."""
    out = []
    for role, count in roles.items():
        out += [(role, role)] if count == 1 else [(f"{role}-{i}", role) for i in range(count)]
    return tuple(out)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario by shipped name (``ai-bazaar``) or by path.

    Raises:
        ParamError: missing file, bad TOML, unknown/missing key, wrong type or value.
    """
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        try:
            path = scenario_file(str(name_or_path))
        except FileNotFoundError as err:
            raise ParamError("scenario", str(err)) from err
    data = read_toml(path)
    top = check_params(
        {k: v for k, v in data.items() if not isinstance(v, (dict, list))},
        (Field("name", "str"), Field("market", "str"), Field("network_id", "str", required=False,
                                                               default="bazaar-local"),
         Field("consensus", "str", choices=("pol", "pos", "lottery")), Field("description", "str",
                                                                               required=False, default="")),
    )
    known_tables = {"roles", "economy", "deadlines", "mechanism", "phases", "faults"}
    for key, value in data.items():
        if isinstance(value, (dict, list)) and key not in known_tables:
            raise ParamError(key, f"unknown table (allowed: {', '.join(sorted(known_tables))})")
    if not _NAME.match(top["network_id"]):
        raise ParamError("network_id", "use 1-32 lowercase letters, digits and dashes")
    roles_raw = _table(data, "roles")
    if not roles_raw:
        raise ParamError("roles", "missing: name at least one role and its count")
    roles: dict[str, int] = {}
    for role, count in roles_raw.items():
        if not _NAME.match(role):
            raise ParamError(f"roles.{role}", "bad role name")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 512:
            raise ParamError(f"roles.{role}", "expected an integer count in [1, 512]")
        roles[role] = count
    economy = check_params(_table(data, "economy"), ECONOMY)
    deadlines = check_params(_table(data, "deadlines"), DEADLINES)
    phases = tuple(Phase(**check_params(p, PHASE)) for p in _list_of_tables(data, "phases"))
    if not phases:
        raise ParamError("phases", "missing: at least one [[phases]] entry")
    nodes = node_names(roles)
    names = {n for n, _ in nodes}
    faults = []
    for i, raw in enumerate(_list_of_tables(data, "faults")):
        fault = Fault(**check_params(raw, FAULT))
        if fault.node not in names:
            raise ParamError(f"faults[{i}].node", f"no node named {fault.node!r}")
        faults.append(fault)
    return Scenario(
        name=top["name"], market_name=top["market"], network_id=top["network_id"], consensus=top["consensus"],
        roles=roles, economy=economy, deadlines=deadlines, phases=phases, faults=tuple(faults),
        market=_table(data, "mechanism"), source=path.resolve(), nodes=nodes,
    )
