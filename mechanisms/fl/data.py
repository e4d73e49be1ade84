"""The FL data set and its federated splits.

scikit-learn's bundled handwritten digits (1797 images of 8x8 pixels, 10 classes) ship inside the
scikit-learn wheel, so nothing is downloaded. Every split is a pure function of its seed.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError

N_CLASSES = 10


def load_digits() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The handwritten digits, pixels scaled from 0..16 to [0, 1].

    Read from ``digits.npz`` shipped beside this module (the UCI optical-recognition digits as scikit-learn
    bundles them, CC BY 4.0; the same 1797 images in the same order, stored as uint8), so a node does not
    import scikit-learn (a second of start-up and ~30 MB per process).

    Returns:
        ``X`` float64 ``[1797, 64]`` in [0, 1] and ``y`` int64 ``[1797]`` in 0..9.
    """
    with resources.as_file(resources.files(__package__) / "digits.npz") as path, \
            np.load(path, allow_pickle=False) as data:
        pixels, labels = data["pixels"], data["labels"]
    X = np.ascontiguousarray(pixels, dtype=np.float64) / 16.0
    y = np.ascontiguousarray(labels, dtype=np.int64)
    return X, y


def _labels(y: NDArray[np.int64]) -> NDArray[np.int64]:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise MechanismError("labels must be a non-empty 1-D array")
    if not np.issubdtype(arr.dtype, np.integer):
        raise MechanismError(f"labels must be integers, got {arr.dtype}")
    if arr.min() < 0:
        raise MechanismError("labels must be non-negative")
    return arr.astype(np.int64)


def split_train_eval(
    X: NDArray[np.float64], y: NDArray[np.int64], eval_fraction: float, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Stratified, deterministic train / held-out split.

    Each class contributes ``round(eval_fraction * n_class)`` randomly chosen samples (at least one when
    the class has two or more) to the evaluation part. Both parts keep the original sample order.

    Args:
        X: features ``[n, f]``.
        y: labels ``[n]``.
        eval_fraction: share held out, in (0, 1).
        seed: seed of the per-class permutations.

    Returns:
        ``(X_train, y_train, X_eval, y_eval)``.

    Raises:
        MechanismError: mismatched sizes or a fraction outside (0, 1).
    """
    y = _labels(y)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise MechanismError(f"X {X.shape} and y {y.shape} do not match")
    if not 0.0 < eval_fraction < 1.0:
        raise MechanismError(f"eval_fraction must lie in (0, 1), got {eval_fraction}")
    rng = np.random.default_rng(seed)
    is_eval = np.zeros(y.shape[0], dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = round(eval_fraction * idx.size)
        k = min(max(k, 1), idx.size - 1) if idx.size >= 2 else 0
        is_eval[rng.permutation(idx)[:k]] = True
    return X[~is_eval], y[~is_eval], X[is_eval], y[is_eval]


def dirichlet_split(y: NDArray[np.int64], n_clients: int, alpha: float, seed: int) -> list[NDArray[np.int64]]:
    """Non-IID label split: each class is shared among clients by Dirichlet(alpha) proportions.

    For every class (in label order) a proportion vector ``p ~ Dir(alpha * 1)`` is drawn and the class's
    shuffled indices are cut at ``cumsum(p)``. Small ``alpha`` gives each client few classes; large
    ``alpha`` approaches an IID split. Draws are repeated (same generator) until every client holds a
    sample; after 100 tries each empty client takes one sample from the largest client.

    Args:
        y: labels ``[n]``.
        n_clients: number of clients, ``1 <= n_clients <= n``.
        alpha: concentration, > 0.
        seed: generator seed.

    Returns:
        One sorted int64 index array per client, all non-empty, disjoint, covering ``0..n-1``.

    Raises:
        MechanismError: bad sizes or concentration.
    """
    y = _labels(y)
    n = y.shape[0]
    if not 1 <= n_clients <= n:
        raise MechanismError(f"n_clients must lie in 1..{n}, got {n_clients}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise MechanismError(f"alpha must be a positive number, got {alpha}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    parts: list[list[int]] = []
    for _ in range(100):
        parts = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            p = rng.dirichlet(np.full(n_clients, float(alpha)))
            cuts = np.floor(np.cumsum(p)[:-1] * idx.size).astype(np.int64)
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i].extend(chunk.tolist())
        if min(len(p_) for p_ in parts) > 0:
            break
    for i in range(n_clients):
        if not parts[i]:
            donor = max(range(n_clients), key=lambda j: (len(parts[j]), -j))
            parts[donor].sort()
            parts[i].append(parts[donor].pop())
    return [np.array(sorted(p_), dtype=np.int64) for p_ in parts]


def iid_split(n: int, n_clients: int, seed: int) -> list[NDArray[np.int64]]:
    """IID split of ``n`` samples into ``n_clients`` near-equal random parts (sorted index arrays).

    Raises:
        MechanismError: ``n_clients`` outside ``1..n``.
    """
    if not 1 <= n_clients <= n:
        raise MechanismError(f"n_clients must lie in 1..{n}, got {n_clients}")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(perm, n_clients)]


def label_distribution(y: NDArray[np.int64], n_classes: int = N_CLASSES) -> NDArray[np.float64]:
    """Empirical label distribution ``P(y = j)``, ``j = 0..n_classes-1``.

    Raises:
        MechanismError: empty labels or a label outside ``0..n_classes-1``.
    """
    y = _labels(y)
    if y.max() >= n_classes:
        raise MechanismError(f"label {int(y.max())} outside 0..{n_classes - 1}")
    return np.bincount(y, minlength=n_classes).astype(np.float64) / y.shape[0]
