"""PB-MARL: the repeated pricing game played by learning agents, and the one-sided GA problems.

See docs/models/ai-bazaar.md.

Each episode: the CPP (state = previous total demand, bucketed) picks a price level; every consumer (state =
current price level) picks a demand level; profits are paid; every agent updates. Rewards are divided by a fixed
per-agent scale (the largest profit magnitude on the action grid) so that the step sizes of the gradient learners
mean the same thing for every parameter set; WoLF-PHC and Minimax-Q are invariant to that scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MechanismError
from .baselines import GigaWolf, MinimaxQ, PgaApp, genetic_maximize
from .followers import consumer_profit, cpp_profit, follower_equilibrium
from .leader import leader_profit
from .params import Params, demand_grid, mining_value, price_grid
from .wolf import WolfPHC, demand_bucket

LEARNERS = ("pb-marl", "pga-app", "minimax-q", "giga-wolf")


@dataclass
class Trace:
    """What a learning run produced, one entry per episode.

    Attributes:
        price: posted price.
        greedy_price: the CPP's most probable price in its current state (the learned price).
        cpp_profit: the CPP's profit.
        consumer_profit: every consumer's profit, shape ``(episodes, n)``.
        demand: every consumer's demand, shape ``(episodes, n)``.
    """

    price: np.ndarray
    greedy_price: np.ndarray
    cpp_profit: np.ndarray
    consumer_profit: np.ndarray
    demand: np.ndarray


def _make(kind: str, n_states: int, n_actions: int, n_opp: int, seed: int) -> Any:
    if kind == "pb-marl":
        return WolfPHC(n_states, n_actions, seed=seed)
    if kind == "pga-app":
        return PgaApp(n_states, n_actions, seed=seed)
    if kind == "giga-wolf":
        return GigaWolf(n_states, n_actions, seed=seed)
    if kind == "minimax-q":
        return MinimaxQ(n_states, n_actions, n_opp, lp_every=5, seed=seed)
    raise MechanismError(f"unknown learner {kind!r} (one of {', '.join(LEARNERS)})")


def _update(agent: Any, s: int, a: int, r: float, s2: int, o: int) -> None:
    if isinstance(agent, WolfPHC):
        agent.update(s, a, r, s2)
    else:
        agent.update(s, a, r, s2, opponent=o)


def reward_scales(params: Params) -> tuple[float, np.ndarray]:
    """The fixed reward divisors of the CPP and of each consumer (their largest profit magnitude on the grid).

    Online learners (the network's agents) divide their profits by the same scales as the offline loop, so a
    pre-trained agent keeps learning on the scale it was trained on.
    """
    scale_cpp = max(1.0, abs(params.p_max - params.C) * params.n * params.F_max)
    a_worst = np.maximum(np.abs(params.u * params.p_max - (1 - params.beta) * params.C_b),
                         np.abs(params.u * params.p_min - (1 - params.beta) * params.C_b))
    return scale_cpp, np.maximum(1.0, a_worst * params.F_max + mining_value(params))


def _play(params: Params, learner: str, *, episodes: int, price_levels: int, demand_levels: int, buckets: int,
          seed: int) -> tuple[Trace, Any, list[Any]]:
    if episodes < 1:
        raise MechanismError(f"need episodes >= 1, got {episodes}")
    prices, demands = price_grid(params, price_levels), demand_grid(params, demand_levels)
    seeds = np.random.SeedSequence(seed).generate_state(params.n + 1)
    cpp = _make(learner, buckets, price_levels, buckets, int(seeds[0]))
    cons = [_make(learner, price_levels, demand_levels, buckets, int(seeds[i + 1])) for i in range(params.n)]
    scale_cpp, scale_c = reward_scales(params)
    out_p, out_g, out_u = np.empty(episodes), np.empty(episodes), np.empty(episodes)
    out_ui, out_f = np.empty((episodes, params.n)), np.empty((episodes, params.n))
    s_cpp = buckets // 2
    pending: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
    for t in range(episodes):
        out_g[t] = prices[cpp.greedy_action(s_cpp)]
        a_p = cpp.act(s_cpp)
        p = float(prices[a_p])
        if pending is not None:
            s_prev, acts_prev, r_prev, o_prev = pending
            for i, agent in enumerate(cons):
                _update(agent, s_prev, int(acts_prev[i]), float(r_prev[i]), a_p, int(o_prev[i]))
        acts = np.array([agent.act(a_p) for agent in cons])
        F = demands[acts]
        u_i = consumer_profit(params, p, F)
        u_c = cpp_profit(params, p, F)
        s_next = demand_bucket(float(F.sum()), params, buckets)
        _update(cpp, s_cpp, a_p, u_c / scale_cpp, s_next, s_next)
        others = F.sum() - F
        opp = np.array([demand_bucket(float(x) * params.n / max(params.n - 1, 1), params, buckets)
                        for x in others])
        pending = (a_p, acts, u_i / scale_c, opp)
        out_p[t], out_u[t], out_ui[t], out_f[t] = p, u_c, u_i, F
        s_cpp = s_next
    trace = Trace(price=out_p, greedy_price=out_g, cpp_profit=out_u, consumer_profit=out_ui, demand=out_f)
    return trace, cpp, cons


def run_learning(params: Params, learner: str, *, episodes: int, price_levels: int = 11,
                 demand_levels: int = 10, buckets: int = 4, seed: int = 0) -> Trace:
    """Play ``episodes`` rounds with the CPP and every consumer driven by ``learner`` agents.

    Args:
        params: the game.
        learner: one of :data:`LEARNERS` (``"pb-marl"`` is WoLF-PHC).
        episodes: number of rounds.
        price_levels, demand_levels: sizes of the action grids on ``[p_min, p_max]`` and ``[F_min, F_max]``.
        buckets: number of demand buckets of the CPP's state (and of the opponent observation of Minimax-Q).
        seed: seed of all agents (each agent gets its own stream).
    """
    return _play(params, learner, episodes=episodes, price_levels=price_levels, demand_levels=demand_levels,
                 buckets=buckets, seed=seed)[0]


def pretrain_wolf(params: Params, *, episodes: int, price_levels: int, demand_levels: int, buckets: int,
                  seed: int) -> tuple[WolfPHC, list[WolfPHC], Trace]:
    """PB-MARL self-play: the CPP's and every consumer's WoLF-PHC agent after ``episodes`` rounds.

    The network uses this as offline pre-training: each node then keeps learning online from where its agent
    stopped (same grids, same reward scales).

    Returns:
        ``(cpp_agent, consumer_agents, trace)``.
    """
    trace, cpp, cons = _play(params, "pb-marl", episodes=episodes, price_levels=price_levels,
                             demand_levels=demand_levels, buckets=buckets, seed=seed)
    return cpp, cons, trace


def discrete_equilibrium_price(params: Params, price_levels: int) -> float:
    """The leader's best price level on the grid against the (continuous) follower equilibrium."""
    prices = price_grid(params, price_levels)
    values = [leader_profit(params, float(q)) for q in prices]
    return float(prices[int(np.argmax(values))])


def episodes_to_converge(series: np.ndarray, target: float, tol: float) -> int | None:
    """The first episode from which ``series`` stays within ``tol`` of ``target`` (``None`` if never)."""
    outside = np.flatnonzero(np.abs(np.asarray(series) - target) > tol + 1e-12)
    if outside.size == 0:
        return 0
    last = int(outside[-1]) + 1
    return last if last < len(series) else None


def one_sided_ga(params: Params, side: str, *, seed: int = 0, population: int = 40,
                 generations: int = 60) -> dict[str, Any]:
    """The paper's GA baselines: solve one side's problem alone over the whole box ``(p, F)``.

    ``side="P1"`` maximises the CPP's profit (4) with the consumers' incentives ignored; ``side="P2"`` maximises
    the consumers' total profit (5) with the CPP's ignored. Both sides' profits at the GA's point are returned.
    """
    if side not in ("P1", "P2"):
        raise MechanismError(f"side must be P1 or P2, got {side!r}")
    lo = np.concatenate([[params.p_min], np.full(params.n, params.F_min)])
    hi = np.concatenate([[params.p_max], np.full(params.n, params.F_max)])

    def fitness(x: np.ndarray) -> float:
        if side == "P1":
            return cpp_profit(params, float(x[0]), x[1:])
        return float(np.sum(consumer_profit(params, float(x[0]), x[1:])))

    x, _ = genetic_maximize(fitness, lo, hi, population=population, generations=generations, seed=seed)
    p, F = float(x[0]), x[1:]
    return {"price": p, "demand": F, "cpp_profit": cpp_profit(params, p, F),
            "consumer_profit": consumer_profit(params, p, F)}


def equilibrium_profits(params: Params, p: float) -> tuple[float, np.ndarray]:
    """Both sides' profits at price ``p`` with the followers in equilibrium."""
    F = follower_equilibrium(params, p)
    return cpp_profit(params, p, F), consumer_profit(params, p, F)
