"""Blockchain-aided federated learning of TBCIM, simulated deterministically (docs/models/tbcim.md, paper Section V).

The same pieces the network runs — Dirichlet non-IID split, EMD client selection, local training, the
per-ED cosine filter, deterministic FedAvg — put together in one process so that the paper's accuracy
figures (Fig. 5, 11, 12 and the poisoning study) can be regenerated. Everything is a pure function of the
configuration (including its seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from ..fl.data import dirichlet_split, iid_split, label_distribution, load_digits, split_train_eval
from ..fl.filter import UpdateFilter
from ..fl.models import get_model
from ..fl.rounds import apply_updates, derive_seed, local_delta
from .constants import TbcimConstants
from .quality import emd, quality
from .selection import select_clients

Array = NDArray[np.float64]
SELECTIONS = ("all", "random", "greedy", "ours")
ATTACKS = ("sign_flip", "label_flip")


@dataclass(frozen=True)
class BcflConfig:
    """One BCFL run.

    Attributes:
        n_es: edge servers.
        eds_per_es: inclusive range of EDs per ES (paper: 3 to 10).
        split: ``"dirichlet"`` (non-IID, concentration ``alpha``) or ``"iid"``.
        alpha: Dirichlet concentration.
        selection: ``"all"`` EDs, ``"random"`` share (No-IM), ``"greedy"`` by lowest bid, or ``"ours"``
            (EMD client selection per ES, then quality-per-bid greedy across ESs).
        participation_rate: share of EDs picked by ``random``/``greedy`` and the budget of ``ours``.
        model: ``"softmax"`` or ``"mlp"``.
        rounds: global epochs.
        local_epochs: delta_1.
        lr: eta.
        batch_size: local minibatch size.
        fail_share: share of ESs (rounded up) that are down during ``fail_window`` (their EDs send nothing).
        fail_window: ``[start, stop)`` global epochs of the outage.
        poison_share: share of participating EDs (rounded) that poison their updates from ``attack_start``.
        attack: ``"sign_flip"`` (send ``-attack_scale * delta``) or ``"label_flip"`` (train on ``9 - y``).
        attack_scale: scale of the sign-flipped update.
        attack_start: first global epoch in which poisoners attack (before it they behave honestly).
        filter_threshold: the cosine filter's epsilon, or ``None`` for no filter.
        filter_history: earlier accepted updates per ED the filter compares with.
        eval_fraction: the requester's held-out share of the data set.
        consts: TBCIM constants for the quality curve of ``ours``.
        seed: the only source of randomness.
    """

    n_es: int = 5
    eds_per_es: tuple[int, int] = (3, 10)
    split: str = "dirichlet"
    alpha: float = 0.5
    selection: str = "all"
    participation_rate: float = 0.5
    model: str = "softmax"
    rounds: int = 60
    local_epochs: int = 5
    lr: float = 0.05
    batch_size: int = 16
    fail_share: float = 0.0
    fail_window: tuple[int, int] = (15, 30)
    poison_share: float = 0.0
    attack: str = "sign_flip"
    attack_scale: float = 3.0
    attack_start: int = 3
    filter_threshold: float | None = None
    filter_history: int = 5
    eval_fraction: float = 0.2
    consts: TbcimConstants = field(default_factory=TbcimConstants)
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.eds_per_es
        if self.n_es < 1 or lo < 1 or hi < lo:
            raise MechanismError("need n_es >= 1 and 1 <= eds_per_es[0] <= eds_per_es[1]")
        if self.split not in ("dirichlet", "iid"):
            raise MechanismError(f"split must be dirichlet or iid, got {self.split!r}")
        if self.selection not in SELECTIONS:
            raise MechanismError(f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        if self.attack not in ATTACKS:
            raise MechanismError(f"attack must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        for name in ("participation_rate", "fail_share", "poison_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise MechanismError(f"{name} must lie in [0, 1], got {v}")
        if self.participation_rate == 0.0:
            raise MechanismError("participation_rate must be positive")
        if self.rounds < 1 or self.local_epochs < 1 or self.batch_size < 1:
            raise MechanismError("rounds, local_epochs and batch_size must be positive")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise MechanismError("lr must be positive")


@dataclass(frozen=True)
class Population:
    """The EDs of a run: which ES each belongs to, their data, EMDs and bids."""

    es_of: NDArray[np.int64]
    parts: list[NDArray[np.int64]]
    d: Array
    theta: Array
    bid: Array
    p_ref: Array


@dataclass(frozen=True)
class BcflRun:
    """The outcome of :func:`run_bcfl`."""

    accuracy: list[float]
    loss: list[float]
    workers: NDArray[np.int64]
    poisoners: NDArray[np.int64]
    failed_es: NDArray[np.int64]
    rejected_honest: int
    rejected_poisoned: int
    accepted_poisoned: int
    params: Array


def build_population(cfg: BcflConfig, y_train: NDArray[np.int64], y_eval: NDArray[np.int64]) -> Population:
    """Draw the ES/ED layout, split the training data and compute each ED's EMD and bid."""
    rng = np.random.default_rng(derive_seed(cfg.seed, 1))
    lo, hi = cfg.eds_per_es
    sizes = rng.integers(lo, hi + 1, size=cfg.n_es)
    es_of = np.repeat(np.arange(cfg.n_es), sizes).astype(np.int64)
    n_eds = int(es_of.size)
    if cfg.split == "iid":
        parts = iid_split(y_train.size, n_eds, derive_seed(cfg.seed, 2))
    else:
        parts = dirichlet_split(y_train, n_eds, cfg.alpha, derive_seed(cfg.seed, 2))
    p_ref = label_distribution(y_eval)
    theta = np.array([emd(label_distribution(y_train[p]), p_ref) for p in parts])
    d = np.array([float(p.size) for p in parts])
    bid = d * rng.uniform(0.5, 1.5, size=n_eds)
    return Population(es_of=es_of, parts=parts, d=d, theta=theta, bid=bid, p_ref=p_ref)


