"""Testnet files (``deploy/testnets/*.toml``, docs/testnets.md): which scenario, how many rounds, which nodes are
Byzantine or start with a skewed clock, the perturbations and when, and the invariants to check.

Every error names the dotted key and the file (:class:`~bazaar.node.params.ParamError`), as scenarios do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..params import Field, ParamError, check_params, naming_file, read_toml
from ..scenario import Scenario, load_scenario
from ..shipped import resolve

ACTIONS = ("kill", "restart", "pause", "resume", "disconnect", "heal", "clock-skew")
"""The perturbations a schedule may apply."""

UNDO = {"kill": "restart", "pause": "resume", "disconnect": "heal", "clock-skew": "clock-skew"}
"""What ``for_rounds`` applies when it runs out (``clock-skew`` back to 0)."""

STAGES = ("start", "settle", "end")
"""When in its round a perturbation applies: before the round is asked for, once the leader has submitted the
round's transactions (escrow locks, the settlement — the engine's ``stage``), or after the round is over."""

SELECTORS = ("leader", "random", "random-validator", "random-follower")
"""Node selectors beside node names: the round leader, and seeded random picks among the live nodes (any, the
validators, or any but the leader)."""

BEHAVIOURS = ("false-claim", "equivocate", "withhold-block", "poison-update", "lying-oracle", "replay-flood",
              "malformed-frames", "oversize-frames")
"""The Byzantine behaviours a node can be started with (implemented in the node; a market's spec narrows the list to
those that make sense for each of its roles, through its ``byzantine`` declaration: behaviour -> roles)."""

INVARIANTS = ("same-finalized-head", "no-fork", "tokens-conserved", "trades-reverify", "no-honest-crash",
              "escrows-closed", "byzantine-evidence", "restarts-resync")
"""The invariants checked at the end of a run (docs/testnets.md), in report order."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

TOP = (
    Field("name", "str"), Field("scenario", "str"), Field("description", "str", required=False, default=""),
    Field("rounds", "int", low=1, high=100_000, doc="rounds to run"),
    Field("seed", "int", required=False, default=0, low=0, doc="seed of the random node selectors"),
    Field("round_timeout_s", "float", required=False, default=0.0, low=0, high=3600,
          doc="longest wait for one round (0: the scenario's deadlines + 60 s)"),
    Field("resync_timeout_s", "float", required=False, default=60.0, low=1, high=3600,
          doc="longest wait for a restarted node to hold the network's finalized head"),
    Field("settle_timeout_s", "float", required=False, default=30.0, low=1, high=3600,
          doc="longest wait at the end for the live honest nodes to agree on the finalized head"),
)
PERTURBATION = (
    Field("round", "int", low=1), Field("action", "str", choices=ACTIONS),
    Field("nodes", "list_str", required=False, default=[]),
    Field("at", "str", required=False, default="start", choices=STAGES),
    Field("repeat", "int", required=False, default=1, low=1, high=100_000,
          doc="how many times to apply it (random selectors draw anew each time)"),
    Field("every", "int", required=False, default=1, low=1, high=100_000, doc="rounds between two repeats"),
    Field("for_rounds", "int", required=False, default=0, low=0, high=100_000,
          doc="undo it (restart, resume, heal, skew 0) at the start of the round this many rounds later"),
    Field("skew_ms", "int", required=False, default=0, low=-86_400_000, high=86_400_000),
    Field("count", "int", required=False, default=1, low=1, high=512, doc="how many nodes a random selector picks"),
)


@dataclass(frozen=True)
class Perturbation:
    """One scheduled perturbation: in rounds ``round, round + every, ...`` (``repeat`` times)."""

    round: int
    action: str
    nodes: tuple[str, ...]
    at: str = "start"
    repeat: int = 1
    every: int = 1
    for_rounds: int = 0
    skew_ms: int = 0
    count: int = 1

    def rounds(self) -> range:
        """The rounds it applies in."""
        return range(self.round, self.round + self.repeat * self.every, self.every)


@dataclass(frozen=True)
class Testnet:
    """A checked testnet file.

    Attributes:
        scenario: the scenario it runs (checked against its market's spec).
        byzantine: node name -> the behaviours it starts with.
        clock_skew_ms: node name -> its clock's skew at start.
        checks: the invariants to check (all of :data:`INVARIANTS` unless the file lists fewer).
    """

    name: str
    description: str
    scenario: Scenario
    rounds: int
    seed: int
    byzantine: dict[str, tuple[str, ...]]
    clock_skew_ms: dict[str, int]
    perturbations: tuple[Perturbation, ...]
    checks: tuple[str, ...]
    round_timeout_s: float
    resync_timeout_s: float
    settle_timeout_s: float
    source: Path

    @property
    def honest(self) -> list[str]:
        """Names of the nodes started without a Byzantine behaviour."""
        return [n for n, _ in self.scenario.nodes if n not in self.byzantine]


def _behaviours_of(scenario: Scenario, node: str) -> tuple[str, ...]:
    """The behaviours ``node`` may be started with: those its market's spec declares for its role (``byzantine``:
    behaviour -> roles, node/byzantine), or every known one when the market declares none."""
    from ..markets.registry import get_spec

    declared = getattr(get_spec(scenario.market_name), "byzantine", None)
    if isinstance(declared, Mapping) and declared:
        role = scenario.role_of(node)
        return tuple(name for name, roles in declared.items() if role in roles)
    return BEHAVIOURS


