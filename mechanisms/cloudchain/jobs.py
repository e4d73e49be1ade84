"""The workloads providers run for real and oracles spot-check (docs/models/cloudchain.md §Jobs).

Every job is a deterministic function of its public seed (the data it works on is generated from it), so an
oracle can re-run what it checks:

* ``training``: softmax regression (16 features, 4 classes, 256 samples) by full-batch gradient descent for
  ``training_steps(C)`` steps; a private task runs DP-SGD: each sample's gradient clipped to norm C, N(0, σ²)
  noise on their sum from the provider's own secret seed (σ from the task's (ε, δ)), divided by the batch.
  Blob: the weights (float64).
* ``inference``: a fixed model applied to ``64·C`` rows. Blob: the predicted labels (int8).
* ``preprocessing``: ``64·C`` raw rows standardised and expanded with their squares. Blob: features (float32).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .privacy import gaussian_sigma

FEATURES, CLASSES, SAMPLES, ROWS_PER_UNIT = 16, 4, 256, 64
LEARNING_RATE = 0.5
STEPS_PER_UNIT = 10
CHECK_ROWS = 32
DP_TAIL = 6.0
"""The upper bound's slack on the accumulated noise's norm (in units of its standard deviation per coordinate)."""
DP_FLOOR = 0.2
"""A private result must stray from the clean run by at least this share of the noise's expected norm: noise
that was never added is caught (measured: 0.5–1.07 of it for 1–16 units, every ε)."""


@dataclass(frozen=True)
class JobResult:
    """What a provider delivers: the blob, its metadata, the job's quality and its run time."""

    blob: bytes
    metadata: dict[str, Any]
    quality: float
    seconds: float


def training_steps(units: float) -> int:
    """Gradient steps of a training job of ``units`` compute units."""
    return max(1, math.ceil(STEPS_PER_UNIT * units))


def _rows(units: float) -> int:
    return max(1, math.ceil(ROWS_PER_UNIT * units))


def _training_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SAMPLES, FEATURES))
    teacher = rng.normal(size=(FEATURES, CLASSES))
    y = np.argmax(x @ teacher + 0.5 * rng.normal(size=(SAMPLES, CLASSES)), axis=1)
    return x, y


def _gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = x @ w
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return np.asarray(x.T @ p / len(y))


def _accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(x @ w, axis=1) == y))


def _clipped_gradient(w: np.ndarray, x: np.ndarray, y: np.ndarray, clip_bound: float) -> np.ndarray:
    """Σ_k clip(g_k, C): every sample's gradient ``x_k ⊗ (p_k − e_{y_k})`` clipped to norm C, then summed."""
    z = x @ w
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(p, axis=1)
    scale = np.minimum(1.0, clip_bound / np.maximum(norms, 1e-12))
    return np.asarray(x.T @ (p * scale[:, None]))


def _train(seed: int, steps: int, clip_bound: float | None, sigma: float, noise: np.random.Generator | None
           ) -> np.ndarray:
    """Gradient descent; with ``clip_bound`` it is DP-SGD on the full batch: per-sample clipping, Gaussian noise
    of std σ on the sum (sensitivity C), divided by the batch size."""
    x, y = _training_data(seed)
    w = np.zeros((FEATURES, CLASSES))
    for _ in range(steps):
        if clip_bound is None:
            g = _gradient(w, x, y)
        else:
            total = _clipped_gradient(w, x, y, clip_bound)
            if noise is not None:
                total = total + noise.normal(0.0, sigma, size=total.shape)
            g = total / len(y)
        w = w - LEARNING_RATE * g
    return w


def _inference_rows(seed: int, units: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = rng.normal(size=(FEATURES, CLASSES))
    rows = np.random.default_rng(seed + 1).normal(size=(_rows(units), FEATURES))
    return model, rows


def _raw(seed: int, units: float) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 2.0, size=(_rows(units), FEATURES))


