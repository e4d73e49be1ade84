"""Offline training of RANet by the augmented Lagrangian with misreport search (Algorithm 1).

The model and every departure from the paper: docs/models/tbcim-auction.md. PyTorch is an optional extra
(``pip install -e '.[train]'`` in a source checkout) and is imported only inside these functions; the trained
weights are exported to numpy (:class:`.mechanism.RANet`) so nodes never need it.

One iteration on a batch ``L_t`` of true costs ``c`` (bids are truthful, ``b = c``):

1. misreport search: every seller's stored misreport ``b'_s`` (one per training sample, kept across passes as
   in the paper) is first compared with a coarse grid over ``[0, b_bar]`` (the best point replaces it when it
   pays more), then improved by ``R`` Adam ascent steps on the seller's utility ``p_s - z_s c_s``, keeping
   the best point of the ascent path (Adam's momentum overshoots the maximiser);
2. ``rgt_s = mean_l max(0, u_s(b'_s, b_-s) - u_s(b))``;
3. ``C = -mean(V(z) - sum p) + sum_s lambda_s rgt_s + rho/2 (sum_s rgt_s)^2`` (paper eq. 6), one Adam step on
   the network weights;
4. every ``Q`` iterations ``lambda_s += rho * rgt_s``; every ``rho_every`` ones ``rho += rho_increment``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import MechanismError
from .mechanism import RANet
from .nets import Mlp
from .registry import get_setting
from .settings import Setting, SingleUniform


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults: docs/models/tbcim-auction.md and the RegretNet reference code).

    Attributes:
        iterations: number of weight updates ``T``.
        seed: seeds numpy (training set) and torch (initial weights).
        hidden: widths of the tanh hidden layers of both networks.
        batch: batch size ``B``.
        train_size: number of training profiles ``L`` (misreports are kept per profile).
        lr: Adam learning rate of the weights (SPEC: 1e-3).
        misreport_steps: ``R`` gradient steps on the misreports per iteration (SPEC: 10).
        misreport_lr: Adam learning rate of the misreports, in units of ``b_bar``.
        misreport_grid: points of the coarse grid compared with each misreport per iteration (0: off).
        lambda_init: initial Lagrange multiplier of every seller (RegretNet starts at 5).
        lagrange_every: ``Q``, iterations between multiplier updates (RegretNet: 100).
        rho: initial penalty ``rho`` (SPEC: 1).
        rho_increment: added to ``rho`` every ``rho_every`` iterations (RegretNet: 1 every 10k).
        rho_every: see ``rho_increment``.
        log_every: iterations between log records.
        threads: torch intra-op threads (the machine is shared).
    """

    iterations: int = 20000
    seed: int = 0
    hidden: tuple[int, ...] = (32, 32)
    batch: int = 128
    train_size: int = 1 << 15
    lr: float = 1e-3
    misreport_steps: int = 10
    misreport_lr: float = 0.02
    misreport_grid: int = 8
    lambda_init: float = 5.0
    lagrange_every: int = 100
    rho: float = 1.0
    rho_increment: float = 1.0
    rho_every: int = 10000
    log_every: int = 500
    threads: int = 1

    def check(self) -> None:
        """Raise :class:`MechanismError` on a value no run can use."""
        names = ("iterations", "batch", "train_size", "lagrange_every", "rho_every", "log_every", "threads")
        for name in names:
            if getattr(self, name) < 1:
                raise MechanismError(f"{name} must be at least 1")
        if self.misreport_steps < 0 or self.misreport_grid < 0:
            raise MechanismError("misreport_steps and misreport_grid must be non-negative")
        if not self.hidden or min(self.hidden) < 1:
            raise MechanismError("hidden needs at least one layer of positive width")
        if min(self.lr, self.misreport_lr, self.rho) <= 0 or min(self.rho_increment, self.lambda_init) < 0:
            raise MechanismError("learning rates and rho must be positive, rho_increment, lambda_init >= 0")
        if self.batch > self.train_size:
            raise MechanismError("batch must not exceed train_size")


def _torch() -> Any:
    try:
        import torch
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        raise MechanismError("training RANet needs PyTorch: pip install -e '.[train]' (in a checkout)") from err
    return torch


class _TorchSetting:
    """Torch mirror of a setting's ``features`` and ``value`` (same formulas as the numpy ones)."""

    def __init__(self, setting: Setting, torch: Any) -> None:
        self.setting = setting
        self.torch = torch

    def features(self, b: Any, prof: Any) -> Any:
        s = self.setting
        if isinstance(s, SingleUniform):
            return 2.0 * b / s.reserve - 1.0
        return s.features_torch(b, prof, self.torch)  # type: ignore[attr-defined]

    def value(self, z: Any, prof: Any) -> Any:
        s = self.setting
        if isinstance(s, SingleUniform):
            return s.unit_value * z.sum(dim=-1)
        return s.value_torch(z, prof, self.torch)  # type: ignore[attr-defined]


