"""Device-side pricers (docs/models/collab.md "Over the network"): each edge device moves its own two prices
(compute, data) from what the pool tells it — the direction of its demand − supply gap and the relative gap —
instead of the pool moving every price by one rule.

* :class:`QLearningAgent` — the Q-learning baseline of ``pricing.py`` run by each device for its own slots:
  state = (bucket of the relative gap, direction), action = a multiple of Δp, reward = the reduction of its
  relative gap; ε-greedy with the device's own generator.
* :class:`EvolutionaryAgent` — a (1+1) evolution strategy on each slot's step multiple: the multiple is
  mutated log-normally every iteration and the mutation is kept only when the slot's relative gap shrank
  (otherwise the parent comes back). Offline, the evolutionary baseline evaluates a whole population of price
  vectors on the market per iteration; a device cannot, so this is its device-side counterpart.

Both move only in the gap direction and never further than ``max_multiple × Δp``; the pool checks it.
"""

from __future__ import annotations

import abc
import math

import numpy as np

from ..errors import MechanismError
from .pricing import BUCKETS, MULTIPLES, PricingConfig

EVO_MIN, EVO_MAX = 0.01, 8.0


class DeviceAgent(abc.ABC):
    """A device's pricer for its two slots (0: compute, 1: data)."""

    max_multiple = 1.0

    def __init__(self, cfg: PricingConfig, seed: int) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)

    @abc.abstractmethod
    def steps(self, gaps: tuple[float, float], directions: tuple[int, int]) -> tuple[float, float]:
        """The step (≥ 0, in price units) of each slot this iteration; the price moves by ``direction × step``."""

    def max_step(self) -> float:
        """The largest step the pool accepts from this kind of agent."""
        return self.max_multiple * self.cfg.step


class QLearningAgent(DeviceAgent):
    """Q-learning over (gap bucket, direction) states with step multiples as actions."""

    max_multiple = max(MULTIPLES)

    def __init__(self, cfg: PricingConfig, seed: int) -> None:
        super().__init__(cfg, seed)
        self.q = np.zeros((2, 2 * (len(BUCKETS) + 1), len(MULTIPLES)))
        self.last: dict[int, tuple[int, int, float]] = {}

    @staticmethod
    def _state(gap: float, direction: int) -> int:
        b = int(np.searchsorted(BUCKETS, gap, side="right"))
        return 2 * b + (1 if direction > 0 else 0)

    def steps(self, gaps: tuple[float, float], directions: tuple[int, int]) -> tuple[float, float]:
        c = self.cfg
        for i, (s, a, g) in self.last.items():
            s2 = self._state(gaps[i], directions[i])
            reward = g - gaps[i]
            self.q[i, s, a] += c.q_alpha * (reward + c.q_gamma * self.q[i, s2].max() - self.q[i, s, a])
        self.last = {}
        out = [0.0, 0.0]
        for i in range(2):
            if directions[i] == 0:
                continue
            s = self._state(gaps[i], directions[i])
            a = int(self.rng.integers(len(MULTIPLES))) if self.rng.random() < c.q_epsilon else int(
                np.argmax(self.q[i, s]))
            out[i] = MULTIPLES[a] * c.step
            self.last[i] = (s, a, gaps[i])
        return out[0], out[1]


class EvolutionaryAgent(DeviceAgent):
    """A (1+1) evolution strategy per slot on the step multiple."""

    max_multiple = EVO_MAX

    def __init__(self, cfg: PricingConfig, seed: int) -> None:
        super().__init__(cfg, seed)
        self.parent = [1.0, 1.0]
        self.child = [1.0, 1.0]
        self.last_gap: list[float | None] = [None, None]

    def steps(self, gaps: tuple[float, float], directions: tuple[int, int]) -> tuple[float, float]:
        out = [0.0, 0.0]
        for i in range(2):
            last = self.last_gap[i]
            if last is not None:
                if gaps[i] < last:
                    self.parent[i] = self.child[i]  # the mutation helped: keep it
                self.last_gap[i] = None
            if directions[i] == 0:
                continue
            self.child[i] = min(max(self.parent[i] * math.exp(0.5 * self.rng.standard_normal()), EVO_MIN), EVO_MAX)
            out[i] = self.child[i] * self.cfg.step
            self.last_gap[i] = gaps[i]
        return out[0], out[1]


AGENTS: dict[str, type[DeviceAgent]] = {"qlearning": QLearningAgent, "evolutionary": EvolutionaryAgent}


def make_agent(algorithm: str, cfg: PricingConfig, seed: int) -> DeviceAgent:
    """The device-side pricer of ``algorithm``.

    Raises:
        MechanismError: ``algorithm`` has no device-side pricer.
    """
    if algorithm not in AGENTS:
        raise MechanismError(f"no device-side pricer for {algorithm!r} (one of {', '.join(AGENTS)})")
    return AGENTS[algorithm](cfg, seed)
