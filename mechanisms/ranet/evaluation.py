"""Metrics of a procurement mechanism at truthful bids: requester utility, welfare, regret, IR, winners."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import MechanismError
from .baselines import VCG_MAX_SELLERS, greedy, random_selection, vcg
from .mechanism import RANet
from .monotone import MonotoneRANet
from .myerson import myerson_expected_utility, myerson_outcome
from .regret import Outcome, grid_regret, refined_regret
from .settings import Setting, SingleUniform

VCG_REGRET_WORK = 4e7  # set evaluations the VCG regret search may use


@dataclass(frozen=True)
class Metrics:
    """Sample means over the evaluation profiles.

    Attributes:
        requester_utility: ``V(z) - sum_s p_s``.
        requester_utility_se: its standard error (sample standard deviation / sqrt(profiles)).
        welfare: ``V(z) - sum_s z_s c_s``.
        regret: ex-post regret per seller, normalised by ``b_bar`` (mean over profiles and sellers); after
            gradient refinement when the evaluation asked for it, else equal to ``regret_grid``.
        regret_max: the largest single (profile, seller) normalised regret.
        regret_grid: the same mean found by the grid alone.
        regret_profiles: profiles the regret was measured on.
        ir_violation: ``sum_s max(0, z_s c_s - p_s)`` (a truthful seller's loss).
        winners_mean: ``sum_s z_s`` (expected number of winners).
    """

    requester_utility: float
    welfare: float
    regret: float
    regret_max: float
    ir_violation: float
    winners_mean: float
    requester_utility_se: float = 0.0
    regret_grid: float = 0.0
    regret_profiles: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def evaluate(
    outcome: Outcome,
    setting: Setting,
    costs: np.ndarray,
    profiles: np.ndarray | None,
    *,
    regret_profiles: int | None = None,
    points: int = 101,
    refine: int = 21,
    gradient: bool = False,
) -> Metrics:
    """Evaluate ``outcome`` at truthful bids ``costs``.

    Args:
        outcome: ``(bids, profiles) -> (z, p)``.
        setting: gives ``V`` and the reserve.
        costs: ``(batch, S)`` true costs.
        profiles: public profiles or None.
        regret_profiles: measure regret on only the first this-many profiles (None: all).
        points, refine: grid of :func:`.regret.grid_regret`.
        gradient: refine the grid's best points by gradient ascent (:func:`.regret.refined_regret`).
    """
    z, p = outcome(costs, profiles)
    value = setting.value(z, profiles)
    n = costs.shape[0] if regret_profiles is None else min(regret_profiles, costs.shape[0])
    if n > 0:
        args = (outcome, costs[:n], None if profiles is None else profiles[:n], setting.reserve)
        if gradient:
            grid, rgt = refined_regret(*args, points=points, refine=refine)
        else:
            grid, _ = grid_regret(*args, points=points, refine=refine)
            rgt = grid
        grid, rgt = grid / setting.reserve, rgt / setting.reserve
    else:
        grid = rgt = np.zeros((1, 1))
    utility = value - p.sum(axis=1)
    return Metrics(
        requester_utility=float(utility.mean()),
        requester_utility_se=float(utility.std(ddof=1) / np.sqrt(utility.size)) if utility.size > 1 else 0.0,
        regret_grid=float(grid.mean()),
        regret_profiles=n,
        welfare=float((value - (z * costs).sum(axis=1)).mean()),
        regret=float(rgt.mean()),
        regret_max=float(rgt.max()),
        ir_violation=float(np.maximum(z * costs - p, 0.0).sum(axis=1).mean()),
        winners_mean=float(z.sum(axis=1).mean()),
    )


def vs_optimum(
    outcome: Outcome, setting: SingleUniform, costs: np.ndarray, sellers: int
) -> dict[str, float]:
    """Requester utility of ``outcome`` against the closed-form Myerson optimum and, paired, against Myerson's
    auction on the same ``costs``.

    Returns:
        ``{"optimum", "ratio", "ratio_se", "excess", "excess_se", "excess_z", "paired_excess", "paired_se",
        "paired_z"}`` (standard errors of the sample mean; ``*_z`` = estimate / its standard error).
    """
    z, p = outcome(costs, None)
    u = setting.value(z, None) - p.sum(axis=1)
    zm, pm = myerson_outcome(costs, setting.unit_value)
    diff = u - (setting.value(zm, None) - pm.sum(axis=1))
    opt = myerson_expected_utility(sellers, setting.unit_value)
    se = float(u.std(ddof=1) / np.sqrt(u.size))
    paired_se = float(diff.std(ddof=1) / np.sqrt(u.size))
    return {"optimum": opt, "ratio": float(u.mean()) / opt, "ratio_se": se / opt,
            "excess": float(u.mean()) - opt, "excess_se": se, "excess_z": (float(u.mean()) - opt) / se,
            "paired_excess": float(diff.mean()), "paired_se": paired_se,
            "paired_z": float(diff.mean()) / paired_se if paired_se > 0 else 0.0}


def _regret_budget(sellers: int, sets: int, per_profile: int, wanted: int) -> int:
    """Profiles a set-enumerating mechanism's regret search may use within ``VCG_REGRET_WORK`` (at least 10)."""
    return min(wanted, max(10, int(VCG_REGRET_WORK / (sellers * per_profile * sets))))


def evaluate_all(
    net: RANet | MonotoneRANet,
    samples: int,
    seed: int,
    *,
    chain: str | None = None,
    regret_profiles: int | None = None,
    points: int = 101,
    refine: int = 21,
    extra: Mapping[str, RANet | MonotoneRANet] | None = None,
    gradient: bool = False,
) -> dict[str, Any]:
    """RANet and every baseline on one seeded sample (the ``bazaar solve tbcim-auction`` record).

    Args:
        net: the mechanism.
        samples: number of bid profiles.
        seed: sampling seed (the random baseline uses ``seed + 1``).
        chain: for ``tbcim``, evaluate ``with`` / ``without`` the blockchain cost (None: the net's setting).
        regret_profiles: regret measured on the first this-many profiles (None: all); for VCG at most
            ``VCG_REGRET_WORK / (S (points + refine) 2^S)`` of them (at least 10), e.g. 40 for S = 10.
        points, refine: regret grid.
        extra: more learned mechanisms (e.g. ``{"monotone": ...}``) evaluated like ``net``, listed among
            the baselines under their key.
        gradient: refine the regret of ``net`` and ``extra`` by gradient ascent from the best grid points
            (the baselines keep the grid: their regret is 0 or known in closed form).

    Returns:
        ``{"requester_utility", "requester_utility_se", "welfare", "regret", "regret_grid", "regret_max",
        "ir_violation", "winners_mean", "baselines": {"vcg", "greedy", "random", "myerson" (single-uniform
        only), *extra}}``; in ``single-uniform`` each learned mechanism also has ``vs_optimum`` (utility /
        Myerson optimum with standard errors, and the paired difference to Myerson on the same profiles).
    """
    if samples < 1:
        raise MechanismError("samples must be at least 1")
    setting = net.setting
    if chain is not None:
        if not hasattr(setting, "chain"):
            raise MechanismError(f"setting {setting.name} has no blockchain cost to switch")
        setting = replace(setting, chain=chain)  # type: ignore[call-arg]
    costs, profiles = setting.sample(np.random.default_rng(seed), samples, net.sellers)
    kw: dict[str, Any] = {"regret_profiles": regret_profiles, "points": points, "refine": refine}
    wanted = samples if regret_profiles is None else regret_profiles

    def learned(m: RANet | MonotoneRANet) -> dict[str, Any]:
        kw_m = {**kw, "gradient": gradient}
        if isinstance(m, MonotoneRANet):
            per = points + refine + (3 * 8 * 20 if gradient else 0)
            kw_m["regret_profiles"] = _regret_budget(m.sellers, m.masks().shape[0], per, wanted)
        rec: dict[str, Any] = evaluate(m._forward, setting, costs, profiles, **kw_m).as_dict()
        if isinstance(setting, SingleUniform):
            rec["vs_optimum"] = vs_optimum(m._forward, setting, costs, m.sellers)
        return rec

    out: dict[str, Any] = learned(net)
    rng = np.random.default_rng(seed + 1)
    baselines: dict[str, Any] = {name: learned(m) for name, m in (extra or {}).items()}
    if net.sellers <= VCG_MAX_SELLERS:
        # VCG's regret search enumerates 2^S sets at every grid point: cap its profiles by a work budget
        n_rgt = samples if regret_profiles is None else regret_profiles
        budget = int(VCG_REGRET_WORK / (net.sellers * (points + refine) * 2**net.sellers))
        kw_vcg = {**kw, "regret_profiles": min(n_rgt, max(10, budget))}
        baselines["vcg"] = evaluate(
            lambda b, pr: vcg(setting, b, pr), setting, costs, profiles, **kw_vcg
        ).as_dict()
    baselines["greedy"] = evaluate(
        lambda b, pr: greedy(setting, b, pr), setting, costs, profiles, **kw
    ).as_dict()
    # "No-IM" ignores the bids (beyond the reserve test) and pays them: a selected seller's best misreport is
    # the reserve itself, so its regret is z_s (b_bar - c_s) in closed form (a grid search would need the
    # same random draw at every misreport)
    picks = random_selection(setting, np.zeros_like(costs), profiles, rng)[0] * (costs <= setting.reserve)
    zr, pr = picks, picks * costs
    value = setting.value(zr, profiles)
    rgt_r = picks * (setting.reserve - costs) / setting.reserve
    u_r = value - pr.sum(axis=1)
    baselines["random"] = Metrics(
        requester_utility=float(u_r.mean()),
        requester_utility_se=float(u_r.std(ddof=1) / np.sqrt(u_r.size)) if u_r.size > 1 else 0.0,
        regret_grid=float(rgt_r.mean()),
        regret_profiles=int(rgt_r.shape[0]),
        welfare=float((value - (zr * costs).sum(axis=1)).mean()),
        regret=float(rgt_r.mean()),
        regret_max=float(rgt_r.max()),
        ir_violation=0.0,
        winners_mean=float(zr.sum(axis=1).mean()),
    ).as_dict()
    if isinstance(setting, SingleUniform):
        v = setting.unit_value
        baselines["myerson"] = evaluate(lambda b, pr: myerson_outcome(b, v), setting, costs, profiles,
                                        **kw).as_dict()
    out["baselines"] = baselines
    return out