def _mlp(torch: Any, n_in: int, hidden: tuple[int, ...], n_out: int) -> Any:
    nn = torch.nn
    layers: list[Any] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.Tanh()]
        width = h
    layers.append(nn.Linear(width, n_out))
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _load(model: _Model, init: RANet, torch: Any) -> None:
    """Copy numpy weights into the torch model (warm start)."""
    if init.setting.name != model.setting.name or init.sellers != model.S:
        raise MechanismError("init weights are for another setting or number of sellers")
    for net, mlp in ((model.alloc, init.alloc), (model.pay, init.pay)):
        lin = [m for m in net if hasattr(m, "weight")]
        if [tuple(m.weight.shape) for m in lin] != [w.T.shape for w in mlp.weights]:
            raise MechanismError("init weights have other layer widths than the configuration")
        with torch.no_grad():
            for m, w, b in zip(lin, mlp.weights, mlp.biases, strict=True):
                m.weight.copy_(torch.as_tensor(w.T))
                m.bias.copy_(torch.as_tensor(b))


def _export(net: Any) -> Mlp:
    lin = [m for m in net if hasattr(m, "weight")]
    return Mlp(
        tuple(m.weight.detach().cpu().double().numpy().T.copy() for m in lin),
        tuple(m.bias.detach().cpu().double().numpy().copy() for m in lin),
    )


class _Model:
    """The two networks in torch plus the outcome and utility computations used by the loss."""

    def __init__(self, setting: Setting, sellers: int, hidden: tuple[int, ...], torch: Any) -> None:
        self.torch = torch
        self.setting = setting
        self.ts = _TorchSetting(setting, torch)
        self.S = sellers
        n_in = setting.n_inputs(sellers)
        extra = 1 if setting.head == "single" else 0
        self.alloc = _mlp(torch, n_in, hidden, sellers + extra)
        self.pay = _mlp(torch, n_in, hidden, sellers)

    def parameters(self) -> list[Any]:
        return [*self.alloc.parameters(), *self.pay.parameters()]

    def outcome(self, b: Any, prof: Any) -> tuple[Any, Any]:
        torch = self.torch
        x = self.ts.features(b, prof)
        logits = self.alloc(x)
        single = self.setting.head == "single"
        z = torch.softmax(logits, dim=-1)[..., :-1] if single else torch.sigmoid(logits)
        ratio = torch.sigmoid(self.pay(x))
        r = self.setting.reserve
        return z, z * (b + ratio * (r - b))

    def misreport_utility(self, cost: Any, prof: Any, mis: Any) -> Any:
        """``u[l, s]``: seller s's utility when only it reports ``mis[l, s]`` (others truthful)."""
        torch = self.torch
        B, S = cost.shape
        eye = torch.eye(S, dtype=cost.dtype)
        bids = cost[:, None, :] * (1 - eye) + mis[:, :, None] * eye  # (B, S_dev, S)
        p_rep = None if prof is None else prof.repeat_interleave(S, dim=0)
        z, p = self.outcome(bids.reshape(B * S, S), p_rep)
        z = z.reshape(B, S, S).diagonal(dim1=1, dim2=2)
        p = p.reshape(B, S, S).diagonal(dim1=1, dim2=2)
        return p - z * cost


def _progress(i: int, total: int, start: float, rec: dict[str, float] | None, stream: Any) -> None:
    width = 30
    done = int(width * i / total)
    rate = i / max(time.perf_counter() - start, 1e-9)
    tail = "" if rec is None else f" util {rec['utility']:.4f} rgt {rec['regret']:.5f} rho {rec['rho']:.0f}"
    stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {i}/{total} {rate:.0f} it/s{tail}")
    stream.flush()


