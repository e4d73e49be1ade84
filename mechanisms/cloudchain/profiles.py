"""Provider profiles and workloads (docs/models/cloudchain.md §Profiles, with the list prices they come from).

One compute unit is one GPU-hour of an A100-class (40 GB) accelerator; a token is priced like one US dollar.
Enterprise profiles take approximate 2024 on-demand list prices per A100 GPU-hour; community nodes are consumer
and prosumer GPUs rented peer to peer: smaller, cheaper, less reliable, farther away.
"""

from __future__ import annotations

import numpy as np

from .model import Provider, Sla, Task

ENTERPRISE: tuple[tuple[str, float, float, float, float], ...] = (
    # name, capacity (A100-h per round), price (tokens per A100-h), reliability, latency bound (ms)
    ("aws-like", 96.0, 4.10, 0.9999, 40.0),           # p4d.24xlarge: 8 x A100 40 GB at ~32.77 USD/h
    ("gcp-like", 64.0, 3.67, 0.9999, 45.0),           # a2-highgpu-1g: 1 x A100 40 GB at ~3.67 USD/h
    ("azure-like", 80.0, 3.40, 0.9995, 50.0),         # ND96asr v4: 8 x A100 40 GB at ~27.20 USD/h
    ("hetzner-like", 24.0, 1.90, 0.999, 60.0),        # dedicated GPU servers by the month, ~1.9 USD per A100-h eq.
    ("lambda-like", 48.0, 1.29, 0.999, 55.0),         # on-demand 1 x A100 40 GB at ~1.29 USD/h
)
SLA_PENALTY_HOURS = 2.0
"""λ: a violation costs the provider the price of this many units (a service credit)."""


def _provider(name: str, kind: str, capacity: float, price: float, reliability: float, latency: float,
              read: float, write: float, commit: float) -> Provider:
    return Provider(name=name, kind=kind, capacity=capacity, price=round(price, 4), reliability=reliability,
                    latency_ms=latency, penalty=round(SLA_PENALTY_HOURS * price, 4), read_mbps=read,
                    write_mbps=write, commit_s=commit)


def enterprise_profiles() -> list[Provider]:
    """The five enterprise profiles (object-storage-class bandwidths, 50 ms commit)."""
    return [_provider(n, "enterprise", cap, price, rel, lat, 200.0, 120.0, 0.05)
            for n, cap, price, rel, lat in ENTERPRISE]


def community_profiles(n: int, seed: int) -> list[Provider]:
    """``n`` community nodes: 2–12 units, 0.35–0.95 tokens per unit, reliability 0.95–0.995, latency bound
    80–250 ms, home-broadband storage (20–60 MB/s read, 5–20 MB/s write, 0.2 s commit)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        out.append(_provider(f"community-{k}", "community", float(rng.integers(2, 13)),
                             float(rng.uniform(0.35, 0.95)), round(float(rng.uniform(0.95, 0.995)), 4),
                             round(float(rng.uniform(80, 250)), 1), round(float(rng.uniform(20, 60)), 1),
                             round(float(rng.uniform(5, 20)), 1), 0.2))
    return out


def paper_providers(seed: int = 0) -> list[Provider]:
    """The 28 providers of the 30-day run: the 5 enterprise profiles, 3 more enterprise regions (the cheapest
    three again, their capacity halved), and 20 community nodes."""
    ent = enterprise_profiles()
    extra = [_provider(f"{p.name}-2", "enterprise", p.capacity / 2, p.price, p.reliability, p.latency_ms + 10,
                       p.read_mbps, p.write_mbps, p.commit_s) for p in sorted(ent, key=lambda p: p.price)[:3]]
    return ent + extra + community_profiles(20, seed)


KINDS = ("training", "inference", "preprocessing")
KIND_WEIGHTS = (0.4, 0.4, 0.2)
UNITS = {"training": (4, 16), "inference": (1, 6), "preprocessing": (2, 8)}


def workloads(n: int, seed: int, *, start: int = 0, private_share: float = 0.2) -> list[Task]:
    """``n`` tasks ``t<start>``…: 40 % training, 40 % inference, 20 % preprocessing; units by kind; a maximum
    price of 0.5–4.5 tokens per unit (some afford only community nodes); a value of 1.1–1.6 × the maximum price;
    an SLA (latency 100–500 ms, availability 0.95–0.999, deadline 60–3600 s); ``private_share`` of the tasks are
    private training tasks with ε ∈ {1, 2, 4} and δ = 1e-5."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        private = bool(rng.random() < private_share)
        kind = "training" if private else KINDS[int(rng.choice(3, p=KIND_WEIGHTS))]
        lo, hi = UNITS[kind]
        max_price = round(float(rng.uniform(0.5, 4.5)), 3)
        value = round(max_price * float(rng.uniform(1.1, 1.6)), 3)
        sla = Sla(latency_ms=round(float(rng.uniform(100, 500)), 1),
                  availability=round(float(rng.uniform(0.95, 0.999)), 4),
                  deadline_s=round(float(rng.uniform(60, 3600)), 1))
        eps = float(rng.choice([1.0, 2.0, 4.0])) if private else None
        out.append(Task(id=f"t{start + k}", kind=kind, units=float(rng.integers(lo, hi + 1)), max_price=max_price,
                        sla=sla, value=value, epsilon=eps, delta=1e-5 if private else None))
    return out
