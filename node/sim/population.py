"""The population of a simulation: a shipped (or given) scenario rewritten for N agents and R rounds.

How agents are multiplexed depends on the market (docs/sim.md, docs/adr/0130):

* ``cloudchain``: requester agents are hosted by requester nodes, as the deployed processes host them (each agent
  its own key and ledger account, signing its own escrows and task records). ``--agents N`` spreads N agents
  over the scenario's requester nodes, adding nodes only when one would host more than the market allows
  (``[mechanism] agents`` ≤ 1000): the number of full nodes — ledger replicas — stays nearly constant while the
  population grows, so the cost of a round grows with the number of agents, not with its square.
* every other market: ``--agents N`` is the number of nodes of its follower role (ai-bazaar consumers,
  hierarchical miners, ...), each a full node; a per-consumer parameter set is tiled to N where the market
  needs one. These populations are for studying the network at the scale of a process network, not beyond.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..markets.registry import get_spec
from ..params import ParamError
from ..shipped import resolve

MAX_HOSTED = 1000
"""Agents one cloudchain requester node may host (its ``[mechanism] agents`` bound)."""
FUND_PER_AGENT = 500.0
"""Tokens per hosted agent in a requester node's initial balance (the shipped scenario's 2000 for 4 agents)."""
FOLLOWER = {"ai-bazaar": "consumer", "hierarchical": "miner", "collab": "device", "tbcim": "ed"}
"""The role ``--agents`` counts in the markets whose agents are full nodes."""


@dataclass(frozen=True)
class Population:
    """What a simulation runs.

    Attributes:
        scenario: the rewritten scenario file.
        market: its market.
        agents: participants with their own key and account that act in the market (hosted agents and nodes).
        nodes: full nodes (ledger replicas) in the run.
        hosted: agents hosted by nodes rather than being nodes themselves.
        rounds: rounds to play.
    """

    scenario: Path
    market: str
    agents: int
    nodes: int
    hosted: int
    rounds: int


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_toml(doc: dict[str, Any]) -> str:
    """TOML text of a scenario document (scalars, lists of scalars, tables, one nesting level of sub-tables and
    arrays of tables: the shapes a scenario file has)."""
    lines: list[str] = []

    def table(prefix: str, tbl: dict[str, Any]) -> None:
        subs = {k: v for k, v in tbl.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in tbl.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        for k, v in tbl.items():
            if k not in subs and k not in arrays:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subs.items():
            lines.extend(["", f"[{prefix}{_toml_key(k)}]"])
            table(f"{prefix}{_toml_key(k)}.", v)
        for k, items in arrays.items():
            for item in items:
                lines.extend(["", f"[[{prefix}{_toml_key(k)}]]"])
                table(f"{prefix}{_toml_key(k)}.", item)

    table("", doc)
    return "\n".join(lines) + "\n"


def _toml_key(k: str) -> str:
    return k if k.replace("-", "").replace("_", "").isalnum() else _toml_value(k)


def build_population(ref: str, out: Path, *, agents: int | None, rounds: int | None) -> Population:
    """Rewrite scenario ``ref`` (a shipped name or a path) for ``agents`` agents and ``rounds`` rounds into
    ``out``.

    Raises:
        ParamError: unknown scenario, or a population the market cannot take.
    """
    src = resolve(ref, "scenario", "--scenario")
    try:
        doc = tomllib.loads(src.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ParamError("scenario", f"{src}: {err}") from err
    market = str(doc.get("market", ""))
    try:
        spec = get_spec(market)
    except KeyError as err:
        raise ParamError("market", f"{src}: unknown market {market!r}") from err
    doc["name"] = "sim"
    roles: dict[str, int] = dict(doc.get("roles", {}))
    mech: dict[str, Any] = dict(doc.get("mechanism", {}))
    hosted = 0
    if agents is not None and agents < 1:
        raise ParamError("agents", "need at least 1 agent")
    if market == "cloudchain":
        hosts = int(roles.get("requester", 1))
        if agents is not None:
            hosts = max(hosts, math.ceil(agents / MAX_HOSTED))
            per = math.ceil(agents / hosts)
            roles["requester"] = hosts
            mech["agents"] = per
            mech.pop("agents_start", None)
            mech.pop("agents_end", None)
            econ = dict(doc.get("economy", {}))
            econ["initial_balance"] = max(float(econ.get("initial_balance", 0.0)), FUND_PER_AGENT * per)
            doc["economy"] = econ
        hosted = hosts * int(mech.get("agents", 1))
    elif agents is not None:
        role = FOLLOWER.get(market)
        if role is None or role not in roles:
            raise ParamError("agents", f"market {market} has no role that --agents scales")
        roles[role] = agents
        _tile_param_sets(doc, mech, src, out, agents)
    if rounds is not None:
        if rounds < 1:
            raise ParamError("rounds", "need at least 1 round")
        phases = list(doc.get("phases", []))
        if not phases:
            raise ParamError("phases", f"{src}: no phases to play")
        first = dict(phases[0])
        first["rounds"] = rounds
        doc["phases"] = [first]
    doc["roles"] = roles
    doc["mechanism"] = mech
    for key in list(mech):
        if isinstance(mech[key], str) and key.endswith("params"):
            mech[key] = str((src.parent / mech[key]).resolve()) if not Path(mech[key]).is_absolute() else mech[key]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scenario.toml"
    path.write_text(dump_toml(doc))
    total_rounds = sum(int(p.get("rounds", 0)) for p in doc.get("phases", []))
    nodes = sum(roles.values())
    if spec.name != market:
        raise ParamError("market", f"{src}: market {market!r} is registered as {spec.name!r}")
    return Population(path, market, agents=hosted + nodes - (roles.get("requester", 0) if hosted else 0),
                      nodes=nodes, hosted=hosted, rounds=total_rounds)


def _tile_param_sets(doc: dict[str, Any], mech: dict[str, Any], src: Path, out: Path, n: int) -> None:
    """Rewrite every per-follower parameter set to ``n`` followers by tiling its per-follower lists."""
    sets = mech.get("param_sets")
    if not isinstance(sets, dict):
        return
    tiled = {}
    for name, rel in sets.items():
        path = (src.parent / rel) if not Path(rel).is_absolute() else Path(rel)
        try:
            params = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ParamError(f"mechanism.param_sets.{name}", f"{path}: {err}") from err
        old_n = int(params.get("n", 0))
        if old_n > 0:
            for k, v in params.items():
                if isinstance(v, list) and len(v) == old_n:
                    params[k] = [v[i % old_n] for i in range(n)]
            params["n"] = n
        target = out / f"params-{name}.toml"
        target.write_text(dump_toml(params))
        tiled[name] = str(target.resolve())
    mech["param_sets"] = tiled