def train(
    setting: str,
    sellers: int,
    config: TrainConfig | None = None,
    *,
    progress: bool = False,
    on_log: Callable[[dict[str, float]], None] | None = None,
    init: RANet | None = None,
) -> tuple[RANet, list[dict[str, float]]]:
    """Train a RANet for ``setting`` with ``sellers`` sellers.

    Args:
        setting: ``single-uniform`` or ``tbcim``.
        sellers: number of sellers ``S``.
        config: hyper-parameters (defaults of :class:`TrainConfig` when None).
        progress: draw a progress bar on stderr.
        on_log: called with every log record (iteration, utility, regret, regret_max, lambda, rho, seconds).
        init: continue from these weights (same setting, sellers and layer widths) instead of a fresh start.

    Returns:
        The trained mechanism (numpy weights) and the training log.

    Raises:
        MechanismError: bad configuration, or PyTorch is missing.
    """
    cfg = config or TrainConfig()
    cfg.check()
    if sellers < 1:
        raise MechanismError("sellers must be at least 1")
    torch = _torch()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    st = get_setting(setting)
    rng = np.random.default_rng(cfg.seed)
    costs_np, prof_np = st.sample(rng, cfg.train_size, sellers)
    dt = torch.float32
    costs = torch.as_tensor(costs_np, dtype=dt)
    prof_all = None if prof_np is None else torch.as_tensor(prof_np, dtype=dt)
    reserve = st.reserve
    mis_all = costs.clone().clamp(0.0, reserve)
    model = _Model(st, sellers, cfg.hidden, torch)
    if init is not None:
        _load(model, init, torch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lam = torch.full((sellers,), cfg.lambda_init, dtype=dt)
    rho = cfg.rho
    grid = torch.linspace(0.0, reserve, cfg.misreport_grid, dtype=dt) if cfg.misreport_grid else None
    log: list[dict[str, float]] = []
    order = rng.permutation(cfg.train_size)
    pos = 0
    start = time.perf_counter()
    stream = sys.stderr
    for it in range(1, cfg.iterations + 1):
        if pos + cfg.batch > cfg.train_size:
            order, pos = rng.permutation(cfg.train_size), 0
        idx = torch.as_tensor(order[pos : pos + cfg.batch])
        pos += cfg.batch
        c = costs[idx]
        prof = None if prof_all is None else prof_all[idx]
        mis = _search_misreports(model, c, prof, mis_all[idx], grid, cfg, reserve, torch)
        mis_all[idx] = mis
        z, p = model.outcome(c, prof)
        utility = (model.ts.value(z, prof) - p.sum(dim=-1)).mean()
        u_true = (p - z * c)
        u_mis = model.misreport_utility(c, prof, mis)
        rgt = torch.relu(u_mis - u_true).mean(dim=0)
        loss = -utility + (lam * rgt).sum() + 0.5 * rho * rgt.sum() ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % cfg.lagrange_every == 0:
            lam = lam + rho * rgt.detach()
        if it % cfg.rho_every == 0:
            rho += cfg.rho_increment
        if it % cfg.log_every == 0 or it == cfg.iterations:
            rec = {
                "iteration": float(it),
                "utility": float(utility.detach()),
                "regret": float(rgt.detach().mean()),
                "regret_max": float(rgt.detach().max()),
                "lambda": float(lam.mean()),
                "rho": float(rho),
                "seconds": time.perf_counter() - start,
            }
            log.append(rec)
            if on_log is not None:
                on_log(rec)
            if progress:
                _progress(it, cfg.iterations, start, rec, stream)
    if progress:
        stream.write("\n")
    meta = {
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "final": log[-1],
        "seconds": time.perf_counter() - start,
        "lambda": [float(x) for x in lam],
        "log": [*(init.meta.get("log", []) if init is not None else []), *log],
    }
    net = RANet(st, sellers, _export(model.alloc), _export(model.pay), meta)
    return net, log


def _search_misreports(
    model: _Model, c: Any, prof: Any, mis: Any, grid: Any, cfg: TrainConfig, reserve: float, torch: Any
) -> Any:
    """Improve each seller's misreport: coarse grid comparison, then ``R`` Adam ascent steps."""
    if grid is not None:
        with torch.no_grad():
            B, S = mis.shape
            G = grid.shape[0]
            cand = torch.cat([mis[:, None, :], grid[None, :, None].expand(B, G, S)], dim=1)  # (B, G+1, S)
            prof_g = None if prof is None else prof.repeat_interleave(G + 1, dim=0)
            c_g = c.repeat_interleave(G + 1, dim=0)
            u = model.misreport_utility(c_g, prof_g, cand.reshape(B * (G + 1), S))
            best = u.reshape(B, G + 1, S).argmax(dim=1)  # ties keep the stored misreport (index 0)
            mis = cand.gather(1, best[:, None, :]).squeeze(1)
    m = mis.clone().requires_grad_(True)
    if not cfg.misreport_steps:
        return m.detach()
    # Adam with momentum can step past the maximiser: keep the best misreport seen, not the last one
    best_m = mis.clone()
    best_u = torch.full_like(mis, -float("inf"))
    opt = torch.optim.Adam([m], lr=cfg.misreport_lr * reserve)
    for step in range(cfg.misreport_steps + 1):
        u = model.misreport_utility(c, prof, m)
        with torch.no_grad():
            better = u > best_u
            best_u = torch.where(better, u, best_u)
            best_m = torch.where(better, m, best_m)
        if step == cfg.misreport_steps:
            break
        opt.zero_grad()
        (-u.sum()).backward()
        opt.step()
        with torch.no_grad():
            m.clamp_(0.0, reserve)
    return best_m.detach()
