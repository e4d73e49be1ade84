"""One federated round: local training on each client, then deterministic FedAvg of the deltas."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from .fedavg import fedavg
from .models import ModelSpec

Array = NDArray[np.float64]


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (``numpy.random.SeedSequence``), e.g. ``(seed, round, client)``."""
    seq = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts])
    return int(seq.generate_state(1, np.uint64)[0]) >> 1


def local_delta(
    model: ModelSpec,
    global_params: Array,
    X: Array,
    y: NDArray[np.int64],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> Array:
    """``local_train(global) - global``: the update a client submits."""
    trained = model.local_train(global_params, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return trained - global_params


def apply_updates(global_params: Array, deltas: Sequence[Array], weights: Sequence[float]) -> Array:
    """``global + fedavg(deltas, weights)``; the global model itself when there is no update."""
    if len(deltas) == 0:
        return np.array(global_params, dtype=np.float64, copy=True)
    return np.asarray(global_params, dtype=np.float64) + fedavg(deltas, weights)


def federated_round(
    model: ModelSpec,
    global_params: Array,
    clients: Sequence[tuple[Array, NDArray[np.int64]]],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    round_index: int,
) -> Array:
    """Plain FedAvg round over all ``clients`` (weights = sample counts).

    Client ``i`` trains with seed ``derive_seed(seed, round_index, i)``, so the result depends only on the
    arguments.

    Raises:
        MechanismError: no clients or an empty client.
    """
    if not clients:
        raise MechanismError("a federated round needs at least one client")
    deltas, weights = [], []
    for i, (X, y) in enumerate(clients):
        if len(y) == 0:
            raise MechanismError(f"client {i} has no data")
        s = derive_seed(seed, round_index, i)
        delta = local_delta(model, global_params, X, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=s)
        deltas.append(delta)
        weights.append(float(len(y)))
    return apply_updates(global_params, deltas, weights)