def load_testnet(name_or_path: str | Path) -> Testnet:
    """Load a testnet by shipped name (``crash-leader``) or by path.

    Raises:
        ParamError: missing file, bad TOML, unknown or missing key, a scenario that does not load, a node name
            the scenario does not have, an unknown behaviour or selector; the message names the dotted key and
            the file.
    """
    path = resolve(name_or_path, "testnet", "testnet")
    return naming_file(path, _load)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ParamError(key, "expected a table")
    return value


def _load(path: Path) -> Testnet:
    data = read_toml(path)
    tables = {"byzantine", "clock_skew_ms", "perturbations", "checks"}
    for key, value in data.items():
        if isinstance(value, (dict, list)) and key not in tables:
            raise ParamError(key, f"unknown table (allowed: {', '.join(sorted(tables))})")
    top = check_params({k: v for k, v in data.items() if k not in tables}, TOP)
    if not _NAME.match(top["name"]):
        raise ParamError("name", "use 1-64 lowercase letters, digits and dashes")
    scenario_ref = top["scenario"]
    beside = (path.parent / scenario_ref)
    try:
        scenario = load_scenario(beside if beside.is_file() else scenario_ref)
    except ParamError as err:
        raise ParamError("scenario", str(err)) from err
    names = [n for n, _ in scenario.nodes]

    byzantine: dict[str, tuple[str, ...]] = {}
    for node, raw in _table(data, "byzantine").items():
        key = f"byzantine.{node}"
        if node not in names:
            raise ParamError(key, f"no node named {node!r} in scenario {scenario.name} (nodes: {', '.join(names)})")
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not raw or not all(isinstance(b, str) for b in raw):
            raise ParamError(key, "expected a non-empty list of behaviour names")
        allowed = _behaviours_of(scenario, node)
        for b in raw:
            if b not in allowed:
                raise ParamError(key, f"{b!r} is not a Byzantine behaviour of a {scenario.role_of(node)} in market "
                                      f"{scenario.market_name} (behaviours: {', '.join(allowed) or 'none'})")
        byzantine[node] = tuple(raw)

    skews: dict[str, int] = {}
    for node, raw in _table(data, "clock_skew_ms").items():
        key = f"clock_skew_ms.{node}"
        if node not in names:
            raise ParamError(key, f"no node named {node!r} in scenario {scenario.name}")
        try:
            skews[node] = check_params({"skew_ms": raw}, (PERTURBATION[-2],))["skew_ms"]
        except ParamError as err:
            raise ParamError(key, str(err).split(": ", 1)[-1]) from err

    raw_list = data.get("perturbations", [])
    if not isinstance(raw_list, list) or not all(isinstance(v, dict) for v in raw_list):
        raise ParamError("perturbations", "expected an array of tables ([[perturbations]])")
    perturbations = []
    for i, raw in enumerate(raw_list):
        prefix = f"perturbations[{i}]"
        try:
            v = check_params(raw, PERTURBATION)
            p = Perturbation(round=v["round"], action=v["action"], nodes=tuple(v["nodes"]), at=v["at"],
                             repeat=v["repeat"], every=v["every"], for_rounds=v["for_rounds"], skew_ms=v["skew_ms"],
                             count=v["count"])
        except ParamError as err:
            raise ParamError(f"{prefix}.{err.key}", str(err).split(": ", 1)[-1]) from err
        for node in p.nodes:
            if node not in names and node not in SELECTORS:
                raise ParamError(f"{prefix}.nodes", f"{node!r} is neither a node of scenario {scenario.name} nor a "
                                                    f"selector ({', '.join(SELECTORS)})")
        if p.action != "heal" and not p.nodes:
            raise ParamError(f"{prefix}.nodes", f"missing: which nodes to {p.action}")
        if p.action == "clock-skew" and "skew_ms" not in raw:
            raise ParamError(f"{prefix}.skew_ms", "missing: how far to skew the clock (milliseconds)")
        if p.for_rounds and p.action not in UNDO:
            raise ParamError(f"{prefix}.for_rounds", f"{p.action!r} has nothing to undo")
        perturbations.append(p)

    checks_raw = _table(data, "checks")
    checks = check_params(checks_raw, (Field("invariants", "list_str", required=False, default=list(INVARIANTS)),))
    for name in checks["invariants"]:
        if name not in INVARIANTS:
            raise ParamError("checks.invariants", f"unknown invariant {name!r} (invariants: {', '.join(INVARIANTS)})")
    return Testnet(
        name=top["name"], description=top["description"], scenario=scenario, rounds=top["rounds"], seed=top["seed"],
        byzantine=byzantine, clock_skew_ms=skews, perturbations=tuple(perturbations),
        checks=tuple(n for n in INVARIANTS if n in checks["invariants"]), round_timeout_s=top["round_timeout_s"],
        resync_timeout_s=top["resync_timeout_s"], settle_timeout_s=top["settle_timeout_s"], source=path.resolve(),
    )
