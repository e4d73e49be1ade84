"""Proof-of-Learning mining for a node: the shared data split, local training, loss re-computation, and a
content-addressed model store served to peers over ``/bazaar/model/1``.

Every validator re-computes a claimed loss bit for bit: training and evaluation are deterministic numpy
(``mechanisms.fl``) and weights travel as little-endian float64 bytes whose SHA-256 is the model hash.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bazaar.mechanisms.fl import data as fl_data
from bazaar.mechanisms.fl import softmax
from bazaar.protocol import ProtocolError, codec
from bazaar.protocol.chainmsg import PROTO_MODEL
from bazaar.protocol.errors import ProtocolReason
from bazaar.protocol.transport import RejectRequest, Transport

from ..reasons import NodeReason

MODEL_CACHE = 64


def weights_bytes(w: np.ndarray) -> bytes:
    """Canonical bytes of a weight vector (little-endian float64)."""
    return np.ascontiguousarray(w, dtype="<f8").tobytes()


def weights_from_bytes(raw: bytes, size: int) -> np.ndarray:
    """Parse weight bytes; raises ValueError when the length is not ``size`` float64 values."""
    if len(raw) != 8 * size:
        raise ValueError(f"expected {8 * size} bytes of weights, got {len(raw)}")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)


def model_hash(w: np.ndarray) -> bytes:
    """SHA-256 of the canonical weight bytes."""
    return hashlib.sha256(weights_bytes(w)).digest()


@dataclass(frozen=True)
class LearningTask:
    """The shared model and data every miner and validator uses."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    n_params: int
    init: np.ndarray
    learning_rate: float
    batch_size: int

    @classmethod
    def digits(cls, *, eval_fraction: float, seed: int, learning_rate: float, batch_size: int) -> LearningTask:
        """Softmax regression on scikit-learn's bundled digits, split deterministically by ``seed``."""
        X, y = fl_data.load_digits()
        X_tr, y_tr, X_ev, y_ev = fl_data.split_train_eval(X, y, eval_fraction, seed)
        n_features, n_classes = X.shape[1], 10
        return cls(X_tr, y_tr, X_ev, y_ev, softmax.n_params(n_features, n_classes),
                   softmax.init_params(n_features, n_classes, seed), learning_rate, batch_size)

    def train(self, start: np.ndarray, steps: int, seed: int) -> np.ndarray:
        """``steps`` minibatch SGD steps from ``start`` (deterministic given ``seed``)."""
        if steps <= 0:
            return np.array(start, dtype=np.float64)
        return softmax.sgd(start, self.X_train, self.y_train, steps=steps, lr=self.learning_rate,
                           batch_size=self.batch_size, seed=seed)

    def loss(self, w: np.ndarray) -> float:
        """Mean cross-entropy on the shared evaluation split (what PoL ranks)."""
        return float(softmax.loss(w, self.X_eval, self.y_eval))

    def accuracy(self, w: np.ndarray) -> float:
        """Accuracy on the evaluation split."""
        return float(softmax.accuracy(w, self.X_eval, self.y_eval))


class ModelStore:
    """Weights by hash: the newest ``MODEL_CACHE`` in memory, the current global model on disk."""

    def __init__(self, task: LearningTask, folder: Path) -> None:
        self.task = task
        self.folder = folder
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.global_hash = model_hash(task.init)
        self.put(task.init)
        saved = folder / "global.npy"
        if saved.exists():
            try:
                w = np.load(saved, allow_pickle=False)
                if w.shape == (task.n_params,):
                    self.global_hash = self.put(w)
            except (OSError, ValueError):
                saved.unlink(missing_ok=True)

    def put(self, w: np.ndarray) -> bytes:
        """Keep ``w``; returns its hash."""
        h = model_hash(w)
        self._cache[h] = np.array(w, dtype=np.float64)
        self._cache.move_to_end(h)
        while len(self._cache) > MODEL_CACHE:
            oldest = next(iter(self._cache))
            if oldest == self.global_hash:
                self._cache.move_to_end(oldest)
                oldest = next(iter(self._cache))
            del self._cache[oldest]
        return h

    def get(self, h: bytes) -> np.ndarray | None:
        """Weights with hash ``h`` if we have them."""
        return self._cache.get(h)

    @property
    def global_model(self) -> np.ndarray:
        """The model miners start from: the last adopted PoL winner's weights."""
        w = self._cache.get(self.global_hash)
        return w if w is not None else self.task.init

    def adopt(self, h: bytes) -> bool:
        """Make the model with hash ``h`` the global model (persisted); False if we do not hold it."""
        w = self._cache.get(h)
        if w is None:
            return False
        self.global_hash = h
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / "global.tmp.npy"
        np.save(tmp, w, allow_pickle=False)
        tmp.replace(self.folder / "global.npy")
        return True

    async def serve(self, peer: bytes, request: bytes) -> bytes:
        """``/bazaar/model/1`` handler: ``{hash}`` -> ``{weights}``."""
        try:
            req = codec.decode(request, max_size=256)
        except ProtocolError as err:
            raise RejectRequest(err.reason) from err
        if not isinstance(req, dict) or not isinstance(req.get("hash"), bytes) or len(req["hash"]) != 32:
            raise RejectRequest(ProtocolReason.MALFORMED)  # want {hash: 32 bytes}
        w = self.get(req["hash"])
        if w is None:
            raise RejectRequest(NodeReason.UNKNOWN_CONTENT)
        return codec.encode({"weights": weights_bytes(w)})

    async def fetch(self, transport: Transport, peer: bytes, h: bytes, *, timeout: float) -> np.ndarray:
        """Weights with hash ``h`` from our store or from ``peer`` (verified against the hash).

        Raises:
            PeerUnavailable, RemoteRejected, trio.TooSlowError, ValueError (wrong bytes).
        """
        w = self.get(h)
        if w is not None:
            return w
        raw = await transport.request(peer, PROTO_MODEL, codec.encode({"hash": h}), timeout=timeout)
        answer = codec.decode(raw)
        if not isinstance(answer, dict) or not isinstance(answer.get("weights"), bytes):
            raise ValueError("malformed model answer")
        w = weights_from_bytes(answer["weights"], self.task.n_params)
        if model_hash(w) != h:
            raise ValueError("weights do not match their hash")
        self.put(w)
        return w