def _ours(pop: Population, budget: int, consts: TbcimConstants) -> NDArray[np.int64]:
    cand: list[int] = []
    for s in np.unique(pop.es_of):
        members = np.flatnonzero(pop.es_of == s)
        cand += members[select_clients(pop.theta[members])].tolist()
    chosen: list[int] = []
    q_now = -math.inf
    while len(chosen) < budget and cand:
        best, best_score, best_q = -1, -math.inf, q_now
        for i in cand:
            trial = [*chosen, i]
            q = float(quality(pop.d[trial].sum(), pop.theta[trial].mean(), consts))
            score = (q - q_now) / pop.bid[i] if chosen else q / pop.bid[i]
            if score > best_score:
                best, best_score, best_q = i, score, q
        if chosen and best_q <= q_now:
            break
        chosen.append(best)
        cand.remove(best)
        q_now = best_q
    return np.array(sorted(chosen), dtype=np.int64)


def choose_workers(cfg: BcflConfig, pop: Population) -> NDArray[np.int64]:
    """The participating EDs under ``cfg.selection`` (see :class:`BcflConfig`)."""
    n = pop.d.size
    budget = max(1, round(cfg.participation_rate * n))
    if cfg.selection == "all":
        return np.arange(n, dtype=np.int64)
    if cfg.selection == "random":
        rng = np.random.default_rng(derive_seed(cfg.seed, 3))
        return np.sort(rng.choice(n, size=budget, replace=False)).astype(np.int64)
    if cfg.selection == "greedy":
        return np.sort(np.argsort(pop.bid, kind="stable")[:budget]).astype(np.int64)
    return _ours(pop, budget, cfg.consts)


def run_bcfl(cfg: BcflConfig) -> BcflRun:
    """Run ``cfg.rounds`` global epochs of BCFL and record the requester's held-out accuracy after each.

    Raises:
        MechanismError: an unusable configuration.
    """
    X, y = load_digits()
    X_tr, y_tr, X_ev, y_ev = split_train_eval(X, y, cfg.eval_fraction, derive_seed(cfg.seed, 0))
    model = get_model(cfg.model)
    pop = build_population(cfg, y_tr, y_ev)
    workers = choose_workers(cfg, pop)
    rng = np.random.default_rng(derive_seed(cfg.seed, 4))
    n_poison = round(cfg.poison_share * workers.size)
    poisoners = np.sort(rng.choice(workers, size=n_poison, replace=False)).astype(np.int64)
    n_fail = math.ceil(cfg.fail_share * cfg.n_es) if cfg.fail_share > 0 else 0
    failed = np.sort(rng.choice(cfg.n_es, size=n_fail, replace=False)).astype(np.int64)
    filt = None
    if cfg.filter_threshold is not None:
        filt = UpdateFilter(cfg.filter_threshold, cfg.filter_history)
    params = model.init_params(X.shape[1], 10, derive_seed(cfg.seed, 5))
    poison_set, failed_set = set(poisoners.tolist()), set(failed.tolist())
    acc, losses = [], []
    rej_h = rej_p = acc_p = 0
    for r in range(cfg.rounds):
        down = cfg.fail_window[0] <= r < cfg.fail_window[1]
        deltas, weights = [], []
        for i in workers.tolist():
            if down and int(pop.es_of[i]) in failed_set:
                continue
            idx = pop.parts[i]
            attacking = i in poison_set and r >= cfg.attack_start
            labels = 9 - y_tr[idx] if attacking and cfg.attack == "label_flip" else y_tr[idx]
            s = derive_seed(cfg.seed, 6, r, i)
            ep, bs = cfg.local_epochs, cfg.batch_size
            delta = local_delta(model, params, X_tr[idx], labels, epochs=ep, lr=cfg.lr, batch_size=bs, seed=s)
            if attacking and cfg.attack == "sign_flip":
                delta = -cfg.attack_scale * delta
            if filt is not None:
                if not filt.check(str(i), delta):
                    if attacking:
                        rej_p += 1
                    else:
                        rej_h += 1
                    continue
                filt.record(str(i), delta)
            if attacking:
                acc_p += 1
            deltas.append(delta)
            weights.append(float(pop.d[i]))
        params = apply_updates(params, deltas, weights)
        acc.append(model.accuracy(params, X_ev, y_ev))
        losses.append(model.loss(params, X_ev, y_ev))
    return BcflRun(acc, losses, workers, poisoners, failed, rej_h, rej_p, acc_p, params)


def with_changes(cfg: BcflConfig, **changes: object) -> BcflConfig:
    """``dataclasses.replace`` re-exported for callers building sweeps."""
    return replace(cfg, **changes)  # type: ignore[arg-type]
