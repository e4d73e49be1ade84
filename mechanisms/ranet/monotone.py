"""The monotone variant of RANet: a learned reverse auction that is truthful by construction.

A MyersonNet-style network (Dütting et al., "Optimal auctions through deep learning", Sec. 4, turned into a
procurement auction over the setting's exact winner sets; docs/models/tbcim-auction.md):

* every seller's bid goes through one learned, strictly increasing *virtual-cost transform*
  ``phi(b) = b_bar * min_g max_k (exp(alpha_gk) b / b_bar + beta_gk + gamma_gk . f_s)``, with ``f_s`` the
  seller's public profile features (``tbcim``: normalised data size and EMD; none in ``single-uniform``);
  the parameters are shared by all sellers (the settings are exchangeable);
* the winner set maximises the *virtual welfare* ``V(W) - sum_{s in W} phi(b_s)`` over every set the setting
  allows (the empty set, worth 0, included; bids above ``b_bar`` never win);
* a winner is paid its critical bid ``min(b_bar, phi^-1(T_s))``, where ``T_s`` is the largest virtual cost with
  which it would still win: ``max_{W ni s} (V(W) - sum_{j in W, j != s} phi(b_j)) - max_{W not ni s} (V(W) -
  sum_{j in W} phi(b_j))``.

Lowering a bid lowers its virtual cost, which raises every set containing the seller by the same amount and no
other set, so the allocation is monotone; the payment does not depend on the winner's own bid; a winner is paid
at least its bid. Hence dominant-strategy truthfulness (zero ex-post regret) and individual rationality hold
for every value of the parameters, trained or not. With ``phi(b) = b`` it is VCG; in ``single-uniform`` with
``phi(b) = 2 b`` it is Myerson's optimal auction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MechanismError
from .baselines import _set_values, winner_sets
from .registry import get_setting, load_weights, read_npz, run_batched
from .settings import Setting

FORMAT = "bazaar-ranet-monotone/1"
MAX_SELLERS = 12  # the allocation enumerates every allowed winner set


@lru_cache(maxsize=32)
def _masks(sellers: int, max_winners: int) -> np.ndarray:
    masks = winner_sets(sellers, max_winners)
    masks.setflags(write=False)
    return masks


def monotone_weights_name(setting: str, sellers: int) -> str:
    """File name of the shipped monotone-variant weights for ``setting`` and ``sellers``."""
    return f"monotone-{setting}-s{sellers}.npz"


def seller_features(setting: Setting, profiles: np.ndarray | None, batch: int, sellers: int) -> np.ndarray:
    """Public per-seller features ``(batch, S, profile_width)`` the transform may use (the setting's own
    normalisation of the network input, without the bid)."""
    if setting.profile_width == 0:
        return np.zeros((batch, sellers, 0))
    x = setting.features(np.zeros((batch, sellers)), profiles)
    return x.reshape(batch, 1 + setting.profile_width, sellers)[:, 1:, :].transpose(0, 2, 1)


@dataclass(frozen=True)
class Transform:
    """``phi(b) = b_bar * min_g max_k (exp(alpha_gk) b / b_bar + beta_gk + gamma_gk . f)``, increasing in ``b``.

    Attributes:
        alpha: ``(G, K)`` log-slopes.
        beta: ``(G, K)`` offsets (units of ``b_bar``).
        gamma: ``(G, K, F)`` coefficients of the public features ``f`` (``F = 0``: none).
    """

    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray

    def __post_init__(self) -> None:
        a, b, c = self.alpha, self.beta, self.gamma
        if a.ndim != 2 or a.size == 0 or b.shape != a.shape or c.ndim != 3 or c.shape[:2] != a.shape:
            raise MechanismError(f"transform shapes do not fit: alpha {a.shape}, beta {b.shape}, gamma {c.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(c))):
            raise MechanismError("transform parameters must be finite")

    @property
    def n_params(self) -> int:
        """Number of free parameters."""
        return int(self.alpha.size + self.beta.size + self.gamma.size)

    def to_vector(self) -> np.ndarray:
        """All parameters as one flat vector (``alpha, beta, gamma``)."""
        return np.concatenate([self.alpha.ravel(), self.beta.ravel(), self.gamma.ravel()])

    @classmethod
    def from_vector(cls, v: np.ndarray, groups: int, units: int, features: int) -> Transform:
        """Inverse of :meth:`to_vector`."""
        n = groups * units
        if v.shape != (n * (2 + features),):
            raise MechanismError(f"parameter vector of length {v.shape} does not fit {groups}x{units}x{features}")
        return cls(v[:n].reshape(groups, units), v[n : 2 * n].reshape(groups, units),
                   v[2 * n :].reshape(groups, units, features))

    @classmethod
    def identity(cls, groups: int, units: int, features: int, slope: float = 1.0) -> Transform:
        """``phi(b) = slope * b`` (every unit the same line; ``slope = 1`` is VCG)."""
        return cls(np.full((groups, units), np.log(slope)), np.zeros((groups, units)),
                   np.zeros((groups, units, features)))

    def _offsets(self, feats: np.ndarray) -> np.ndarray:
        """``beta + gamma . f`` for features ``(..., F)``: ``(..., G, K)``."""
        return self.beta + np.einsum("gkf,...f->...gk", self.gamma, feats)

    def forward(self, bids: np.ndarray, feats: np.ndarray, reserve: float) -> np.ndarray:
        """Virtual costs ``phi(b)`` for bids ``(...)`` with features ``(..., F)``."""
        h = np.exp(self.alpha) * (bids / reserve)[..., None, None] + self._offsets(feats)
        return reserve * h.max(axis=-1).min(axis=-1)

    def inverse(self, values: np.ndarray, feats: np.ndarray, reserve: float) -> np.ndarray:
        """``phi^-1``: the largest bid whose virtual cost is at most ``values`` (``max_g min_k`` of the unit
        inverses; exact for the piecewise-linear ``phi``)."""
        t = (values / reserve)[..., None, None]
        x = (t - self._offsets(feats)) / np.exp(self.alpha)
        return reserve * x.min(axis=-1).max(axis=-1)


@dataclass(frozen=True)
class MonotoneRANet:
    """The monotone variant: learned virtual-cost transform, virtual-welfare allocation, critical payments.

    Same interface as :class:`.mechanism.RANet` (``allocate``, ``setting``, ``sellers``, ``reserve``, ``meta``).

    Attributes:
        setting: the :class:`Setting` it was trained for.
        sellers: number of sellers ``S``.
        transform: the shared virtual-cost transform.
        meta: training record (seed, evaluations, utility, seconds, ...).
    """

    setting: Setting
    sellers: int
    transform: Transform
    meta: dict[str, Any] = field(default_factory=dict)
    variant: str = "monotone"

    def __post_init__(self) -> None:
        if not 1 <= self.sellers <= MAX_SELLERS:
            raise MechanismError(f"the monotone variant takes 1..{MAX_SELLERS} sellers, got {self.sellers}")
        if self.transform.gamma.shape[2] != self.setting.profile_width:
            raise MechanismError(
                f"transform uses {self.transform.gamma.shape[2]} profile features, setting has "
                f"{self.setting.profile_width}"
            )

    @property
    def head(self) -> str:
        """Allocation head of the setting (the allocation itself is always integral)."""
        return self.setting.head

    @property
    def reserve(self) -> float:
        """``b_bar``: bids above it never win; every payment is at most ``b_bar``."""
        return self.setting.reserve

    @classmethod
    def load(cls, sellers: int, setting: str, path: str | Path | None = None) -> MonotoneRANet:
        """Load shipped weights (or ``path``) for ``setting`` with ``sellers`` sellers.

        Raises:
            MechanismError: no weights for this combination, or the file does not match it.
        """
        return load_weights(cls.from_file, monotone_weights_name(setting, sellers), "monotone", setting, sellers, path)

    @classmethod
    def from_file(cls, path: str | Path) -> MonotoneRANet:
        """Read a ``.npz`` written by :meth:`save` (no pickles are loaded)."""
        arrays = read_npz(path, "monotone")
        if "meta" not in arrays or not {"alpha", "beta", "gamma"} <= arrays.keys():
            raise MechanismError(f"{path} is not a monotone-variant weights file")
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT:
            raise MechanismError(f"{path}: unknown weights format {meta.get('format')!r}")
        transform = Transform(*(np.asarray(arrays[k], dtype=np.float64) for k in ("alpha", "beta", "gamma")))
        return cls(get_setting(meta["setting"]), int(meta["sellers"]), transform, meta)

    def save(self, path: str | Path) -> None:
        """Write the parameters and a JSON ``meta`` string to ``path`` (``.npz``)."""
        meta = {**self.meta, "format": FORMAT, "setting": self.setting.name, "sellers": self.sellers}
        np.savez_compressed(Path(path), alpha=self.transform.alpha, beta=self.transform.beta,
                            gamma=self.transform.gamma, meta=np.array(json.dumps(meta, sort_keys=True)))

    def masks(self) -> np.ndarray:
        """Every winner set the setting allows, ``(K, S)`` 0/1, the empty set first."""
        return _masks(self.sellers, self.setting.max_winners(self.sellers))

    def set_values(self, masks: np.ndarray, profiles: np.ndarray | None, batch: int) -> np.ndarray:
        """``V(W)`` per profile and allowed set ``(batch, K)``, computed once per distinct profile (the regret
        search repeats each profile at every misreport)."""
        if profiles is None or batch < 2:
            return _set_values(self.setting, masks, profiles, batch)
        flat = profiles.reshape(batch, -1)
        uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
        if uniq.shape[0] > batch // 2:
            return _set_values(self.setting, masks, profiles, batch)
        vals = _set_values(self.setting, masks, uniq.reshape(-1, *profiles.shape[1:]), uniq.shape[0])
        return vals[inverse.reshape(-1)]

    def virtual_costs(self, bids: np.ndarray, profiles: np.ndarray | None) -> np.ndarray:
        """``phi(b_s)`` per seller ``(batch, S)``; ``+inf`` above the reserve."""
        feats = seller_features(self.setting, profiles, bids.shape[0], self.sellers)
        phi = self.transform.forward(np.minimum(bids, self.reserve), feats, self.reserve)
        return np.where(bids <= self.reserve, phi, np.inf)

    def allocate(
        self, bids: np.ndarray, profiles: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the auction on a batch of bid profiles (same contract as :meth:`.mechanism.RANet.allocate`).

        Returns:
            ``(z, payments)``, both ``(batch, S)`` (1-D for 1-D input); ``z`` is 0/1 and a winner's payment is
            its critical bid (at least its bid, at most ``b_bar``); losers are paid 0.

        Raises:
            MechanismError: shapes, signs or finiteness of the input are wrong.
        """
        return run_batched(self._forward, self.setting, self.sellers, bids, profiles)

    def _forward(self, b: np.ndarray, prof: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The auction without input checks (the regret search calls it on large tiled batches)."""
        masks = self.masks()
        batch, S = b.shape
        values = self.set_values(masks, prof, batch)  # (batch, K)
        phi = self.virtual_costs(b, prof)
        over = ~np.isfinite(phi)
        finite = np.where(over, 0.0, phi)
        blocked = (over.astype(np.float64) @ masks.T) > 0  # sets holding a bid above the reserve
        score = np.where(blocked, -np.inf, values - finite @ masks.T)
        best = score.argmax(axis=1)
        z = masks[best]
        feats = seller_features(self.setting, prof, batch, S)
        p = np.zeros_like(b)
        for s in range(S):
            won = z[:, s] > 0
            if not won.any():
                continue
            has = masks[:, s] > 0
            # the threshold uses the other sellers' virtual costs only: the seller's own bid cannot move it
            others = finite[won].copy()
            others[:, s] = 0.0
            others_over = over[won].copy()
            others_over[:, s] = False
            blk = (others_over.astype(np.float64) @ masks.T) > 0
            cost = others @ masks.T
            vals = values[won]
            with_s = np.where(blk[:, has], -np.inf, vals[:, has] - cost[:, has]).max(axis=1)
            without_s = np.where(blk[:, ~has], -np.inf, vals[:, ~has] - cost[:, ~has]).max(axis=1)
            critical = self.transform.inverse(with_s - without_s, feats[won, s], self.reserve)
            p[won, s] = np.minimum(self.reserve, critical)
        return z, p
