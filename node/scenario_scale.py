"""A scenario grown (or shrunk) to N node processes, for benchmarks and large local networks.

The role with the most members (ai-bazaar's consumers, hierarchical's miners, tbcim's edge devices, ...) takes
up the difference (the largest its market lets grow that far: cloudchain's providers stop at 28, so its
requesters grow); every other role keeps its count. Parameter files the scenario names under
``[mechanism]`` (ai-bazaar's ``param_sets``) are rewritten beside the new scenario when they describe that role
member by member: ``n`` becomes the new count and every list of the old count's length is tiled to the new one
(member i of the grown set repeats member ``i mod n_old``). Other file names are made absolute, so the written
scenario loads from any folder. Collection windows grow in proportion to the processes (:func:`scaled_deadlines`).
The result is checked by the ordinary scenario loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from .params import ParamError, read_toml
from .scenario import Scenario, load_scenario

FIXED_DEADLINES = frozenset({"block_s"})
"""Deadlines that do not grow with the network under ``pol`` consensus: its wait for the round's block."""
FALLBACK_CONSENSUS = frozenset({"pos", "lottery"})
"""Consensus rules whose ``block_s`` is the proposer fallback's wait, which grows with the network (ADR 0210)."""


def scaled_deadlines(deadlines: dict[str, Any], old_nodes: int, new_nodes: int, consensus: str = "pol"
                     ) -> dict[str, Any]:
    """``deadlines`` grown in proportion to the node processes when they grow (never shrunk), but for
    :data:`FIXED_DEADLINES` under ``pol`` consensus. On one machine the CPU a collection window has to hold grows
    with the processes that share it (every one trains, solves, gossips on the same cores); a window closes as soon
    as every participant answered, so a longer deadline costs time only when one is missing (docs/adr/0147).

    Under ``pos`` and ``lottery`` ``block_s`` is the wait after which the next attempt's proposer replaces a silent
    one, and it grows too: a block's way to every node grows with the processes, and a fallback wait shorter than
    that makes fallback proposers compete with a block that was only slow; at 50 processes such a race split the
    finality votes of a height for good (docs/adr/0210). A longer wait costs time only when a proposer is silent."""
    factor = max(1.0, new_nodes / old_nodes) if old_nodes > 0 else 1.0
    fixed = frozenset() if consensus in FALLBACK_CONSENSUS else FIXED_DEADLINES
    return {key: value if key in fixed or not isinstance(value, (int, float)) or isinstance(value, bool)
            else round(float(value) * factor, 3) for key, value in deadlines.items()}


def scaled_roles(scenario: Scenario) -> list[str]:
    """The roles that may grow, in the order tried: most members first (the last of equals first)."""
    ranked = sorted(reversed(list(scenario.roles.items())), key=lambda kv: kv[1], reverse=True)
    return [role for role, _ in ranked]


def _tile(doc: dict[str, Any], old: int, new: int) -> tuple[dict[str, Any], bool]:
    """``doc`` with ``n`` and every member-wise list grown from ``old`` to ``new`` members (nested tables too)."""
    changed = False
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "n" and value == old and not isinstance(value, bool):
            out[key], changed = new, True
        elif isinstance(value, list) and len(value) == old and old > 0:
            out[key], changed = [value[i % old] for i in range(new)], True
        elif isinstance(value, dict):
            out[key], sub = _tile(value, old, new)
            changed = changed or sub
        else:
            out[key] = value
    return out, changed


def scale_scenario(ref: str | Path, nodes: int, folder: Path) -> Path:
    """Write scenario ``ref`` grown to ``nodes`` node processes into ``folder``; returns the new file.

    The role with the most members grows; when the scenario that makes does not load (the market caps that
    role's count, or another of its rules breaks: cloudchain's providers stop at 28 and its oracles' quorum must
    stay a majority), the next role by members is tried, so cloudchain grows its requesters.

    Raises:
        ParamError: no role can take up the difference (the first role's error), e.g. ``nodes`` leaves the
            growing role no member.
    """
    sc = load_scenario(ref)
    roles = scaled_roles(sc)
    if nodes <= sum(sc.roles.values()):
        roles = roles[:1]  # shrinking: only the largest role gives members up
    first: ParamError | None = None
    for role in roles:
        try:
            return _grow(sc, role, nodes, folder)
        except ParamError as err:
            first = first or err
    assert first is not None
    raise first


def _grow(sc: Scenario, role: str, nodes: int, folder: Path) -> Path:
    """``sc`` with ``role`` taking up the difference to ``nodes``, written into ``folder`` and loaded."""
    old = sc.roles[role]
    new = nodes - (sum(sc.roles.values()) - old)
    if new < 1:
        raise ParamError("nodes", f"{nodes} node processes leave no {role} (the other roles need "
                                  f"{sum(sc.roles.values()) - old})")
    data = read_toml(sc.source)
    data["roles"][role] = new
    data["name"] = f"{data['name']}-n{nodes}"
    if isinstance(data.get("deadlines"), dict):
        data["deadlines"] = scaled_deadlines(data["deadlines"], sum(sc.roles.values()), nodes, sc.consensus)
    folder.mkdir(parents=True, exist_ok=True)
    mech = data.get("mechanism", {})

    def rewrite(path: str, label: str) -> str:
        try:
            src = sc.resolve_file(path, f"mechanism.{label}")
        except ParamError:
            return path  # not a file: a plain setting
        doc, changed = _tile(read_toml(src), old, new)
        if not changed:
            return str(src)
        target = folder / f"{src.stem}-n{new}.toml"
        target.write_bytes(tomli_w.dumps(doc).encode())
        return str(target)

    for key, value in list(mech.items()):
        if isinstance(value, str) and value.endswith(".toml"):
            mech[key] = rewrite(value, key)
        elif isinstance(value, dict):
            for sub, path in list(value.items()):
                if isinstance(path, str) and path.endswith(".toml"):
                    value[sub] = rewrite(path, f"{key}.{sub}")
    target = folder / f"{data['name']}.toml"
    target.write_bytes(tomli_w.dumps(data).encode())
    load_scenario(target)  # the ordinary checks, naming the key on any error
    return target
