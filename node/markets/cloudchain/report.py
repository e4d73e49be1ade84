"""The leader's round report, read from the chain's settlements (``CloudchainRole.settled``) and the book."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bazaar.ledger.amounts import from_units

if TYPE_CHECKING:
    from .common import CloudchainRole


def round_outcome(role: CloudchainRole, round_no: int, keys: list[bytes], names: dict[bytes, str]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(outcome, metrics)`` of one round: the allocation of each task (provider name or None), the prices,
    each task's attestations and quorum, the penalties and payments by provider, Jain's index over the
    providers' normalised allocations, and the tokens each provider earned so far."""
    from bazaar.mechanisms.cloudchain.metrics import jain

    book = role.book
    oracle_names = [names.get(o, o.hex()[:8]) for o in role.oracles]
    allocation: dict[str, str | None] = {}
    prices: dict[str, float] = {}
    attestations: dict[str, int] = {}
    quorum: dict[str, dict[str, Any]] = {}
    payments: dict[str, float] = {}
    penalties: dict[str, float] = {}
    units: dict[bytes, float] = {}
    verified = 0.0
    verdicts: dict[str, int] = {}
    for key in keys:
        s = role.settled.get(key)
        if s is None:
            e = book.tasks.get(key)
            if e is not None:
                allocation[e.task.id] = names.get(e.provider) if e.provider else None
                verdicts["unsettled"] = verdicts.get("unsettled", 0) + 1
            continue
        prov = s["provider"]
        allocation[s["task"]] = names.get(prov, prov.hex()[:8]) if prov else None
        verdicts[s["verdict"]] = verdicts.get(s["verdict"], 0) + 1
        if not prov:
            continue
        pname = allocation[s["task"]] or ""
        units[prov] = units.get(prov, 0.0) + s["units"]
        prices[s["task"]] = s.get("price", 0.0)
        attestations[s["task"]] = len(s.get("signers", [])) + len(s.get("dissent", []))
        quorum[s["task"]] = {"verdict": s["verdict"], "signers": [oracle_names[i] for i in s.get("signers", [])],
                             "dissent": [oracle_names[i] for i in s.get("dissent", [])]}
        if s["verdict"] == "met":
            verified += s["units"]
        if s["paid"]:
            payments[pname] = round(payments.get(pname, 0.0) + from_units(s["paid"]), 6)
        if s["penalty"]:
            penalties[pname] = round(penalties.get(pname, 0.0) + from_units(s["penalty"]), 6)
    registered = list(book.providers.items())
    shares = [units.get(acct, 0.0) / prof.capacity for acct, prof in registered]
    decided = sum(v for k, v in verdicts.items() if k in ("met", "late", "missing", "wrong"))
    outcome = {
        "allocation": allocation, "prices": prices, "attestations": attestations, "quorum": quorum,
        "penalties": penalties, "payments": payments, "jain": jain(shares) if shares else 1.0,
        "tokens": {names.get(a, a.hex()[:8]): from_units(v) for a, v in book.earned.items()},
        "verdicts": verdicts,
    }
    metrics = {
        "tasks": len(keys), "served": sum(1 for v in allocation.values() if v), "jain": outcome["jain"],
        "sla_compliance": verdicts.get("met", 0) / decided if decided else None,
        "paid": round(sum(payments.values()), 6), "penalised": round(sum(penalties.values()), 6),
        "verdicts": verdicts, "units_verified": verified, "epsilon_spent_max": epsilon_spent(role),
    }
    return outcome, metrics


def epsilon_spent(role: CloudchainRole) -> float:
    """The largest ε any requester's dataset has spent (every private task allocated so far, composed)."""
    book = role.book
    if not book.privacy:
        return 0.0
    from bazaar.mechanisms.cloudchain.privacy import PrivacyAccountant

    most = 0.0
    for events in book.privacy.values():
        acc = PrivacyAccountant(role.rules.dp_budget, role.rules.dp_delta)
        acc.events = list(events)
        most = max(most, acc.spent())
    return most
