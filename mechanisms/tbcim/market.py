"""The whole TBCIM market as pure functions: what each participant computes, and one task run end to end.

The network's roles (requester, edge servers, edge devices) call exactly these functions on the messages they
receive, and :func:`run_task` calls them in one process in the same order, so an offline run and a networked
run of the same configuration produce the same winners, payments, prices and bit-identical global models
(docs/models/tbcim-network.md).

One task:

1. **Data.** The digits are split into the requester's held-out part and the training part (stratified, seed
   ``derive_seed(seed, 0)``); the training part is split over the EDs by Dirichlet(``alpha``) labels (seed
   ``derive_seed(seed, 2)``). The reference distribution ``P_r`` is the label distribution of the requester's
   held-out part. ED ``i`` reports ``d_i`` (its sample count times ``data_unit``, the paper's data unit), its
   label histogram and its EMD ``theta_i``, with its private cost parameters (drawn from the TBCIM sampler's
   ranges, seed ``derive_seed(seed, 7, i)``).
2. **Upper level.** ES ``s`` keeps the EDs whose EMD is at most its average (:func:`select_clients`), bids
   its cost ``b_s`` (the kept EDs' data, compute and communication costs plus ``c^b``) with the profile
   ``(sum d, mean theta)``. RANet (shipped weights) gives ``z_s`` and expected payments ``p_s``. The fractional
   allocation is realised by a draw: ES ``s`` wins iff ``u_s < z_s`` with ``u_s`` from a hash of the task and
   every bid (:func:`draw_uniforms`), and a winner is paid ``p_s / z_s`` (expected payment ``p_s``; ex post
   ``p_s / z_s >= b_s``, so a winner never loses).
3. **Lower level.** Each winning ES solves its Stackelberg game over its kept EDs (``participation="exact"``):
   price ``p_t``, participants, compute ``C_i`` and fees ``V_i``.
4. **BCFL.** Each participant trains ``local_epochs_of(C_i)`` local epochs from the global model; every update
   passes the per-ED cosine filter or is rejected; the accepted ones are averaged (FedAvg, weights = sample
   counts, in ED order) into the next global model; the requester measures its held-out accuracy.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from ..fl.data import dirichlet_split, label_distribution, load_digits, split_train_eval
from ..fl.filter import UpdateFilter
from ..fl.models import get_model
from ..fl.rounds import apply_updates, derive_seed, local_delta
from .constants import TbcimConstants
from .costs import blockchain_cost, comm_cost, compute_cost, data_cost
from .quality import data_utility, emd
from .selection import select_clients
from .stackelberg import StackelbergGame, StackelbergResult, solve_stackelberg

if TYPE_CHECKING:
    from ..ranet.mechanism import RANet

Array = NDArray[np.float64]
N_CLASSES = 10
ATTACKS = ("sign_flip", "label_flip")
DRAW_DOMAIN = b"bazaar/tbcim/draw/v1\x00"
EMD_TOL = 1e-9


@dataclass(frozen=True)
class CostRanges:
    """Ranges of an ED's private cost parameters (those of the RANet tbcim sampler)."""

    gamma: tuple[float, float] = (0.2e-6, 0.6e-6)
    beta: tuple[float, float] = (0.2e-8, 0.6e-8)
    compute: tuple[float, float] = (0.5, 1.0)
    power: tuple[float, float] = (0.1, 0.5)
    rate: tuple[float, float] = (1.0, 5.0)
    phi: tuple[float, float] = (2e-6, 6e-6)


