"""The FL models by name, behind one small interface (so callers pick ``"softmax"`` or ``"mlp"``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import MechanismError
from . import mlp, softmax

Array = NDArray[np.float64]
Labels = NDArray[np.int64]


@dataclass(frozen=True)
class ModelSpec:
    """The functions of one model family on flat parameter vectors."""

    name: str
    n_params: Callable[[int, int], int]
    init_params: Callable[[int, int, int], Array]
    loss: Callable[[Array, Array, Labels], float]
    accuracy: Callable[[Array, Array, Labels], float]
    sgd: Callable[..., Array]
    local_train: Callable[..., Array]


MODELS = {
    "softmax": ModelSpec(
        "softmax", softmax.n_params, softmax.init_params, softmax.loss, softmax.accuracy, softmax.sgd,
        softmax.local_train,
    ),
    "mlp": ModelSpec("mlp", mlp.n_params, mlp.init_params, mlp.loss, mlp.accuracy, mlp.sgd, mlp.local_train),
}


def get_model(name: str) -> ModelSpec:
    """The model family called ``name`` (``"softmax"`` or ``"mlp"``).

    Raises:
        MechanismError: unknown name.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise MechanismError(f"unknown FL model {name!r} (known: {', '.join(sorted(MODELS))})") from None
