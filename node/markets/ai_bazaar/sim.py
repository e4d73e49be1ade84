"""ai-bazaar in ``bazaar sim`` (docs/sim.md): consumers are full nodes (each validates and mines), so
``--agents`` is their count (the generic rule); the round's telemetry against the Stackelberg solver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...sim.hooks import SimHooks


def _jain(values: list[float]) -> float:
    sq = sum(x * x for x in values)
    return 1.0 if not values or sq == 0 else sum(values) ** 2 / (len(values) * sq)


def extract(summary: dict[str, Any], scenario: Path) -> dict[str, Any]:
    """The posted price, welfare = the CPP's plus the consumers' profits, Jain's index over the consumers'
    demands, and the gap to the Stackelberg equilibrium the CPP's offline solver computes for the consumers who
    answered (relative CPP-profit gap; the absolute price gap beside it)."""
    eq = summary.get("equilibrium", {})
    consumer = summary.get("consumer_profit", {})
    cpp = float(summary.get("cpp_profit", 0.0))
    demands = [float(v) for v in summary.get("demand", {}).values()]
    eq_profit = eq.get("cpp_profit")
    return {"price": summary.get("price"), "welfare": cpp + sum(consumer.values()), "jain": _jain(demands),
            "offline_price": eq.get("price"), "offline_cpp_profit": eq_profit, "cpp_profit": cpp,
            "equilibrium_gap": abs(cpp - eq_profit) / abs(eq_profit) if eq_profit else None,
            "price_gap": summary.get("price_gap"), "total_demand": sum(demands), "winner": summary.get("winner")}


SIM = SimHooks(extract=extract)