@dataclass(frozen=True)
class MarketConfig:
    """One TBCIM market.

    Attributes:
        n_es: edge servers S (3, 5 or 10: the shipped RANet sizes).
        home: the ES index of each ED (its length is the number of EDs).
        epochs: global epochs of a task.
        alpha: Dirichlet concentration of the label split.
        model: ``"softmax"`` or ``"mlp"``.
        local_epochs: delta_1, the local epochs of an ED at full compute.
        lr, batch_size: local SGD.
        data_unit: paper data units per sample (``d_i = samples * data_unit``).
        omega, kappa: the ESs' value-of-compute weight and the ED utility scale of the lower game.
        gas_price: ``p_g`` of the blockchain cost.
        budget: the requester's budget (tokens); ``None``: ``n_es * reserve``.
        filter_threshold: the cosine filter's epsilon (``None``: no filter).
        filter_history: earlier accepted updates per ED the filter compares with.
        poisoners: ED indices that poison their updates from ``attack_start`` on.
        attack, attack_scale, attack_start: the poisoning (``sign_flip``: send ``-scale * delta``;
            ``label_flip``: train on ``9 - y``).
        eval_fraction: the requester's held-out share.
        seed: the only source of randomness.
        consts: TBCIM constants (the economics use the paper's delta_1, delta_g, M).
        costs: ranges of the EDs' private cost parameters.
        participation: the lower game's participation rule, ``"exact"`` (the equilibrium, default and what the
            network runs) or ``"drop"`` (SPEC's literal drop-the-most-negative rule, for ``--literal`` figures).
    """

    n_es: int
    home: tuple[int, ...]
    epochs: int = 10
    alpha: float = 0.5
    model: str = "softmax"
    local_epochs: int = 5
    lr: float = 0.05
    batch_size: int = 16
    data_unit: float = 25.0
    omega: float = 0.02
    kappa: float = 1.0
    gas_price: float = 5e-7
    budget: float | None = None
    filter_threshold: float | None = 0.0
    filter_history: int = 5
    poisoners: tuple[int, ...] = ()
    attack: str = "sign_flip"
    attack_scale: float = 3.0
    attack_start: int = 2
    eval_fraction: float = 0.2
    seed: int = 0
    consts: TbcimConstants = field(default_factory=TbcimConstants)
    costs: CostRanges = field(default_factory=CostRanges)
    participation: str = "exact"

    def __post_init__(self) -> None:
        if self.participation not in ("exact", "drop"):
            raise MechanismError(f"participation must be exact or drop, got {self.participation!r}")
        if self.n_es < 1 or not self.home:
            raise MechanismError("a TBCIM market needs at least one ES and one ED")
        if any(not 0 <= h < self.n_es for h in self.home):
            raise MechanismError(f"every ED's home ES must lie in 0..{self.n_es - 1}")
        if set(self.home) != set(range(self.n_es)):
            raise MechanismError("every ES needs at least one ED")
        if self.epochs < 1 or self.local_epochs < 1 or self.batch_size < 1 or self.filter_history < 1:
            raise MechanismError("epochs, local_epochs, batch_size and filter_history must be positive")
        for name in ("alpha", "lr", "data_unit", "omega", "kappa"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise MechanismError(f"{name} must be a positive number, got {v!r}")
        if self.attack not in ATTACKS:
            raise MechanismError(f"attack must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        if any(not 0 <= i < len(self.home) for i in self.poisoners):
            raise MechanismError("poisoners must be ED indices")
        if self.filter_threshold is not None and not -1.0 <= self.filter_threshold <= 1.0:
            raise MechanismError("filter_threshold must lie in [-1, 1]")

    @property
    def n_eds(self) -> int:
        """Number of EDs."""
        return len(self.home)

    def members(self, es: int) -> list[int]:
        """The EDs of ES ``es``, in ED order."""
        return [i for i, h in enumerate(self.home) if h == es]


def even_homes(n_es: int, n_eds: int) -> tuple[int, ...]:
    """EDs assigned to ESs in contiguous blocks of near-equal size (``ed-0..`` to ``es-0`` first)."""
    if n_es < 1 or n_eds < n_es:
        raise MechanismError(f"need at least one ED per ES, got {n_eds} EDs for {n_es} ESs")
    return tuple(i * n_es // n_eds for i in range(n_eds))


# ----------------------------------------------------------------------------- data and reports
@dataclass(frozen=True)
class TaskData:
    """The requester's held-out split, the training split and each ED's shard."""

    X_train: Array
    y_train: NDArray[np.int64]
    X_eval: Array
    y_eval: NDArray[np.int64]
    parts: tuple[NDArray[np.int64], ...]
    p_ref: Array


@cache
def _digits() -> tuple[Array, NDArray[np.int64]]:
    return load_digits()


def task_data(cfg: MarketConfig) -> TaskData:
    """The data of the market (deterministic in ``cfg.seed``)."""
    X, y = _digits()
    X_tr, y_tr, X_ev, y_ev = split_train_eval(X, y, cfg.eval_fraction, derive_seed(cfg.seed, 0))
    parts = dirichlet_split(y_tr, cfg.n_eds, cfg.alpha, derive_seed(cfg.seed, 2))
    return TaskData(X_tr, y_tr, X_ev, y_ev, tuple(parts), label_distribution(y_ev))


@dataclass(frozen=True)
class EdReport:
    """What ED ``i`` tells its ES: data size (paper units), label histogram, EMD and private costs."""

    d: float
    histogram: tuple[int, ...]
    theta: float
    gamma: float
    beta: float
    compute: float
    c_m: float

    @property
    def samples(self) -> int:
        """Training samples (the FedAvg weight)."""
        return sum(self.histogram)

    def ed_cost(self, consts: TbcimConstants) -> float:
        """Data, compute (at the nominal compute) and communication cost of taking part."""
        return (float(data_cost(self.d, self.gamma)) + float(compute_cost(self.d, self.beta, self.compute, consts))
                + self.c_m)


def ed_report(cfg: MarketConfig, data: TaskData, i: int) -> EdReport:
    """ED ``i``'s report (its shard and its cost parameters, all from the seed)."""
    hist = np.bincount(data.y_train[data.parts[i]], minlength=N_CLASSES)
    rng = np.random.default_rng(derive_seed(cfg.seed, 7, i))
    r = cfg.costs
    gamma, beta, compute = rng.uniform(*r.gamma), rng.uniform(*r.beta), rng.uniform(*r.compute)
    c_m = float(comm_cost(rng.uniform(*r.power), rng.uniform(*r.rate), rng.uniform(*r.phi), cfg.consts))
    return EdReport(d=float(hist.sum()) * cfg.data_unit, histogram=tuple(int(h) for h in hist),
                    theta=emd(hist / hist.sum(), data.p_ref), gamma=float(gamma), beta=float(beta),
                    compute=float(compute), c_m=c_m)


def check_report(report: EdReport, p_ref: Sequence[float], data_unit: float) -> None:
    """Refuse a report whose EMD or data size does not follow from its histogram.

    Raises:
        MechanismError: naming what is inconsistent.
    """
    hist = np.asarray(report.histogram, dtype=np.float64)
    if hist.shape != (N_CLASSES,) or np.any(hist < 0) or hist.sum() <= 0:
        raise MechanismError("the label histogram must hold 10 non-negative counts with a positive total")
    if abs(report.d - hist.sum() * data_unit) > EMD_TOL * max(1.0, report.d):
        raise MechanismError(f"data size {report.d} is not {int(hist.sum())} samples x {data_unit}")
    expected = emd(hist / hist.sum(), np.asarray(p_ref, dtype=np.float64))
    if abs(report.theta - expected) > EMD_TOL:
        raise MechanismError(f"EMD {report.theta:.6g} differs from the histogram's {expected:.6g}")
    for name in ("gamma", "beta", "compute", "c_m"):
        v = getattr(report, name)
        if not (math.isfinite(v) and v >= 0) or (name in ("beta", "compute") and v == 0):
            raise MechanismError(f"{name} must be a {'positive' if name in ('beta', 'compute') else 'non-negative'}"
                                 f" finite number, got {v!r}")
    if report.theta <= 0:
        raise MechanismError("an EMD of exactly 0 cannot price the ED's utility")


# ----------------------------------------------------------------------------- upper level
@dataclass(frozen=True)
class EsBid:
    """ES ``s``'s bid: the EDs it keeps (indices into its members), its cost and its profile."""

    selected: tuple[int, ...]
    bid: float
    d: float
    theta: float


def es_profile(reports: Sequence[EdReport]) -> tuple[tuple[int, ...], float, float]:
    """Client selection over an ES's EDs' reports (member order): ``(kept, sum d, mean theta)``."""
    if not reports:
        raise MechanismError("an ES needs at least one ED report to bid")
    keep = tuple(int(k) for k in select_clients([r.theta for r in reports]).tolist())
    return keep, math.fsum(reports[k].d for k in keep), math.fsum(reports[k].theta for k in keep) / len(keep)


def es_bid(cfg: MarketConfig, reports: Sequence[EdReport]) -> EsBid:
    """Client selection and the ES's cost bid over its EDs' reports (in member order)."""
    keep, d, theta = es_profile(reports)
    cost = math.fsum(reports[k].ed_cost(cfg.consts) for k in keep)
    cost += float(blockchain_cost(len(keep), cfg.gas_price, cfg.consts))
    return EsBid(keep, cost, d, theta)


ABSENT_BID_FACTOR = 2.0
"""An ES that did not bid enters RANet as a bid of twice the reserve with an empty profile (it cannot win)."""


def auction_inputs(n_es: int, bids: dict[int, EsBid], reserve: float) -> tuple[Array, Array]:
    """RANet's inputs for ``n_es`` sellers from the bids that arrived (absent ESs bid above the reserve)."""
    b = np.full(n_es, ABSENT_BID_FACTOR * reserve)
    prof = np.zeros((n_es, 2))
    prof[:, 1] = 1.0
    for s, bid in bids.items():
        b[s] = bid.bid
        prof[s] = (bid.d, bid.theta)
    return b, prof


def run_auction(n_es: int, bids: dict[int, EsBid]) -> tuple[Array, Array, float]:
    """RANet (shipped weights for ``n_es`` sellers) on the bids: ``(z, expected payments, reserve)``."""
    net = _ranet(n_es)
    b, prof = auction_inputs(n_es, bids, net.reserve)
    z, p = net.allocate(b, prof)
    absent = [s for s in range(n_es) if s not in bids]
    z[absent], p[absent] = 0.0, 0.0
    return np.asarray(z, dtype=np.float64), np.asarray(p, dtype=np.float64), float(net.reserve)


@cache
def _ranet(n_es: int) -> RANet:
    from ..ranet.mechanism import RANet

    return RANet.load(n_es, "tbcim")


def reserve_of(n_es: int) -> float:
    """The requester's reserve ``b_bar`` (the RANet tbcim setting's)."""
    return float(_ranet(n_es).reserve)


def draw_uniforms(task: int, n_es: int, bids: dict[int, EsBid]) -> Array:
    """``u_s`` in [0, 1) per ES: SHA-256 of the task number and every bid (index, cost, profile).

    No ES sees the others' bids before the deadline and the requester cannot change a signed bid, so nobody
    chooses the draw; offline and on the network it is the same number.
    """
    h = hashlib.sha256(DRAW_DOMAIN + struct.pack(">Q", task))
    for s in sorted(bids):
        h.update(struct.pack(">Iddd", s, bids[s].bid, bids[s].d, bids[s].theta))
    seed = h.digest()
    out = np.empty(n_es)
    for s in range(n_es):
        u = hashlib.sha256(seed + struct.pack(">I", s)).digest()
        out[s] = int.from_bytes(u[:8], "big") / 2.0**64
    return out


@dataclass(frozen=True)
class Allocation:
    """The realised upper level: ``z``, expected payments ``p``, winners and what each winner is paid."""

    z: Array
    expected: Array
    winners: tuple[int, ...]
    paid: dict[int, float]
    reserve: float


def allocate(task: int, n_es: int, bids: dict[int, EsBid]) -> Allocation:
    """RANet and the draw that realises it (module docstring, step 2)."""
    z, p, reserve = run_auction(n_es, bids)
    u = draw_uniforms(task, n_es, bids)
    winners = tuple(s for s in range(n_es) if z[s] > 0 and u[s] < z[s])
    return Allocation(z, p, winners, {s: float(p[s] / z[s]) for s in winners}, reserve)


def requester_utility(cfg: MarketConfig, bids: dict[int, EsBid], alloc: Allocation) -> float:
    """``U_d(D, theta) - U_d(empty) - sum p`` of the fractional allocation (the auction's objective)."""
    w = float(alloc.z.sum())
    if w <= 0:
        return 0.0
    D = math.fsum(alloc.z[s] * b.d for s, b in bids.items())
    theta = math.fsum(alloc.z[s] * b.theta for s, b in bids.items()) / w
    u = float(data_utility(D, theta, cfg.consts)) - float(data_utility(0.0, 0.0, cfg.consts))
    return u - float(alloc.expected.sum())


# ----------------------------------------------------------------------------- lower level
def lower_game(cfg: MarketConfig, reports: Sequence[EdReport]) -> StackelbergResult:
    """A winning ES's Stackelberg game over its kept EDs' reports (``cfg.participation``, exact by default)."""
    game = StackelbergGame(
        d=np.array([r.d for r in reports]), theta=np.array([r.theta for r in reports]),
        beta=np.array([r.beta for r in reports]), gamma=np.array([r.gamma for r in reports]),
        c_m=np.array([r.c_m for r in reports]), omega=cfg.omega, kappa=cfg.kappa, p_g=cfg.gas_price,
        consts=cfg.consts)
    return solve_stackelberg(game, cfg.participation)


def best_response(cfg: MarketConfig, report: EdReport, price: float) -> tuple[bool, float, float]:
    """An ED's answer to a unit price: ``(joins, C_i, V_i)`` (joins iff its profit is >= 0)."""
    m = cfg.consts.delta_1 * cfg.consts.delta_g * cfg.consts.M
    c = price / (2.0 * cfg.kappa * report.theta * m * report.beta)
    fee = price * c * report.d / (cfg.kappa * report.theta)
    profit = fee - report.c_m - report.gamma * report.d - report.d * m * report.beta * c * c
    if price <= 0 or profit < -1e-12 * max(1.0, report.c_m + report.gamma * report.d):
        return False, 0.0, 0.0
    return True, float(c), float(fee)


def local_epochs_of(cfg: MarketConfig, compute: float) -> int:
    """Local epochs of an ED that devotes compute ``C`` (1.0 = full): ``max(1, round(delta_1 * min(1, C)))``."""
    return max(1, round(cfg.local_epochs * min(1.0, compute)))


# ----------------------------------------------------------------------------- BCFL
def initial_model(cfg: MarketConfig, n_features: int = 64) -> Array:
    """The task's initial global model."""
    return get_model(cfg.model).init_params(n_features, N_CLASSES, derive_seed(cfg.seed, 5))


def ed_update(cfg: MarketConfig, data: TaskData, i: int, epoch: int, global_params: Array, compute: float) -> Array:
    """ED ``i``'s update in ``epoch`` (a poisoner attacks from ``attack_start``)."""
    idx = data.parts[i]
    attacking = i in cfg.poisoners and epoch >= cfg.attack_start
    labels = 9 - data.y_train[idx] if attacking and cfg.attack == "label_flip" else data.y_train[idx]
    delta = local_delta(get_model(cfg.model), global_params, data.X_train[idx], labels,
                        epochs=local_epochs_of(cfg, compute), lr=cfg.lr, batch_size=cfg.batch_size,
                        seed=derive_seed(cfg.seed, 6, epoch, i))
    if attacking and cfg.attack == "sign_flip":
        delta = -cfg.attack_scale * delta
    return delta


def new_filter(cfg: MarketConfig) -> UpdateFilter | None:
    """The cosine filter of the market (``None`` without one)."""
    return None if cfg.filter_threshold is None else UpdateFilter(cfg.filter_threshold, cfg.filter_history)


def screen(filt: UpdateFilter | None, ed: int, delta: Array) -> tuple[bool, float | None]:
    """The filter's verdict on an update: ``(accepted, mean cosine score or None)``; records accepted ones."""
    if filt is None:
        return True, None
    score = filt.score(str(ed), delta)
    ok = score is None or score >= filt.threshold
    if ok:
        filt.record(str(ed), delta)
    return ok, score


def aggregate(global_params: Array, deltas: Sequence[Array], samples: Sequence[float]) -> Array:
    """The FedAvg contract: ``global + sum_i (n_i / N) delta_i`` over the accepted updates, in ED order."""
    return apply_updates(global_params, list(deltas), [float(n) for n in samples])


def model_bytes(params: Array) -> bytes:
    """Canonical bytes of a parameter vector (little-endian float64)."""
    return np.ascontiguousarray(params, dtype="<f8").tobytes()


def model_hash(params: Array) -> bytes:
    """SHA-256 of :func:`model_bytes`: the model's name on the ledger."""
    return hashlib.sha256(model_bytes(params)).digest()


def eval_commitment(data: TaskData) -> bytes:
    """SHA-256 of the requester's held-out split (features as little-endian float64, then labels as int64): the
    task publishes it so the accuracy the requester reports can be audited against the very split."""
    h = hashlib.sha256(np.ascontiguousarray(data.X_eval, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(data.y_eval, dtype="<i8").tobytes())
    return h.digest()


def accuracy(cfg: MarketConfig, data: TaskData, params: Array) -> float:
    """The requester's held-out accuracy."""
    return float(get_model(cfg.model).accuracy(params, data.X_eval, data.y_eval))


# ----------------------------------------------------------------------------- one task in one process
@dataclass
class TaskRun:
    """Everything an offline task produced (ED and ES indices, not names)."""

    bids: dict[int, EsBid]
    allocation: Allocation
    games: dict[int, StackelbergResult]
    workers: dict[int, float]
    accuracy: list[float]
    rejected: list[tuple[int, int, float | None]]
    params: Array
    requester_utility: float
    model_hashes: list[bytes]


def run_task(cfg: MarketConfig, task: int = 1, down: Sequence[Sequence[int]] = ()) -> TaskRun:
    """One task end to end in one process, in the network's order (module docstring).

    Args:
        cfg: the market.
        task: the task number (enters the draw).
        down: per epoch, the ESs that are down (their EDs send nothing); empty: nobody is down.
    """
    data = task_data(cfg)
    reports = [ed_report(cfg, data, i) for i in range(cfg.n_eds)]
    bids = {s: es_bid(cfg, [reports[i] for i in cfg.members(s)]) for s in range(cfg.n_es)}
    alloc = allocate(task, cfg.n_es, bids)
    games: dict[int, StackelbergResult] = {}
    workers: dict[int, float] = {}
    for s in alloc.winners:
        kept = [cfg.members(s)[k] for k in bids[s].selected]
        game = lower_game(cfg, [reports[i] for i in kept])
        games[s] = game
        for k in game.participants.tolist():
            workers[kept[k]] = float(game.compute[k])
    params = initial_model(cfg, data.X_train.shape[1])
    filt = new_filter(cfg)
    acc: list[float] = []
    rejected: list[tuple[int, int, float | None]] = []
    hashes: list[bytes] = []
    for epoch in range(cfg.epochs):
        off = set(down[epoch]) if epoch < len(down) else set()
        deltas, samples = [], []
        for i in sorted(workers):
            if cfg.home[i] in off:
                continue
            delta = ed_update(cfg, data, i, epoch, params, workers[i])
            ok, score = screen(filt, i, delta)
            if not ok:
                rejected.append((epoch, i, score))
                continue
            deltas.append(delta)
            samples.append(float(reports[i].samples))
        params = aggregate(params, deltas, samples)
        hashes.append(model_hash(params))
        acc.append(accuracy(cfg, data, params))
    return TaskRun(bids, alloc, games, workers, acc, rejected, params, requester_utility(cfg, bids, alloc), hashes)
