"""cloudchain in ``bazaar sim`` (docs/sim.md): requester agents hosted by requester nodes, as the processes host
them, and the round's telemetry against the offline contract."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...sim.hooks import SimHooks

MAX_HOSTED = 1000
"""Agents one requester node may host (the ``[mechanism] agents`` bound of config.py)."""
FUND_PER_AGENT = 500.0
"""Tokens per hosted agent in a requester node's initial balance (the shipped scenario's 2000 for 4 agents)."""


def populate(doc: dict[str, Any], agents: int) -> int:
    """Spread ``agents`` requester agents over the scenario's requester nodes (more nodes only when one would host
    more than ``MAX_HOSTED``), every agent active every round, each node funded for its agents; returns the
    number of hosted agents (≥ ``agents``)."""
    roles, mech = doc.setdefault("roles", {}), doc.setdefault("mechanism", {})
    hosts = max(int(roles.get("requester", 1)), math.ceil(agents / MAX_HOSTED))
    per = math.ceil(agents / hosts)
    roles["requester"] = hosts
    mech["agents"] = per
    mech.pop("agents_start", None)
    mech.pop("agents_end", None)
    econ = doc.setdefault("economy", {})
    econ["initial_balance"] = max(float(econ.get("initial_balance", 0.0)), FUND_PER_AGENT * per)
    return hosts * per


def extract(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """Mean unit price of the served tasks, welfare Σ value·units of the served tasks (payments are transfers),
    Jain's index over the providers' utilisation; the offline contract on the same round's tasks (every task
    posted in time, in the network's per-block batches: ``bazaar solve cloudchain-allocate --scenario S --round R``)
    gives the reference welfare and allocation."""
    from bazaar.mechanisms.cloudchain.contract import allocate_in_batches

    from ...solve.cloudchain import from_scenario, network_batch

    providers, tasks = from_scenario(str(scenario), int(summary["round"]))
    by_id = {t.id: t for t in tasks}
    by_name = {p.name: p for p in providers}
    outcome, metrics = summary.get("outcome", {}), summary.get("metrics", {})
    net_alloc: dict[str, str | None] = outcome.get("allocation", {})
    served = [(by_id[t], by_name[p]) for t, p in net_alloc.items() if p and t in by_id and p in by_name]
    welfare = sum(t.value * t.units for t, _ in served)
    units = sum(t.units for t, _ in served)
    price = sum(p.price * t.units for t, p in served) / units if units else None
    alloc = allocate_in_batches(tasks, providers, network_batch())
    offline = {t.id: (providers[j].name if j >= 0 else None) for t, j in zip(tasks, alloc.assignment, strict=True)}
    off_welfare = sum(t.value * t.units for t, j in zip(tasks, alloc.assignment, strict=True) if j >= 0)
    agree = sum(1 for tid, p in offline.items() if net_alloc.get(tid) == p)
    return {"price": price, "welfare": welfare, "jain": metrics.get("jain"), "offline_welfare": off_welfare,
            "equilibrium_gap": abs(off_welfare - welfare) / off_welfare if off_welfare else 0.0,
            "allocation_agreement": agree / len(offline) if offline else 1.0,
            "tasks": metrics.get("tasks"), "served": metrics.get("served"),
            "sla_compliance": metrics.get("sla_compliance"), "paid": metrics.get("paid"),
            "penalised": metrics.get("penalised"), "verdicts": metrics.get("verdicts")}


SIM = SimHooks(populate=populate, extract=extract, hosts="requester")
