"""Metrics of a procurement mechanism at truthful bids: requester utility, welfare, regret, IR, winners."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import MechanismError
from .baselines import VCG_MAX_SELLERS, greedy, random_selection, vcg
from .mechanism import RANet
from .myerson import myerson_outcome
from .regret import Outcome, grid_regret
from .settings import Setting, SingleUniform

VCG_REGRET_WORK = 4e7  # set evaluations the VCG regret search may use


@dataclass(frozen=True)
class Metrics:
    """Sample means over the evaluation profiles.

    Attributes:
        requester_utility: ``V(z) - sum_s p_s``.
        welfare: ``V(z) - sum_s z_s c_s``.
        regret: ex-post regret per seller, normalised by ``b_bar`` (mean over profiles and sellers).
        regret_max: the largest single (profile, seller) normalised regret.
        ir_violation: ``sum_s max(0, z_s c_s - p_s)`` (a truthful seller's loss).
        winners_mean: ``sum_s z_s`` (expected number of winners).
    """

    requester_utility: float
    welfare: float
    regret: float
    regret_max: float
    ir_violation: float
    winners_mean: float

    def as_dict(self) -> dict[str, float]:
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
) -> Metrics:
    """Evaluate ``outcome`` at truthful bids ``costs``.

    Args:
        outcome: ``(bids, profiles) -> (z, p)``.
        setting: gives ``V`` and the reserve.
        costs: ``(batch, S)`` true costs.
        profiles: public profiles or None.
        regret_profiles: measure regret on only the first this-many profiles (None: all).
        points, refine: grid of :func:`.regret.grid_regret`.
    """
    z, p = outcome(costs, profiles)
    value = setting.value(z, profiles)
    n = costs.shape[0] if regret_profiles is None else min(regret_profiles, costs.shape[0])
    if n > 0:
        rgt, _ = grid_regret(outcome, costs[:n], None if profiles is None else profiles[:n], setting.reserve,
                             points=points, refine=refine)
        rgt = rgt / setting.reserve
    else:
        rgt = np.zeros((1, 1))
    return Metrics(
        requester_utility=float((value - p.sum(axis=1)).mean()),
        welfare=float((value - (z * costs).sum(axis=1)).mean()),
        regret=float(rgt.mean()),
        regret_max=float(rgt.max()),
        ir_violation=float(np.maximum(z * costs - p, 0.0).sum(axis=1).mean()),
        winners_mean=float(z.sum(axis=1).mean()),
    )


def evaluate_all(
    net: RANet,
    samples: int,
    seed: int,
    *,
    chain: str | None = None,
    regret_profiles: int | None = None,
    points: int = 101,
    refine: int = 21,
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

    Returns:
        ``{"requester_utility", "welfare", "regret", "regret_max", "ir_violation", "winners_mean",
        "baselines": {"vcg", "greedy", "random", "myerson" (single-uniform only)}}``.
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
    out: dict[str, Any] = evaluate(net._forward, setting, costs, profiles, **kw).as_dict()
    rng = np.random.default_rng(seed + 1)
    baselines: dict[str, Any] = {}
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
    baselines["random"] = Metrics(
        requester_utility=float((value - pr.sum(axis=1)).mean()),
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
