"""WoLF policy hill-climbing (Bowling & Veloso 2002), the learner of PB-MARL (docs/models/ai-bazaar.md).

Per state ``s``: Q-learning ``Q(s,a) ← (1−α) Q(s,a) + α (r + γ max_a' Q(s',a'))``; the average policy
``π̄(s) ← π̄(s) + (π(s) − π̄(s)) / C(s)``; the step ``δ = δ_win`` if ``Σ_a π(s,a) Q(s,a) >= Σ_a π̄(s,a) Q(s,a)``
else ``δ_lose``; then each non-greedy action loses ``min(π(s,a), δ/(|A|−1))`` and the greedy action(s) gain
what was removed. The paper prints ``(δ−1)/(|A|−1)``, a typo: that quantity is negative and would not keep
``π`` a distribution. Ties among greedy actions share the gain equally (no bias toward low indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import MechanismError
from .params import Params


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A generator's state with its 128-bit integers as hex strings (msgpack handles only 64-bit ints)."""
    def enc(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            return {"hex": hex(v)}
        return v
    return enc(rng.bit_generator.state)


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """The inverse of :func:`rng_state`."""
    def dec(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"hex"}:
                return int(v["hex"], 16)
            return {k: dec(x) for k, x in v.items()}
        return v
    st = dec(state)
    name = st.get("bit_generator", "PCG64")
    if name != "PCG64":
        raise MechanismError(f"unsupported bit generator {name!r}")
    bg = np.random.PCG64()
    bg.state = st
    return np.random.Generator(bg)


class WolfPHC:
    """A tabular WoLF-PHC agent.

    Args:
        n_states: number of states.
        n_actions: number of actions (``>= 1``).
        alpha: Q-learning rate (paper: 0.8).
        gamma: discount factor (paper: 0.1).
        delta_win: policy step when winning (paper: 0.0025).
        delta_lose: policy step when losing (paper: 0.01); must be ``>= delta_win``.
        epsilon_explore: probability of a uniformly random action in :meth:`act`.
        seed: seed of the agent's own generator.
    """

    def __init__(self, n_states: int, n_actions: int, *, alpha: float = 0.8, gamma: float = 0.1,
                 delta_win: float = 0.0025, delta_lose: float = 0.01, epsilon_explore: float = 0.05,
                 seed: int) -> None:
        if n_states < 1 or n_actions < 1:
            raise MechanismError(f"need n_states, n_actions >= 1, got {n_states}, {n_actions}")
        if not (0 < alpha <= 1 and 0 <= gamma < 1 and 0 < delta_win <= delta_lose <= 1
                and 0 <= epsilon_explore <= 1):
            raise MechanismError("WoLF-PHC needs 0<alpha<=1, 0<=gamma<1, 0<delta_win<=delta_lose<=1, "
                                 "0<=epsilon_explore<=1")
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.delta_win, self.delta_lose = float(delta_win), float(delta_lose)
        self.epsilon_explore = float(epsilon_explore)
        self.seed = int(seed)
        self.q = np.zeros((self.n_states, self.n_actions))
        self.pi = np.full((self.n_states, self.n_actions), 1.0 / self.n_actions)
        self.pi_avg = self.pi.copy()
        self.count = np.zeros(self.n_states, dtype=np.int64)
        self.rng = np.random.default_rng(self.seed)

    def _state(self, s: int) -> int:
        if not 0 <= int(s) < self.n_states:
            raise MechanismError(f"state {s} out of range 0..{self.n_states - 1}")
        return int(s)

    def act(self, state: int) -> int:
        """Sample an action from ``π(state)`` (uniform with probability ``epsilon_explore``)."""
        s = self._state(state)
        if self.rng.random() < self.epsilon_explore:
            return int(self.rng.integers(self.n_actions))
        cdf = np.cumsum(self.pi[s])
        return int(min(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"), self.n_actions - 1))

    def update(self, state: int, action: int, reward: float, next_state: int) -> None:
        """One WoLF-PHC step: ``action`` played in ``state`` earned ``reward`` and led to ``next_state``."""
        s, s2 = self._state(state), self._state(next_state)
        if not 0 <= int(action) < self.n_actions:
            raise MechanismError(f"action {action} out of range 0..{self.n_actions - 1}")
        if not np.isfinite(reward):
            raise MechanismError(f"reward must be finite, got {reward!r}")
        a = int(action)
        self.q[s, a] = (1 - self.alpha) * self.q[s, a] + self.alpha * (reward + self.gamma * self.q[s2].max())
        self.count[s] += 1
        self.pi_avg[s] += (self.pi[s] - self.pi_avg[s]) / self.count[s]
        if self.n_actions == 1:
            return
        q = self.q[s]
        winning = float(self.pi[s] @ q) >= float(self.pi_avg[s] @ q)
        delta = self.delta_win if winning else self.delta_lose
        greedy = q >= q.max()
        if greedy.all():
            return
        take = np.where(greedy, 0.0, np.minimum(self.pi[s], delta / (self.n_actions - 1)))
        new = self.pi[s] - take
        new[greedy] += take.sum() / greedy.sum()
        new = np.clip(new, 0.0, None)
        self.pi[s] = new / new.sum()

    def policy(self, state: int) -> np.ndarray:
        """A copy of the current policy ``π(state)``."""
        return self.pi[self._state(state)].copy()

    def average_policy(self, state: int) -> np.ndarray:
        """A copy of the average policy ``π̄(state)``."""
        return self.pi_avg[self._state(state)].copy()

    def greedy_action(self, state: int) -> int:
        """The most probable action of ``π(state)`` (lowest index on ties)."""
        return int(np.argmax(self.pi[self._state(state)]))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the agent, as plain lists/ints/floats/strings (msgpack-able)."""
        return {
            "n_states": self.n_states, "n_actions": self.n_actions, "alpha": self.alpha, "gamma": self.gamma,
            "delta_win": self.delta_win, "delta_lose": self.delta_lose,
            "epsilon_explore": self.epsilon_explore, "seed": self.seed,
            "q": self.q.tolist(), "pi": self.pi.tolist(), "pi_avg": self.pi_avg.tolist(),
            "count": [int(c) for c in self.count], "rng": rng_state(self.rng),
        }

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> WolfPHC:
        """Rebuild an agent saved by :meth:`state_dict`.

        Raises:
            MechanismError: missing keys or tables of the wrong shape.
        """
        try:
            agent = cls(int(d["n_states"]), int(d["n_actions"]), alpha=float(d["alpha"]),
                        gamma=float(d["gamma"]), delta_win=float(d["delta_win"]),
                        delta_lose=float(d["delta_lose"]), epsilon_explore=float(d["epsilon_explore"]),
                        seed=int(d["seed"]))
            shape = (agent.n_states, agent.n_actions)
            q, pi, pi_avg = (np.array(d[k], dtype=float) for k in ("q", "pi", "pi_avg"))
            count = np.array(d["count"], dtype=np.int64)
            rng = rng_from_state(d["rng"])
        except (KeyError, TypeError, ValueError) as err:
            raise MechanismError(f"bad WoLF-PHC state: {err}") from err
        if q.shape != shape or pi.shape != shape or pi_avg.shape != shape or count.shape != (agent.n_states,):
            raise MechanismError("bad WoLF-PHC state: table shapes do not match n_states x n_actions")
        agent.q, agent.pi, agent.pi_avg, agent.count, agent.rng = q, pi, pi_avg, count, rng
        return agent


def demand_bucket(total_demand: float, params: Params, n_buckets: int) -> int:
    """The CPP's state: previous total demand bucketed evenly over ``[n F_min, n F_max]`` into ``n_buckets``.

    Values outside the range fall into the first / last bucket.
    """
    if n_buckets < 1:
        raise MechanismError(f"need n_buckets >= 1, got {n_buckets}")
    lo, hi = params.n * params.F_min, params.n * params.F_max
    if hi <= lo:
        return 0
    frac = (float(total_demand) - lo) / (hi - lo)
    return int(min(max(int(np.floor(frac * n_buckets)), 0), n_buckets - 1))
