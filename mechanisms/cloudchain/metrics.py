"""Fairness, payoffs, the value of a service and the storage latency model (docs/models/cloudchain.md)."""

from __future__ import annotations

from collections.abc import Sequence

from .contract import Allocation
from .model import Provider, Task

LATE_QUALITY = 0.5
"""Share of a task's value a requester still gets from a late service (at most; see :func:`service_value`)."""


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index ``(Σx)² / (n·Σx²)``; 1.0 for no values or all zeros."""
    xs = [float(x) for x in values]
    sq = sum(x * x for x in xs)
    if not xs or sq == 0:
        return 1.0
    return sum(xs) ** 2 / (len(xs) * sq)


def normalised_allocation(alloc: Allocation, providers: Sequence[Provider]) -> list[float]:
    """Each provider's utilisation ``load_p / capacity_p`` after the allocation."""
    return [load / p.capacity for load, p in zip(alloc.load, providers, strict=True)]


def provider_profit(payments: float, penalties: float) -> float:
    """Π_p = Σ_i P_i·C_i − Σ_i λ_i·R_i: what a provider was paid minus the SLA penalties it paid (R_i: the
    violations the oracles' quorum found, each costing λ)."""
    return payments - penalties


def requester_utility(values_received: float, payments: float) -> float:
    """U_r = Σ_i (Q_i − P_i): the value of the services received minus what was paid for them."""
    return values_received - payments


def service_value(task: Task, met_sla: bool, latency_ms: float) -> float:
    """Q_i at the measured quality: ``v·C`` when the SLA was met; a late service is worth
    ``LATE_QUALITY·v·C·min(1, bound/latency)``; nothing when missing or wrong (``latency_ms`` = inf)."""
    full = task.value * task.units
    if met_sla:
        return full
    if latency_ms == float("inf") or latency_ms <= 0:
        return 0.0
    return LATE_QUALITY * full * min(1.0, task.sla.latency_ms / latency_ms)


def storage_latency(size_bytes: int, provider: Provider) -> tuple[float, float]:
    """``(T_r, T_w)`` in seconds: ``T_r = S/B_r``, ``T_w = S/B_w + T_c`` (S in MB, B in MB/s)."""
    mb = size_bytes / 1e6
    return mb / provider.read_mbps, mb / provider.write_mbps + provider.commit_s
