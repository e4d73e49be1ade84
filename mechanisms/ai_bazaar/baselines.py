"""Baselines of the paper's Fig. 6 and 8: PGA-APP, Minimax-Q, GIGA-WoLF, and a genetic algorithm.

All tabular learners share WoLF-PHC's interface: ``act(state)`` and
``update(state, action, reward, next_state, opponent=0)``; ``opponent`` (the other side's bucketed action) is
used by Minimax-Q only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import MechanismError


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, v.size + 1)
    rho = int(np.nonzero(u - css / k > 0)[0][-1])
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


class _Tabular:
    def __init__(self, n_states: int, n_actions: int, *, alpha: float, gamma: float,
                 epsilon_explore: float, seed: int) -> None:
        if n_states < 1 or n_actions < 1:
            raise MechanismError(f"need n_states, n_actions >= 1, got {n_states}, {n_actions}")
        self.n_states, self.n_actions = n_states, n_actions
        self.alpha, self.gamma, self.epsilon_explore = alpha, gamma, epsilon_explore
        self.pi = np.full((n_states, n_actions), 1.0 / n_actions)
        self.rng = np.random.default_rng(seed)

    def act(self, state: int) -> int:
        """Sample from ``π(state)`` (uniform with probability ``epsilon_explore``)."""
        if self.rng.random() < self.epsilon_explore:
            return int(self.rng.integers(self.n_actions))
        cdf = np.cumsum(self.pi[state])
        return int(min(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"), self.n_actions - 1))

    def greedy_action(self, state: int) -> int:
        """The most probable action in ``state``."""
        return int(np.argmax(self.pi[state]))


class PgaApp(_Tabular):
    """Policy gradient ascent with approximate policy prediction (Zhang & Lesser, AAAI 2010).

    ``δ̂(s,a) = (Q(s,a) − V(s)) / (1 − π(s,a))`` (``Q − V`` when ``π = 1``), ``δ = δ̂ − γ_p |δ̂| π(s,a)``,
    ``π(s) ← Π_Δ(π(s) + η δ(s))``.
    """

    def __init__(self, n_states: int, n_actions: int, *, alpha: float = 0.8, gamma: float = 0.1,
                 eta: float = 0.01, prediction: float = 3.0, epsilon_explore: float = 0.05, seed: int) -> None:
        super().__init__(n_states, n_actions, alpha=alpha, gamma=gamma, epsilon_explore=epsilon_explore,
                         seed=seed)
        self.eta, self.prediction = eta, prediction
        self.q = np.zeros((n_states, n_actions))

    def update(self, state: int, action: int, reward: float, next_state: int, opponent: int = 0) -> None:
        """One PGA-APP step."""
        s = state
        self.q[s, action] = (1 - self.alpha) * self.q[s, action] + self.alpha * (
            reward + self.gamma * self.q[next_state].max())
        pi = self.pi[s]
        v = float(pi @ self.q[s])
        diff = self.q[s] - v
        grad = np.where(pi < 1.0, diff / np.maximum(1.0 - pi, 1e-12), diff)
        grad = grad - self.prediction * np.abs(grad) * pi
        self.pi[s] = project_simplex(pi + self.eta * grad)


class GigaWolf(_Tabular):
    """GIGA-WoLF (Bowling, NIPS 2005) with ``Q(s,·)`` as the estimate of the reward gradient.

    ``π̂ ← Π(π + η Q)``, ``z' ← Π(z + η Q / 3)``, ``δ = min(1, |z' − z| / |z' − π̂|)``, ``π ← π̂ + δ (z' − π̂)``.
    """

    def __init__(self, n_states: int, n_actions: int, *, alpha: float = 0.8, gamma: float = 0.1,
                 eta: float = 0.01, epsilon_explore: float = 0.05, seed: int) -> None:
        super().__init__(n_states, n_actions, alpha=alpha, gamma=gamma, epsilon_explore=epsilon_explore,
                         seed=seed)
        self.eta = eta
        self.q = np.zeros((n_states, n_actions))
        self.z = self.pi.copy()

    def update(self, state: int, action: int, reward: float, next_state: int, opponent: int = 0) -> None:
        """One GIGA-WoLF step."""
        s = state
        self.q[s, action] = (1 - self.alpha) * self.q[s, action] + self.alpha * (
            reward + self.gamma * self.q[next_state].max())
        g = self.q[s]
        hat = project_simplex(self.pi[s] + self.eta * g)
        z_new = project_simplex(self.z[s] + self.eta * g / 3.0)
        gap = float(np.linalg.norm(z_new - hat))
        step = 1.0 if gap <= 1e-15 else min(1.0, float(np.linalg.norm(z_new - self.z[s])) / gap)
        self.pi[s] = project_simplex(hat + step * (z_new - hat))
        self.z[s] = z_new


def minimax_policy(q: np.ndarray) -> tuple[np.ndarray, float]:
    """``max_π min_o Σ_a π(a) q[a, o]`` by linear programming (scipy HiGHS).

    Returns:
        The maximin policy and its value.
    """
    n_a, n_o = q.shape
    c = np.zeros(n_a + 1)
    c[-1] = -1.0
    a_ub = np.hstack([-q.T, np.ones((n_o, 1))])
    a_eq = np.append(np.ones(n_a), 0.0)[None, :]
    from scipy.optimize import linprog  # Minimax-Q's LP: loaded by the baselines only, never by a node

    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n_o), A_eq=a_eq, b_eq=[1.0],
                  bounds=[(0, None)] * n_a + [(None, None)], method="highs")
    if res.status != 0:
        raise MechanismError(f"minimax LP failed: {res.message}")
    return project_simplex(np.asarray(res.x[:n_a])), float(res.x[-1])


class MinimaxQ(_Tabular):
    """Minimax-Q (Littman 1994): ``Q(s,a,o)``, the policy and ``V(s)`` from the maximin LP.

    ``opponent`` is the other side's action as observed by this agent (bucketed demand for the CPP, the others'
    bucketed demand for a consumer). The LP of a state is re-solved every ``lp_every`` visits (1: every
    visit, as in Littman's algorithm; larger values trade fidelity for speed in long runs).
    """

    def __init__(self, n_states: int, n_actions: int, n_opponent: int, *, alpha: float = 0.8,
                 gamma: float = 0.1, epsilon_explore: float = 0.05, lp_every: int = 1, seed: int) -> None:
        super().__init__(n_states, n_actions, alpha=alpha, gamma=gamma, epsilon_explore=epsilon_explore,
                         seed=seed)
        self.n_opponent = n_opponent
        self.lp_every = max(1, int(lp_every))
        self.visits = np.zeros(n_states, dtype=np.int64)
        self.q = np.zeros((n_states, n_actions, n_opponent))
        self.v = np.zeros(n_states)

    def update(self, state: int, action: int, reward: float, next_state: int, opponent: int = 0) -> None:
        """One Minimax-Q step (one LP for the visited state)."""
        s = state
        if not 0 <= opponent < self.n_opponent:
            raise MechanismError(f"opponent action {opponent} out of range")
        self.q[s, action, opponent] = (1 - self.alpha) * self.q[s, action, opponent] + self.alpha * (
            reward + self.gamma * self.v[next_state])
        self.visits[s] += 1
        if self.visits[s] % self.lp_every == 0:
            self.pi[s], self.v[s] = minimax_policy(self.q[s])


def genetic_maximize(f: Callable[[np.ndarray], float], lo: np.ndarray, hi: np.ndarray, *, population: int = 40,
                     generations: int = 60, mutation: float = 0.1, seed: int) -> tuple[np.ndarray, float]:
    """A real-coded genetic algorithm: tournament selection, blend crossover, Gaussian mutation, elitism.

    Args:
        f: fitness to maximise over the box ``[lo, hi]``.
        lo, hi: bounds, same shape.
        population, generations: sizes.
        mutation: mutation scale as a fraction of the box width.
        seed: RNG seed.

    Returns:
        The best point found and its fitness.
    """
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    width = hi - lo
    pop = lo + rng.random((population, lo.size)) * width
    fit = np.array([f(x) for x in pop])
    for _ in range(generations):
        elite = pop[np.argmax(fit)].copy()
        elite_fit = float(fit.max())
        i, j = rng.integers(population, size=(2, population))
        parents = np.where((fit[i] >= fit[j])[:, None], pop[i], pop[j])
        mates = parents[rng.permutation(population)]
        w = rng.uniform(-0.25, 1.25, size=parents.shape)
        child = w * parents + (1 - w) * mates
        child += rng.normal(0.0, mutation, size=child.shape) * width * (rng.random(child.shape) < 0.3)
        pop = np.clip(child, lo, hi)
        pop[0] = elite
        fit = np.array([f(x) for x in pop])
        fit[0] = elite_fit
    k = int(np.argmax(fit))
    return pop[k], float(fit[k])
