"""Parameters of the AI-Bazaar Stackelberg game (docs/models/ai-bazaar.md) and the action grids the learners use."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MechanismError

#: The keys of a parameter mapping (the CLI / TOML keys), in a fixed order.
KEYS = (
    "n", "epsilon", "tau", "delta", "C_b", "u", "m", "R", "B", "lambda", "beta", "C",
    "F_min", "F_max", "p_min", "p_max",
)
#: Keys holding one value per consumer (a number is broadcast to all ``n`` consumers).
PER_CONSUMER = ("delta", "u", "m", "beta")


class ParameterError(MechanismError):
    """A parameter value the game cannot use. ``key`` names the offending key (a CLI / TOML key)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"parameter {key!r}: {message}")


def _scalar(d: Mapping[str, Any], key: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ParameterError(key, f"expected a number, got {type(v).__name__}")
    x = float(v)
    if not math.isfinite(x):
        raise ParameterError(key, f"must be finite, got {v!r}")
    return x


def _vector(d: Mapping[str, Any], key: str, n: int) -> np.ndarray:
    v = d[key]
    if isinstance(v, (list, tuple, np.ndarray)):
        items = list(v)
        if len(items) != n:
            raise ParameterError(key, f"expected {n} entries (one per consumer), got {len(items)}")
        out = np.empty(n)
        for i, item in enumerate(items):
            out[i] = _scalar({f"{key}[{i}]": item}, f"{key}[{i}]")
        return out
    return np.full(n, _scalar(d, key))


def _require(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise ParameterError(key, message)


@dataclass(frozen=True, eq=False)
class Params:
    """One instance of the game.

    Attributes:
        n: number of AI consumers (followers), ``n >= 1``.
        epsilon: ``ε = 1/T_train``, ``>= 0``.
        tau: propagation factor ``τ >= 0``.
        delta: per-consumer model loss ``δ_i >= 0``, shape ``(n,)``.
        C_b: business profit per compute unit used for AI services.
        u: per-consumer payment weight ``u_i >= 0``, shape ``(n,)``.
        m: per-consumer token effect ``m_i >= 0``, shape ``(n,)``.
        R: fixed block reward ``>= 0``.
        B: block size ``>= 0``.
        lam: performance reward factor ``λ >= 0`` (key ``"lambda"``).
        beta: per-consumer role-playing (mining) ratio ``β_i ∈ [0, 1]``, shape ``(n,)``.
        C: the CPP's electricity cost per unit.
        F_min, F_max: demand range, ``0 < F_min <= F_max``.
        p_min, p_max: price range, ``0 <= p_min <= p_max``.
    """

    n: int
    epsilon: float
    tau: float
    delta: np.ndarray
    C_b: float
    u: np.ndarray
    m: np.ndarray
    R: float
    B: float
    lam: float
    beta: np.ndarray
    C: float
    F_min: float
    F_max: float
    p_min: float
    p_max: float

    def __post_init__(self) -> None:
        for name in PER_CONSUMER:
            arr = np.array(getattr(self, name), dtype=float)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Params:
        """Build and validate parameters from the CLI keys.

        Args:
            d: mapping with exactly the keys of :data:`KEYS`; ``delta``, ``u``, ``m`` and ``beta`` may be a
                number (shared by all consumers) or a list of ``n`` numbers.

        Raises:
            ParameterError: (a :class:`MechanismError`) naming the key: unknown or missing key, wrong type,
                wrong list length, a value out of its range, or an empty range (``F_min > F_max``,
                ``p_min > p_max``).
        """
        unknown = sorted(set(d) - set(KEYS))
        if unknown:
            raise ParameterError(unknown[0], f"unknown key (allowed: {', '.join(KEYS)})")
        for key in KEYS:
            if key not in d:
                raise ParameterError(key, "missing")
        n_raw = d["n"]
        if isinstance(n_raw, bool) or not isinstance(n_raw, (int, np.integer)):
            raise ParameterError("n", f"expected an integer, got {type(n_raw).__name__}")
        n = int(n_raw)
        _require(n >= 1, "n", f"need at least one consumer, got {n}")
        s = {k: _scalar(d, k) for k in KEYS if k != "n" and k not in PER_CONSUMER}
        v = {k: _vector(d, k, n) for k in PER_CONSUMER}
        for key in ("epsilon", "tau", "R", "B", "lambda", "C", "p_min"):
            _require(s[key] >= 0, key, f"must be >= 0, got {s[key]!r}")
        f_lo, f_hi, p_lo, p_hi = s["F_min"], s["F_max"], s["p_min"], s["p_max"]
        _require(f_lo > 0, "F_min", f"must be > 0 (mining shares need positive stakes), got {f_lo!r}")
        _require(f_lo <= f_hi, "F_max", f"empty range: F_min={f_lo!r} > F_max={f_hi!r}")
        _require(p_lo <= p_hi, "p_max", f"empty range: p_min={p_lo!r} > p_max={p_hi!r}")
        for key in ("delta", "u", "m"):
            _require(bool(np.all(v[key] >= 0)), key, f"every entry must be >= 0, got {v[key].tolist()}")
        _require(bool(np.all((v["beta"] >= 0) & (v["beta"] <= 1))), "beta",
                 f"every entry must lie in [0, 1], got {v['beta'].tolist()}")
        return cls(
            n=n, epsilon=s["epsilon"], tau=s["tau"], delta=v["delta"], C_b=s["C_b"], u=v["u"], m=v["m"],
            R=s["R"], B=s["B"], lam=s["lambda"], beta=v["beta"], C=s["C"], F_min=s["F_min"],
            F_max=s["F_max"], p_min=s["p_min"], p_max=s["p_max"],
        )

    def to_mapping(self) -> dict[str, Any]:
        """The inverse of :meth:`from_mapping`: plain ints, floats and lists (JSON- and msgpack-able)."""
        return {
            "n": int(self.n), "epsilon": float(self.epsilon), "tau": float(self.tau),
            "delta": [float(x) for x in self.delta], "C_b": float(self.C_b), "u": [float(x) for x in self.u],
            "m": [float(x) for x in self.m], "R": float(self.R), "B": float(self.B),
            "lambda": float(self.lam),
            "beta": [float(x) for x in self.beta], "C": float(self.C), "F_min": float(self.F_min),
            "F_max": float(self.F_max), "p_min": float(self.p_min), "p_max": float(self.p_max),
        }

    def subset(self, idx: Sequence[int]) -> Params:
        """The game restricted to the consumers ``idx`` (in that order), e.g. those who met a deadline.

        Raises:
            ParameterError: ``idx`` is empty, repeats a consumer or names one out of range (key ``"n"``).
        """
        ids = [int(i) for i in idx]
        _require(len(ids) >= 1, "n", "a sub-game needs at least one consumer")
        _require(len(set(ids)) == len(ids), "n", f"repeated consumer in {ids}")
        _require(all(0 <= i < self.n for i in ids), "n",
                 f"consumer index out of range 0..{self.n - 1}: {ids}")
        d = self.to_mapping()
        d["n"] = len(ids)
        for key in PER_CONSUMER:
            d[key] = [d[key][i] for i in ids]
        return Params.from_mapping(d)

    def with_values(self, **changes: Any) -> Params:
        """A copy with some CLI keys changed (validated again); e.g. ``p.with_values(B=100.0)``."""
        d = self.to_mapping()
        for k, val in changes.items():
            d["lambda" if k == "lam" else k] = val.tolist() if isinstance(val, np.ndarray) else val
        return Params.from_mapping(d)


def mining_value(params: Params) -> np.ndarray:
    """``R_i^c = m_i (R + λB) exp(−ε τ δ_i B)``: the expected reward of consumer i if it mined alone."""
    decay = np.exp(-params.epsilon * params.tau * params.delta * params.B)
    return params.m * (params.R + params.lam * params.B) * decay


def price_grid(params: Params, k: int) -> np.ndarray:
    """``k`` evenly spaced price levels on ``[p_min, p_max]`` (the CPP's action set); ``k >= 1``."""
    if k < 1:
        raise MechanismError(f"price grid needs k >= 1, got {k}")
    return np.linspace(params.p_min, params.p_max, k) if k > 1 else np.array([params.p_max])


def demand_grid(params: Params, k: int) -> np.ndarray:
    """``k`` evenly spaced demand levels on ``[F_min, F_max]`` (a consumer's action set); ``k >= 1``."""
    if k < 1:
        raise MechanismError(f"demand grid needs k >= 1, got {k}")
    return np.linspace(params.F_min, params.F_max, k) if k > 1 else np.array([params.F_max])
