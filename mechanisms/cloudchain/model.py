"""The market's data: providers, tasks and their SLAs (docs/models/cloudchain.md §Model)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sla:
    """What a task requires of its provider.

    Attributes:
        latency_ms: the latency bound (an oracle's probe round trip), ms.
        availability: the share of probes that must be answered, in (0, 1].
        deadline_s: the completion deadline after allocation, seconds.
    """

    latency_ms: float
    availability: float
    deadline_s: float


@dataclass(frozen=True)
class Provider:
    """A compute provider's registered profile.

    Attributes:
        name: its name (used only to break exact ties, so relabelling permutes outcomes).
        kind: ``enterprise`` or ``community``.
        capacity: compute units it serves per round (one unit: one A100-class GPU-hour, docs).
        price: tokens per compute unit.
        reliability: promised availability in (0, 1].
        latency_ms: promised latency bound, ms.
        penalty: λ, tokens paid per SLA violation.
        read_mbps, write_mbps: storage bandwidths B_r, B_w (MB/s).
        commit_s: T_c, the time to commit a write.
    """

    name: str
    kind: str
    capacity: float
    price: float
    reliability: float
    latency_ms: float
    penalty: float
    read_mbps: float
    write_mbps: float
    commit_s: float


@dataclass(frozen=True)
class Task:
    """A requester's workload.

    Attributes:
        id: unique id (orders and names the task).
        kind: ``training``, ``inference`` or ``preprocessing``.
        units: C, compute units.
        max_price: the most tokens per unit the requester pays.
        sla: what it requires.
        value: tokens per unit the service is worth to the requester at full quality.
        epsilon, delta: the task's differential-privacy budget (None: not private).
    """

    id: str
    kind: str
    units: float
    max_price: float
    sla: Sla
    value: float
    epsilon: float | None = None
    delta: float | None = None