def _features(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (raw - mean) / std
    return np.concatenate([z, z * z], axis=1).astype("<f4")


def run_job(kind: str, units: float, seed: int, *, epsilon: float | None = None, delta: float | None = None,
            noise_seed: int | None = None, clip_bound: float = 1.0) -> JobResult:
    """Run one job.

    Raises:
        ValueError: an unknown kind, or a private job without delta.
    """
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"kind": kind, "units": units, "seed": seed}
    if kind == "training":
        steps = training_steps(units)
        x, y = _training_data(seed)
        if epsilon is not None:
            if delta is None:
                raise ValueError("a private job needs delta")
            sigma = gaussian_sigma(epsilon, delta, clip_bound, steps)
            noise = np.random.default_rng(noise_seed if noise_seed is not None else np.random.SeedSequence().entropy)
            w = _train(seed, steps, clip_bound, sigma, noise)
            meta.update({"private": True, "sigma": sigma, "clip": clip_bound})
        else:
            w = _train(seed, steps, None, 0.0, None)
            meta["private"] = False
        quality = _accuracy(w, x, y)
        blob = np.ascontiguousarray(w, dtype="<f8").tobytes()
        meta.update({"steps": steps, "shape": [FEATURES, CLASSES]})
    elif kind == "inference":
        model, rows = _inference_rows(seed, units)
        labels = np.argmax(rows @ model, axis=1).astype("<i1")
        blob, quality = labels.tobytes(), 1.0
        meta["rows"] = len(labels)
    elif kind == "preprocessing":
        raw = _raw(seed, units)
        mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-12
        blob, quality = _features(raw, mean, std).tobytes(), 1.0
        meta.update({"rows": len(raw), "mean": mean.tolist(), "std": std.tolist()})
    else:
        raise ValueError(f"unknown job kind {kind!r}")
    meta["quality"] = quality
    return JobResult(blob, meta, quality, time.perf_counter() - t0)


def spot_check(kind: str, units: float, seed: int, blob: bytes, metadata: dict[str, Any], *,
               epsilon: float | None = None, delta: float | None = None, clip_bound: float = 1.0,
               sample_seed: int = 0) -> bool:
    """Whether a delivered result is right (deterministic).

    Non-private training is re-run and must match exactly; private training must be finite, of the right shape,
    report its own accuracy, and stray from the clean (clipped) run by about the accumulated noise's norm — not
    more (garbage), not much less (noise never added); the noise itself is the provider's secret. Inference
    and preprocessing are checked on ``CHECK_ROWS`` rows drawn with ``sample_seed`` (each oracle draws its own)."""
    try:
        if kind == "training":
            steps = training_steps(units)
            if len(blob) != FEATURES * CLASSES * 8:
                return False
            w = np.frombuffer(blob, dtype="<f8").reshape(FEATURES, CLASSES)
            if not np.all(np.isfinite(w)):
                return False
            x, y = _training_data(seed)
            if abs(float(metadata.get("quality", -1)) - _accuracy(w, x, y)) > 1e-12:
                return False
            if epsilon is None:
                return bool(np.array_equal(w, _train(seed, steps, None, 0.0, None)))
            if delta is None:
                return False
            sigma = gaussian_sigma(epsilon, delta, clip_bound, steps)
            clean = _train(seed, steps, clip_bound, 0.0, None)
            # the noisy run drifts from the clean one by about lr·‖Σ_t noise_t‖/n (the descent map is close to
            # non-expansive at this step size); that norm concentrates at σ·sqrt(steps·d)/n
            scale = LEARNING_RATE * sigma / SAMPLES * math.sqrt(steps)
            drift = float(np.linalg.norm(w - clean))
            return DP_FLOOR * scale * math.sqrt(w.size) <= drift <= scale * (math.sqrt(w.size) + DP_TAIL)
        rows = _rows(units)
        pick = np.random.default_rng(sample_seed).choice(rows, size=min(CHECK_ROWS, rows), replace=False)
        if kind == "inference":
            if len(blob) != rows:
                return False
            model, data = _inference_rows(seed, units)
            got = np.frombuffer(blob, dtype="<i1")
            return bool(np.array_equal(got[pick], np.argmax(data[pick] @ model, axis=1)))
        if kind == "preprocessing":
            if len(blob) != rows * 2 * FEATURES * 4:
                return False
            raw = _raw(seed, units)
            mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-12
            got = np.frombuffer(blob, dtype="<f4").reshape(rows, 2 * FEATURES)
            return bool(np.allclose(got[pick], _features(raw[pick], mean, std), rtol=1e-6, atol=1e-6))
    except (ValueError, TypeError):
        return False
    return False
