"""Scenario files: which market, which roles and how many, economy, deadlines, phases, faults (TOML).

Everything is checked against the market's spec from the registry: the roles and their counts, the consensus
rule, the generic deadlines (``block_s``, ``final_s``) and the market's own, the phase modes, and the
``[mechanism]`` table (by the spec's ``settings``). Every error names the dotted key and the file
(:class:`~bazaar.node.params.ParamError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.deploy import shipped_folder

from .params import Field, ParamError, check_params, naming_file, read_toml
from .shipped import resolve

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")

ECONOMY = (
    Field("initial_balance", "float", low=0, doc="tokens each account starts with"),
    Field("stake", "float", low=0, low_open=True, doc="tokens each validator stakes at genesis"),
    Field("block_reward", "float", low=0, doc="R: tokens minted per block to its proposer"),
    Field("reward_per_tx", "float", low=0, doc="lambda: tokens minted per transaction in the block"),
)
DEADLINES = (
    Field("block_s", "float", low=0.1, high=600, doc="seconds to wait for the round's block (and the "
                                                      "proposer fallback of pos/lottery)"),
    Field("final_s", "float", low=0.1, high=600, doc="seconds to wait for finality"),
)
CHAIN = (
    Field("mempool", "int", low=1, high=10_000_000, required=False, default=10_000,
          doc="pending transactions a node's mempool keeps from peers (docs/adr/0082, 0170)"),
    Field("votes", "str", required=False, default="aggregator", choices=("aggregator", "gossip"),
          doc="how validators' finality votes travel: to the network's aggregator, which pushes the certificate "
              "(gossiped when it fails), or gossiped to every node (docs/adr/0189)"),
    Field("blocks", "str", required=False, default="push", choices=("push", "gossip"),
          doc="how a proposer spreads its block: pushed to every peer (gossiped as well when a push fails or a node "
              "is not connected), or gossiped (docs/adr/0192)"),
    Field("messages", "str", required=False, default="push", choices=("push", "gossip"),
          doc="how a node sends a market message: pushed to every node of its topic when connected to all of them "
              "(gossiped otherwise, and as well when a push fails), or gossiped (docs/adr/0194)"),
)
PHASE = (
    Field("name", "str"),
    Field("rounds", "int", low=1, high=100_000),
    Field("mode", "str"),
    Field("params", "str", required=False, default=""),
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
    chain: dict[str, Any] = field(default_factory=lambda: {"mempool": 10_000, "votes": "aggregator",
                                                          "blocks": "push", "messages": "push"})
    """The checked ``[chain]`` table (node rules every node of the network applies alike: ``mempool``,
    ``votes``, ``blocks``, ``messages``)."""

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

    def resolve_file(self, path: str, key: str) -> Path:
        """A file a scenario names (a parameter file): next to the scenario, else among the shipped ones.

        Raises:
            ParamError: naming ``key``, when it is in neither place.
        """
        candidate = (self.source.parent / path).resolve()
        if candidate.is_file():
            return candidate
        shipped = shipped_folder("scenario") / path
        if shipped.is_file():
            return shipped
        raise ParamError(key, f"file {path!r} not found next to the scenario ({self.source}) or shipped")

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


def _prefixed(prefix: str, fields: tuple[Field, ...], raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return check_params(raw, fields)
    except ParamError as err:
        raise ParamError(f"{prefix}.{err.key}" if err.key else prefix, str(err).split(": ", 1)[-1]) from err


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a scenario by shipped name (``ai-bazaar``) or by path, checked against its market's spec.

    Raises:
        ParamError: missing file, bad TOML, unknown market, unknown/missing key, wrong type or value; the
            message names the dotted key and the file.
    """
    path = resolve(name_or_path, "scenario", "scenario")
    return naming_file(path, _load)


def _load(path: Path) -> Scenario:
    from .markets.registry import get_spec

    data = read_toml(path)
    top = check_params(
        {k: v for k, v in data.items() if not isinstance(v, (dict, list))},
        (Field("name", "str"), Field("market", "str"), Field("network_id", "str", required=False,
                                                               default="bazaar-local"),
         Field("consensus", "str", choices=("pol", "pos", "lottery")), Field("description", "str",
                                                                               required=False, default="")),
    )
    spec = get_spec(top["market"])
    if top["consensus"] not in spec.consensus:
        raise ParamError("consensus", f"market {spec.name} runs on {' or '.join(spec.consensus)}, "
                                      f"not {top['consensus']!r}")
    known_tables = {"roles", "economy", "deadlines", "mechanism", "phases", "faults", "chain"}
    for key, value in data.items():
        if isinstance(value, (dict, list)) and key not in known_tables:
            raise ParamError(key, f"unknown table (allowed: {', '.join(sorted(known_tables))})")
    if not _NAME.match(top["network_id"]):
        raise ParamError("network_id", "use 1-32 lowercase letters, digits and dashes")
    roles_raw = _table(data, "roles")
    roles: dict[str, int] = {}
    for role, count in roles_raw.items():
        if role not in spec.role_names:
            raise ParamError(f"roles.{role}", f"market {spec.name} has no role {role!r} "
                                              f"(roles: {', '.join(spec.role_names)})")
        rspec = spec.role(role)
        if isinstance(count, bool) or not isinstance(count, int) or not rspec.min_count <= count <= rspec.max_count:
            raise ParamError(f"roles.{role}", f"expected an integer count in [{rspec.min_count}, "
                                              f"{rspec.max_count}]")
    for rspec in spec.roles:
        if rspec.name not in roles_raw and rspec.min_count > 0:
            raise ParamError(f"roles.{rspec.name}", f"missing: market {spec.name} needs at least "
                                                    f"{rspec.min_count}")
        if rspec.name in roles_raw:
            roles[rspec.name] = roles_raw[rspec.name]
    economy = _prefixed("economy", ECONOMY, _table(data, "economy"))
    deadlines = _prefixed("deadlines", DEADLINES + spec.deadlines, _table(data, "deadlines"))
    phases = []
    for i, raw in enumerate(_list_of_tables(data, "phases")):
        phase = Phase(**_prefixed(f"phases[{i}]", PHASE, raw))
        if phase.mode not in spec.modes:
            raise ParamError(f"phases[{i}].mode", f"{phase.mode!r} is not a mode of {spec.name} "
                                                  f"(modes: {', '.join(spec.modes)})")
        phases.append(phase)
    if not phases:
        raise ParamError("phases", "missing: at least one [[phases]] entry")
    nodes = node_names(roles)
    names = {n for n, _ in nodes}
    faults = []
    for i, raw in enumerate(_list_of_tables(data, "faults")):
        fault = Fault(**_prefixed(f"faults[{i}]", FAULT, raw))
        if fault.node not in names:
            raise ParamError(f"faults[{i}].node", f"no node named {fault.node!r}")
        faults.append(fault)
    scenario = Scenario(
        name=top["name"], market_name=top["market"], network_id=top["network_id"], consensus=top["consensus"],
        roles=roles, economy=economy, deadlines=deadlines, phases=tuple(phases), faults=tuple(faults),
        market=_table(data, "mechanism"), source=path.resolve(), nodes=nodes,
        chain=_prefixed("chain", CHAIN, _table(data, "chain")),
    )
    try:
        spec.settings(scenario)  # checks [mechanism] and the phases' parameter names
    except ParamError as err:
        if err.key.split(".")[0].split("[")[0] in (*known_tables, "consensus", "market"):
            raise
        raise ParamError(f"mechanism.{err.key}", str(err).split(": ", 1)[-1]) from err
    return scenario
