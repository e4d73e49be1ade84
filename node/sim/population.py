"""The population of a simulation: a shipped (or given) scenario rewritten for N agents and R rounds.

How agents are multiplexed is the market's (docs/sim.md, docs/adr/0130): a market whose nodes host agents says so
in its ``sim`` module (``SimHooks.populate``: cloudchain's requester nodes host requester agents, each with its
own key and account, as its processes do), so the number of full nodes — ledger replicas — stays nearly constant
while the population grows. In every other market ``--agents N`` is the number of nodes of its most numerous
non-leading role (its followers), each a full node, and every per-follower list of its parameter sets is tiled
to N.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..markets.registry import get_spec
from ..markets.spec import MarketSpec
from ..mempool import DEFAULT_CAPACITY
from ..params import ParamError
from ..shipped import resolve
from .hooks import sim_hooks

MEMPOOL_SLOTS_PER_AGENT = 4
"""Mempool slots per agent when a scenario's ``[chain] mempool`` is not given: every agent's transactions of one
round pending at once (a cloudchain agent's first round: a bond, a task escrow and its record, and the funding
transfer its host sends it). A scenario that needs more says so in ``[chain] mempool``."""


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
    doc["roles"] = roles
    mech: dict[str, Any] = dict(doc.get("mechanism", {}))
    doc["mechanism"] = mech
    hooks = sim_hooks(spec)
    hosted = 0
    if agents is not None and agents < 1:
        raise ParamError("agents", "need at least 1 agent")
    if hooks.populate is not None and agents is not None:
        hosted = hooks.populate(doc, agents)
    elif hooks.populate is not None:
        hosted = int(roles.get(hooks.hosts, 0)) * int(mech.get("agents", 1))
    elif agents is not None:
        role = follower_role(spec, roles)
        if role is None:
            raise ParamError("agents", f"market {market} has no role that --agents scales")
        roles[role] = agents
        _tile_param_sets(mech, src, out, agents)
    if rounds is not None:
        if rounds < 1:
            raise ParamError("rounds", "need at least 1 round")
        phases = list(doc.get("phases", []))
        if not phases:
            raise ParamError("phases", f"{src}: no phases to play")
        first = dict(phases[0])
        first["rounds"] = rounds
        doc["phases"] = [first]
    for key in list(mech):  # the rewritten scenario lives elsewhere: its files by absolute path
        if isinstance(mech[key], str) and key.endswith("params"):
            mech[key] = _absolute(src, mech[key])
    if isinstance(mech.get("param_sets"), dict):
        mech["param_sets"] = {k: _absolute(src, v) for k, v in mech["param_sets"].items()}
    chain: dict[str, Any] = dict(doc.get("chain", {}))
    wanted = MEMPOOL_SLOTS_PER_AGENT * (hosted + sum(roles.values()))
    if "mempool" not in chain and wanted > DEFAULT_CAPACITY:  # sized for the population unless the scenario says
        chain["mempool"] = wanted  # (docs/adr/0170)
    if chain:
        doc["chain"] = chain
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scenario.toml"
    path.write_text(dump_toml(doc))
    total_rounds = sum(int(p.get("rounds", 0)) for p in doc.get("phases", []))
    nodes = sum(roles.values())
    if spec.name != market:
        raise ParamError("market", f"{src}: market {market!r} is registered as {spec.name!r}")
    hosts = int(roles.get(hooks.hosts, 0)) if hosted else 0
    return Population(path, market, agents=hosted + nodes - hosts, nodes=nodes, hosted=hosted, rounds=total_rounds)


def _absolute(src: Path, ref: str) -> str:
    path = Path(ref)
    return ref if path.is_absolute() or not (src.parent / path).exists() else str((src.parent / path).resolve())


def follower_role(spec: MarketSpec, roles: dict[str, int]) -> str | None:
    """The non-leading role with the most nodes in the scenario (the last in the spec's order on a tie)."""
    best: tuple[int, int, str] | None = None
    for i, r in enumerate(spec.roles):
        if not r.leads and r.name in roles and (best is None or (roles[r.name], i) >= best[:2]):
            best = (roles[r.name], i, r.name)
    return best[2] if best else None


def _tile_param_sets(mech: dict[str, Any], src: Path, out: Path, n: int) -> None:
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
