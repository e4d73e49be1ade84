"""Training of the monotone variant: CMA-ES on the exact auction's mean requester utility (no surrogate).

The mechanism is truthful for every parameter value (:mod:`.monotone`), so training needs no regret term and
no misreport search: it maximises the sample mean of ``V(W*) - sum_s p_s`` at truthful bids over a fixed,
seeded training sample (sample-average approximation). The objective is piecewise smooth in the parameters
(the winner set jumps), so a derivative-free evolution strategy (``cma``, an optional extra:
``pip install -e '.[train]'``) optimises the deployed rule itself rather than a softmax relaxation of it.
Set values ``V(W)`` depend only on the public profiles, so they are computed once per training sample.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import MechanismError
from .baselines import _set_values, winner_sets
from .monotone import MAX_SELLERS, MonotoneRANet, Transform, seller_features
from .registry import get_setting


@dataclass(frozen=True)
class MonotoneConfig:
    """Hyper-parameters of one training run.

    Attributes:
        seed: seeds the training sample (``numpy``) and CMA-ES.
        samples: training profiles (the sample-average objective).
        groups, units: ``G`` groups of ``K`` linear units in the ``min_g max_k`` transform.
        evaluations: CMA-ES budget of objective evaluations.
        popsize: CMA-ES population (0: its default ``4 + 3 ln n``).
        sigma: initial step size (per-coordinate scales below multiply it).
        slope0: initial slope of every unit (1: start from VCG).
    """

    seed: int = 0
    samples: int = 8000
    groups: int = 2
    units: int = 2
    evaluations: int = 2000
    popsize: int = 0
    sigma: float = 0.3
    slope0: float = 1.0

    def check(self) -> None:
        """Raise :class:`MechanismError` on a value no run can use."""
        for name in ("samples", "groups", "units", "evaluations"):
            if getattr(self, name) < 1:
                raise MechanismError(f"{name} must be at least 1")
        if self.popsize < 0 or self.sigma <= 0 or self.slope0 <= 0:
            raise MechanismError("popsize must be >= 0, sigma and slope0 positive")


def sample_utility(
    transform: Transform, values: np.ndarray, masks: np.ndarray, costs: np.ndarray, feats: np.ndarray,
    reserve: float,
) -> np.ndarray:
    """Requester utility per profile of the monotone auction at truthful bids ``costs`` (all ``<= b_bar``).

    Same rule as :meth:`.monotone.MonotoneRANet.allocate`, with the threshold written as
    ``max_{W ni s} score + phi_s - max_{W not ni s} score`` (equal up to rounding; one score matrix instead
    of one per seller).
    """
    phi = transform.forward(costs, feats, reserve)
    score = values - phi @ masks.T
    best = score.argmax(axis=1)
    rows = np.arange(costs.shape[0])
    z = masks[best]
    top = score[rows, best]
    pay = np.zeros(costs.shape[0])
    for s in range(costs.shape[1]):
        won = z[:, s] > 0
        if not won.any():
            continue
        # a winner's best set containing it is the winning set itself
        t = top[won] + phi[won, s] - score[np.ix_(won, masks[:, s] == 0)].max(axis=1)
        pay[won] += np.minimum(reserve, transform.inverse(t, feats[won, s], reserve))
    return values[rows, best] - pay


def _scales(cfg: MonotoneConfig, features: int) -> np.ndarray:
    n = cfg.groups * cfg.units
    return np.concatenate([np.full(n, 1.0), np.full(n, 0.3), np.full(n * features, 0.1)])


def train_monotone(
    setting: str, sellers: int, config: MonotoneConfig | None = None, *, progress: bool = False
) -> tuple[MonotoneRANet, list[dict[str, float]]]:
    """Train the monotone variant for ``setting`` with ``sellers`` sellers.

    Returns:
        The mechanism (best parameters seen) and the log (one record per CMA-ES generation).

    Raises:
        MechanismError: bad configuration, too many sellers, or ``cma`` missing.
    """
    cfg = config or MonotoneConfig()
    cfg.check()
    if not 1 <= sellers <= MAX_SELLERS:
        raise MechanismError(f"sellers must lie in 1..{MAX_SELLERS}")
    try:
        import cma
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        raise MechanismError("training the monotone variant needs cma: pip install -e '.[train]'") from err
    st = get_setting(setting)
    rng = np.random.default_rng(cfg.seed)
    costs, profiles = st.sample(rng, cfg.samples, sellers)
    costs = np.minimum(costs, st.reserve)
    masks = winner_sets(sellers, st.max_winners(sellers))
    values = _set_values(st, masks, profiles, cfg.samples)
    feats = seller_features(st, profiles, cfg.samples, sellers)
    F = st.profile_width
    G, K = cfg.groups, cfg.units

    def objective(v: np.ndarray) -> float:
        tr = Transform.from_vector(np.asarray(v, dtype=np.float64), G, K, F)
        return -float(sample_utility(tr, values, masks, costs, feats, st.reserve).mean())

    x0 = Transform.identity(G, K, F, cfg.slope0).to_vector()
    # break the symmetry of identical units so min/max can bend the line
    x0 = x0 + 0.01 * np.random.default_rng(cfg.seed + 1).standard_normal(x0.size)
    opts: dict[str, Any] = {"seed": cfg.seed + 1, "maxfevals": cfg.evaluations, "verbose": -9,
                            "CMA_stds": _scales(cfg, F)}
    if cfg.popsize:
        opts["popsize"] = cfg.popsize
    es = cma.CMAEvolutionStrategy(x0, cfg.sigma, opts)
    start = time.perf_counter()
    log: list[dict[str, float]] = []
    best_x, best_f = x0, objective(x0)
    start_utility = -best_f
    while not es.stop():
        xs = es.ask()
        fs = [objective(x) for x in xs]
        es.tell(xs, fs)
        k = int(np.argmin(fs))
        if fs[k] < best_f:
            best_x, best_f = np.asarray(xs[k]), fs[k]
        rec = {"evaluations": float(es.countevals), "utility": -best_f, "population_mean": -float(np.mean(fs)),
               "seconds": time.perf_counter() - start}
        log.append(rec)
        if progress:
            sys.stderr.write(f"\r{es.countevals}/{cfg.evaluations} evaluations  utility {-best_f:.6f}")
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    meta = {
        "config": asdict(cfg),
        "trainer": f"cma {cma.__version__}",
        "start_utility": start_utility,
        "final": {"evaluations": float(es.countevals), "utility": -best_f,
                  "seconds": time.perf_counter() - start},
        "log": log,
    }
    net = MonotoneRANet(st, sellers, Transform.from_vector(best_x, G, K, F), meta)
    return net, log
