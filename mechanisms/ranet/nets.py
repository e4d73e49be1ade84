"""The RANet forward pass in numpy: a tanh MLP, the two allocation heads and the IR-preserving payment.

The same architecture is built in PyTorch by :mod:`.training`; weights move between the two as plain arrays
(``alloc_W0, alloc_b0, ..., pay_W0, ...``) stored in an ``.npz`` file, so nodes never need torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MechanismError

HEADS = ("single", "multi")


@dataclass(frozen=True)
class Mlp:
    """A fully connected network with tanh hidden layers and a linear output layer.

    Attributes:
        weights: matrices ``W_k`` of shape ``(fan_in, fan_out)``.
        biases: vectors ``b_k`` of shape ``(fan_out,)``.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if not self.weights or len(self.weights) != len(self.biases):
            raise MechanismError("an MLP needs as many bias vectors as weight matrices (at least one)")
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise MechanismError(f"layer {k}: weight {w.shape} and bias {b.shape} do not fit")
            if k and self.weights[k - 1].shape[1] != w.shape[0]:
                raise MechanismError(f"layer {k}: input width {w.shape[0]} != previous output width")

    @property
    def n_in(self) -> int:
        """Input width."""
        return int(self.weights[0].shape[0])

    @property
    def n_out(self) -> int:
        """Output width."""
        return int(self.weights[-1].shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the network to a batch ``x`` of shape ``(..., n_in)``; returns ``(..., n_out)``."""
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if k < last:
                h = np.tanh(h)
        return h


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def allocation_head(logits: np.ndarray, head: str) -> np.ndarray:
    """Turn allocation logits into win probabilities ``z``.

    Args:
        logits: ``(..., S + 1)`` for ``single`` (last column: "buy nothing"), ``(..., S)`` for ``multi``.
        head: ``"single"`` (softmax, ``sum z <= 1``) or ``"multi"`` (independent sigmoids).

    Returns:
        ``z`` of shape ``(..., S)`` with entries in ``[0, 1]``.
    """
    if head == "single":
        return softmax(logits)[..., :-1]
    if head == "multi":
        return sigmoid(logits)
    raise MechanismError(f"unknown allocation head {head!r}; expected one of {HEADS}")


def ir_payment(z: np.ndarray, bids: np.ndarray, ratio: np.ndarray, reserve: float) -> np.ndarray:
    """The IR-preserving payment ``p_s = z_s (b_s + p~_s (b_bar - b_s))`` (docs/models/tbcim-auction.md).

    For ``b_s <= b_bar`` it lies in ``[z_s b_s, z_s b_bar]``, so a truthful seller never loses.
    """
    return z * (bids + ratio * (reserve - bids))
