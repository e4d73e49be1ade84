"""Price regulation (docs/models/collab.md): SPA, PDPA, TAPA, and the Q-learning and evolutionary baselines.

Every rule moves a seller's price only in the direction of its demand − supply gap (up on excess demand,
down on excess supply), leaves cleared sellers alone, and keeps every price in [0, p_max] of its resource.
``run_pricing`` iterates evaluate → adjust until the market is in equilibrium or the iteration cap, then
settles the trades at the final prices.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import MechanismError
from .market import MarketState, clear_market, evaluate_market
from .model import Publisher, Seller
from .portfolio import Portfolio

ALGORITHMS = ("spa", "pdpa", "tapa", "qlearning", "evolutionary")

Evaluate = Callable[[list[float]], MarketState]


@dataclass(frozen=True)
class PricingConfig:
    """Parameters of the price regulation (paper values as defaults where the paper gives them).

    Attributes:
        max_iter: iteration cap (paper: 200; 500 in the pricing comparison).
        tol: relative equilibrium tolerance per seller.
        p_max_compute: highest allowed compute price.
        p_max_data: highest allowed data price.
        sigma: SPA's scale coefficient σ (share of out-of-equilibrium sellers adjusted).
        step: SPA's price step Δp (also the unit step of the learning baselines).
        delta: PDPA's drop coefficient δ.
        pdpa_min_step: PDPA's least step (when every price of a resource is equal the drop is 0).
        kappa1: TAPA's gap coefficient κ1.
        kappa2: TAPA's time coefficient κ2.
        step_min: TAPA's least single adjustment p_s,min.
        step_max: TAPA's largest single adjustment p_s,max.
        q_alpha: Q-learning rate.
        q_gamma: Q-learning discount.
        q_epsilon: Q-learning exploration rate.
        evo_population: candidates per generation of the evolutionary pricer.
        damping: factor by which a seller's step shrinks when its gap direction reverses (1 = never: the
            paper's rules verbatim; see docs/adr/0031). PDPA is exempt: its step δ·(p_max − p_min) already
            shrinks as prices converge.
        damping_growth: factor by which a damped step recovers (up to the rule's own step) while the
            direction persists.
        seed: seed of the learning baselines.
        method: the publishers' portfolio solver.
        integral: whether publishers buy whole units.
        record_history: keep (prices, directions) of every iteration in the result.
    """

    max_iter: int = 200
    tol: float = 0.05
    p_max_compute: float = 25.0
    p_max_data: float = 25.0
    sigma: float = 0.5
    step: float = 0.5
    delta: float = 0.5
    pdpa_min_step: float = 0.05
    kappa1: float = 0.5
    kappa2: float = 0.5
    step_min: float = 0.05
    step_max: float = 2.0
    q_alpha: float = 0.5
    q_gamma: float = 0.5
    q_epsilon: float = 0.1
    evo_population: int = 6
    damping: float = 0.5
    damping_growth: float = 1.2
    seed: int = 0
    method: str = "sgsa"
    integral: bool = False
    record_history: bool = False

    def __post_init__(self) -> None:
        if self.max_iter < 0 or self.evo_population < 1:
            raise MechanismError("max_iter must be >= 0 and evo_population >= 1")
        for name in ("tol", "p_max_compute", "p_max_data", "step", "delta", "pdpa_min_step", "kappa1",
                     "kappa2", "step_min", "step_max"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise MechanismError(f"{name} must be finite and >= 0, got {v!r}")
        if not 0 < self.sigma <= 1:
            raise MechanismError("sigma must lie in (0, 1]")
        if not 0 < self.damping <= 1 or not math.isfinite(self.damping_growth) or self.damping_growth < 1:
            raise MechanismError("damping must lie in (0, 1] and damping_growth must be >= 1")
        if self.step_min > self.step_max:
            raise MechanismError("step_min must not exceed step_max")
        for name in ("q_alpha", "q_gamma", "q_epsilon"):
            if not 0 <= getattr(self, name) <= 1:
                raise MechanismError(f"{name} must lie in [0, 1]")


@dataclass(frozen=True)
class PricingResult:
    """Outcome of a pricing run.

    Attributes:
        algorithm: the rule used.
        iterations: price adjustments made.
        equilibrium: whether the final prices clear the market.
        compute_prices: final compute price per seller.
        data_prices: final data price per seller.
        gap: max |demand − supply| in money at the final prices.
        total_payoff: Σ publishers' payoff of the settled trades.
        portfolios: the settled trades, one per publisher.
        state: the market at the final prices.
        history: per iteration (prices, directions) when recorded: the prices of every evaluation, the start
            included (``to_dict`` reports them as ``price_path``).
    """

    algorithm: str
    iterations: int
    equilibrium: bool
    compute_prices: tuple[float, ...]
    data_prices: tuple[float, ...]
    gap: float
    total_payoff: float
    portfolios: tuple[Portfolio, ...]
    state: MarketState
    history: tuple[tuple[tuple[float, ...], tuple[int, ...]], ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary (the CLI's output)."""
        n = len(self.compute_prices)
        return {
            "algorithm": self.algorithm, "iterations": self.iterations, "equilibrium": self.equilibrium,
            "cleared": self.equilibrium,
            "prices": {"compute": list(self.compute_prices), "data": list(self.data_prices)},
            "price_path": [{"compute": list(p[:n]), "data": list(p[n:])} for p, _ in self.history],
            "trades": [{"compute": list(p.compute_purchases), "data": list(p.data_purchases), "cost": p.spent}
                       for p in self.portfolios],
            "gap": self.gap, "total_payoff": self.total_payoff,
            "spent": [p.spent for p in self.portfolios],
            "payoffs": [p.payoff for p in self.portfolios],
            "payoff": [p.payoff for p in self.portfolios],
        }


class _Rule(abc.ABC):
    """A price-update rule over slots (compute offers then data offers).

    Every rule proposes a nominal step per slot; ``moved`` scales it by the slot's damping factor λ_i
    (halved, by default, when the slot's gap direction reverses against its last move, regrown by
    ``damping_growth`` up to 1 while the direction persists) and moves the price in its gap direction.
    """

    damped = True

    def __init__(self, cfg: PricingConfig, n: int) -> None:
        self.cfg = cfg
        self.n = n
        self.pmax = [cfg.p_max_compute] * n + [cfg.p_max_data] * n
        self.lam = [1.0] * (2 * n)
        self.last_dir = [0] * (2 * n)
        self._seen: MarketState | None = None

    def groups(self) -> tuple[range, range]:
        return range(0, self.n), range(self.n, 2 * self.n)

    def _observe(self, state: MarketState) -> None:
        """Update the damping factors once per market state (before any move is derived from it)."""
        if self._seen is state:
            return
        self._seen = state
        if not self.damped:
            return
        c = self.cfg
        for i, last in enumerate(self.last_dir):
            d = state.direction(i)
            if d == 0 or last == 0:
                continue
            self.lam[i] = self.lam[i] * c.damping if d == -last else min(1.0, self.lam[i] * c.damping_growth)

    def moved(self, prices: Sequence[float], state: MarketState, steps: Sequence[float],
              commit: bool = True) -> list[float]:
        """Move each slot by its damped step in its gap direction, clipped to [0, p_max].

        Args:
            prices: current prices per slot.
            state: the market at those prices.
            steps: the rule's nominal step per slot (≥ 0).
            commit: record the moves as made (False for candidates that may be discarded).
        """
        self._observe(state)
        out = []
        for i, (p, s) in enumerate(zip(prices, steps, strict=True)):
            d = state.direction(i)
            out.append(min(max(p + d * s * self.lam[i], 0.0), self.pmax[i]))
            if commit and d != 0 and s > 0:
                self.last_dir[i] = d
        return out

    def commit(self, prices: Sequence[float], new: Sequence[float], state: MarketState) -> None:
        """Record the moves of an adopted candidate (see ``moved(commit=False)``)."""
        for i, (a, b) in enumerate(zip(prices, new, strict=True)):
            if b != a:
                self.last_dir[i] = state.direction(i)

    @abc.abstractmethod
    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        """The next prices (and their market state when the rule already evaluated them)."""


class _Spa(_Rule):
    """SPA: rank the out-of-equilibrium sellers of each resource by |demand − supply| and move the top σ-share
    by Δp."""

    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        steps = [0.0] * len(prices)
        for grp in self.groups():
            out = [i for i in grp if state.direction(i) != 0]
            out.sort(key=lambda i: (-abs(state.demand[i] - state.supply[i]), -state.relative_gap(i), i))
            for i in out[: math.ceil(self.cfg.sigma * len(out))]:
                steps[i] = self.cfg.step
        return self.moved(prices, state, steps), None


class _Pdpa(_Rule):
    """PDPA: every out-of-equilibrium seller moves by δ × (highest − lowest current price of its resource).

    Not damped: the drop shrinks by itself as the prices of a resource draw together."""

    damped = False

    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        steps = [0.0] * len(prices)
        for grp in self.groups():
            live = [prices[i] for i in grp if state.capacity[i] > 0]
            drop = (max(live) - min(live)) if live else 0.0
            for i in grp:
                steps[i] = max(self.cfg.delta * drop, self.cfg.pdpa_min_step)
        return self.moved(prices, state, steps), None


class _Tapa(_Rule):
    """TAPA: step κ1·|demand − supply|/supply + κ2·t/t_max, clipped to [p_s,min, p_s,max]."""

    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        c = self.cfg
        t_max = max(1, c.max_iter)
        steps = [min(max(c.kappa1 * state.relative_gap(i) + c.kappa2 * t / t_max, c.step_min), c.step_max)
                 for i in range(len(prices))]
        return self.moved(prices, state, steps), None


BUCKETS = (0.1, 0.3, 0.6, 1.0)
MULTIPLES = (0.25, 0.5, 1.0, 2.0)


class _QLearning(_Rule):
    """Q-learning baseline: each offer learns the size of its step (a multiple of Δp, always in the gap
    direction) from state = (bucket of the relative gap, direction); reward = reduction of its relative
    gap."""

    def __init__(self, cfg: PricingConfig, n: int) -> None:
        super().__init__(cfg, n)
        self.rng = np.random.default_rng(cfg.seed)
        self.q = np.zeros((2 * n, 2 * (len(BUCKETS) + 1), len(MULTIPLES)))
        self.last: dict[int, tuple[int, int, float]] = {}

    @staticmethod
    def _state(state: MarketState, i: int) -> int:
        b = int(np.searchsorted(BUCKETS, state.relative_gap(i), side="right"))
        return 2 * b + (1 if state.direction(i) > 0 else 0)

    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        c = self.cfg
        for i, (s, a, g) in self.last.items():  # learn from the previous move
            s2 = self._state(state, i)
            reward = g - state.relative_gap(i)
            self.q[i, s, a] += c.q_alpha * (reward + c.q_gamma * self.q[i, s2].max() - self.q[i, s, a])
        self.last = {}
        steps = [0.0] * len(prices)
        for i in range(len(prices)):
            if state.direction(i) == 0:
                continue
            s = self._state(state, i)
            if self.rng.random() < c.q_epsilon:
                a = int(self.rng.integers(len(MULTIPLES)))
            else:
                a = int(np.argmax(self.q[i, s]))
            steps[i] = MULTIPLES[a] * c.step
            self.last[i] = (s, a, state.relative_gap(i))
        return self.moved(prices, state, steps), None


def _misfit(state: MarketState) -> float:
    """Σ relative gaps of the uncleared offers (0 in equilibrium)."""
    return sum(state.relative_gap(i) for i in range(len(state.prices)) if not state.cleared[i])


class _Evolutionary(_Rule):
    """Evolutionary baseline: a population of step-size vectors (multiples of Δp, in the gap direction) is
    mutated from the best one; each candidate price vector is evaluated on the market and the fittest (least
    total relative gap) is adopted. One generation is one iteration."""

    def __init__(self, cfg: PricingConfig, n: int) -> None:
        super().__init__(cfg, n)
        self.rng = np.random.default_rng(cfg.seed)
        self.best = np.ones(2 * n)

    def propose(self, t: int, prices: list[float], state: MarketState, evaluate: Evaluate
                ) -> tuple[list[float], MarketState | None]:
        c = self.cfg
        pop = [self.best]
        for k in range(1, c.evo_population):
            if k == c.evo_population - 1 and k > 1:
                pop.append(self.rng.uniform(0.0, 4.0, size=self.best.shape))
            else:
                noise = np.exp(0.5 * self.rng.standard_normal(self.best.shape))
                pop.append(np.clip(self.best * noise, 0.01, 8.0))
        best: tuple[float, list[float], MarketState, np.ndarray] | None = None
        for genes in pop:
            cand = self.moved(prices, state, list(genes * c.step), commit=False)
            st = evaluate(cand)
            fit = _misfit(st)
            if best is None or fit < best[0]:
                best = (fit, cand, st, genes)
        assert best is not None
        self.best = best[3]
        self.commit(prices, best[1], state)
        return best[1], best[2]


_RULES: dict[str, type[_Rule]] = {"spa": _Spa, "pdpa": _Pdpa, "tapa": _Tapa, "qlearning": _QLearning,
                                  "evolutionary": _Evolutionary}


class Regulator:
    """The price rule as a step function, for a regulator that evaluates the market itself (the network's
    resource pool, which gets the demand from the publishers' orders): ``next_prices(t, prices, state)`` is
    exactly the move :func:`run_pricing` makes at iteration ``t`` (the rule keeps its damping state between
    calls).

    Raises:
        MechanismError: an unknown rule, or one that must evaluate candidate prices on the market itself
            (``evolutionary``).
    """

    def __init__(self, algorithm: str, config: PricingConfig, n_sellers: int) -> None:
        if algorithm not in _RULES:
            raise MechanismError(f"unknown pricing algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")
        if algorithm == "evolutionary":
            raise MechanismError("the evolutionary pricer evaluates candidate prices on the market: run it offline")
        self.rule = _RULES[algorithm](config, n_sellers)

    def next_prices(self, t: int, prices: list[float], state: MarketState) -> list[float]:
        """The prices of iteration ``t + 1`` (compute prices then data prices)."""

        def no_evaluation(_: list[float]) -> MarketState:
            raise MechanismError("this rule does not evaluate candidates")

        new, _ = self.rule.propose(t, prices, state, no_evaluation)
        return new


def _with_prices(sellers: Sequence[Seller], prices: Sequence[float]) -> list[Seller]:
    n = len(sellers)
    return [s.with_prices(prices[i], prices[n + i]) for i, s in enumerate(sellers)]


def run_pricing(sellers: Sequence[Seller], publishers: Sequence[Publisher], algorithm: str = "tapa",
                config: PricingConfig | None = None) -> PricingResult:
    """Regulate prices until the market clears or the iteration cap, then settle the trades.

    Args:
        sellers: offers with their starting prices.
        publishers: buyers (served in this order).
        algorithm: ``"spa"``, ``"pdpa"``, ``"tapa"``, ``"qlearning"`` or ``"evolutionary"``.
        config: parameters (defaults: the paper's).

    Returns:
        The result; ``equilibrium`` is False when the cap was hit first (``iterations == max_iter``).

    Raises:
        MechanismError: unknown algorithm, empty market, or a starting price above its p_max.
    """
    if algorithm not in _RULES:
        raise MechanismError(f"unknown pricing algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")
    cfg = config or PricingConfig()
    if not sellers or not publishers:
        raise MechanismError("a market needs at least one seller and one publisher")
    for i, s in enumerate(sellers):
        if s.compute_price > cfg.p_max_compute or s.data_price > cfg.p_max_data:
            raise MechanismError(f"seller {i}'s starting price is above p_max")
    n = len(sellers)
    rule = _RULES[algorithm](cfg, n)

    def evaluate(prices: list[float]) -> MarketState:
        return evaluate_market(_with_prices(sellers, prices), publishers, cfg.tol, cfg.method, cfg.integral)

    prices = [s.compute_price for s in sellers] + [s.data_price for s in sellers]
    state = evaluate(prices)
    history = []
    t = 0
    while not state.equilibrium and t < cfg.max_iter:
        new, st = rule.propose(t, prices, state, evaluate)
        if cfg.record_history:
            history.append((tuple(prices), tuple(state.direction(i) for i in range(2 * n))))
        prices = new
        state = st if st is not None else evaluate(prices)
        t += 1
    if cfg.record_history:
        history.append((tuple(prices), tuple(state.direction(i) for i in range(2 * n))))
    final = _with_prices(sellers, prices)
    ports = clear_market(final, publishers, cfg.method, cfg.integral)
    return PricingResult(algorithm, t, state.equilibrium, tuple(prices[:n]), tuple(prices[n:]), state.gap,
                         sum(p.payoff for p in ports), tuple(ports), state, tuple(history))
