"""RANet as a mechanism: shipped weights, numpy forward pass, ``allocate(bids, profiles) -> (z, p)``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from ..errors import MechanismError
from .monotone import MonotoneRANet
from .nets import HEADS, Mlp, allocation_head, ir_payment, sigmoid
from .registry import get_setting, load_weights, read_npz, run_batched
from .settings import Setting

FORMAT = "bazaar-ranet/1"
VARIANTS = ("ranet", "monotone")


def weights_name(setting: str, sellers: int) -> str:
    """File name of the shipped weights for ``setting`` and ``sellers``."""
    return f"{setting}-s{sellers}.npz"


def _layers(arrays: dict[str, np.ndarray], prefix: str) -> Mlp:
    weights, biases = [], []
    k = 0
    while f"{prefix}_W{k}" in arrays:
        weights.append(np.asarray(arrays[f"{prefix}_W{k}"], dtype=np.float64))
        biases.append(np.asarray(arrays[f"{prefix}_b{k}"], dtype=np.float64))
        k += 1
    if not weights:
        raise MechanismError(f"weights file has no {prefix} network")
    return Mlp(tuple(weights), tuple(biases))


@dataclass(frozen=True)
class RANet:
    """A trained reverse auction: allocation network ``g`` and payment network ``p~``.

    Attributes:
        setting: the :class:`Setting` it was trained for (fixes the reserve and the input normalisation).
        sellers: number of sellers ``S``.
        alloc: allocation MLP (``S + 1`` outputs for the ``single`` head, ``S`` for ``multi``).
        pay: payment MLP (``S`` outputs, squashed by a sigmoid into ``p~ in [0, 1]``).
        meta: training record (iterations, seed, final utility / regret / lambda / rho, ...).
    """

    setting: Setting
    sellers: int
    alloc: Mlp
    pay: Mlp
    meta: dict[str, Any] = field(default_factory=dict)
    variant: str = "ranet"

    def __post_init__(self) -> None:
        if self.sellers < 1:
            raise MechanismError("a reverse auction needs at least one seller")
        n_in = self.setting.n_inputs(self.sellers)
        extra = 1 if self.setting.head == "single" else 0
        if self.alloc.n_in != n_in or self.pay.n_in != n_in:
            raise MechanismError(f"networks take {self.alloc.n_in} inputs, setting needs {n_in}")
        if self.alloc.n_out != self.sellers + extra or self.pay.n_out != self.sellers:
            raise MechanismError("network output widths do not match the number of sellers and the head")

    @property
    def head(self) -> str:
        """Allocation head: ``single`` or ``multi``."""
        return self.setting.head

    @property
    def reserve(self) -> float:
        """``b_bar``: bids above it never win; every payment is at most ``z_s * b_bar``."""
        return self.setting.reserve

    @overload
    @classmethod
    def load(cls, sellers: int, setting: str, path: str | Path | None = None,
             variant: Literal["ranet"] = "ranet") -> RANet: ...

    @overload
    @classmethod
    def load(cls, sellers: int, setting: str, path: str | Path | None = None, *,
             variant: Literal["monotone"]) -> MonotoneRANet: ...

    @overload
    @classmethod
    def load(cls, sellers: int, setting: str, path: str | Path | None = None,
             variant: str = "ranet") -> RANet | MonotoneRANet: ...

    @classmethod
    def load(cls, sellers: int, setting: str, path: str | Path | None = None,
             variant: str = "ranet") -> RANet | MonotoneRANet:
        """Load shipped weights (or ``path``) for ``setting`` with ``sellers`` sellers.

        ``variant="monotone"`` loads the truthful-by-construction variant (:class:`.monotone.MonotoneRANet`,
        same ``allocate`` contract) instead of the learned RANet.

        Raises:
            MechanismError: unknown variant, no weights for this combination, or the file does not match it.
        """
        if variant == "monotone":
            return MonotoneRANet.load(sellers, setting, path)
        if variant != "ranet":
            raise MechanismError(f"unknown RANet variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        return load_weights(cls.from_file, weights_name(setting, sellers), "RANet", setting, sellers, path)

    @classmethod
    def from_file(cls, path: str | Path) -> RANet:
        """Read a ``.npz`` written by :meth:`save` (no pickles are loaded)."""
        arrays = read_npz(path, "RANet")
        if "meta" not in arrays:
            raise MechanismError(f"{path} is not a RANet weights file (no meta)")
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT:
            raise MechanismError(f"{path}: unknown weights format {meta.get('format')!r}")
        setting = get_setting(meta["setting"])
        if meta.get("head", setting.head) not in HEADS or meta.get("head", setting.head) != setting.head:
            raise MechanismError(f"{path}: head {meta.get('head')!r} does not match setting {setting.name}")
        return cls(setting, int(meta["sellers"]), _layers(arrays, "alloc"), _layers(arrays, "pay"), meta)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The weights as named arrays plus a JSON ``meta`` string (the ``.npz`` layout)."""
        out: dict[str, np.ndarray] = {}
        for prefix, mlp in (("alloc", self.alloc), ("pay", self.pay)):
            for k, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
                out[f"{prefix}_W{k}"] = w
                out[f"{prefix}_b{k}"] = b
        meta = {**self.meta, "format": FORMAT, "setting": self.setting.name, "sellers": self.sellers,
                "head": self.head}
        out["meta"] = np.array(json.dumps(meta, sort_keys=True))
        return out

    def save(self, path: str | Path) -> None:
        """Write the weights to ``path`` (``.npz``)."""
        np.savez_compressed(Path(path), **self.to_arrays())  # type: ignore[arg-type]

    def allocate(
        self, bids: np.ndarray, profiles: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the auction on a batch of bid profiles.

        Args:
            bids: ``(batch, S)`` non-negative bids (a 1-D array is one profile).
            profiles: ``(batch, S, 2)`` public seller profiles ``(d_s, theta_s)`` for ``tbcim``; None for
                ``single-uniform``.

        Returns:
            ``(z, payments)``, both ``(batch, S)`` (1-D for 1-D input): win probabilities and expected
            payments ``p_s = z_s (b_s + p~_s (b_bar - b_s))``. A bid above ``b_bar`` gets ``z_s = 0``.

        Raises:
            MechanismError: shapes, signs or finiteness of the input are wrong.
        """
        return run_batched(self._forward, self.setting, self.sellers, bids, profiles)

    def _forward(self, b: np.ndarray, prof: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Forward pass without input checks (used by the regret search on large tiled batches)."""
        x = self.setting.features(np.minimum(b, self.reserve), prof)
        z = allocation_head(self.alloc(x), self.head)
        z = np.where(b <= self.reserve, z, 0.0)
        ratio = sigmoid(self.pay(x))
        return z, ir_payment(z, b, ratio, self.reserve)
