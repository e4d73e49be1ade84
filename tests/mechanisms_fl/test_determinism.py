"""Same seed -> bit-identical global model, in one process and across separate Python processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np

from bazaar.mechanisms.fl.data import dirichlet_split, load_digits, split_train_eval
from bazaar.mechanisms.fl.models import get_model
from bazaar.mechanisms.fl.rounds import federated_round

SCRIPT = """
import hashlib, sys
sys.path.insert(0, {path!r})
from test_determinism import train_digest
print(train_digest({model!r}, {seed}))
"""


def train_digest(model_name: str, seed: int) -> str:
    """SHA-256 of the global model after three FedAvg rounds on a Dirichlet split, and of its eval loss."""
    X, y = load_digits()
    X_tr, y_tr, X_ev, y_ev = split_train_eval(X, y, 0.2, seed)
    parts = dirichlet_split(y_tr, 6, 0.5, seed)
    model = get_model(model_name)
    w = model.init_params(64, 10, seed)
    clients = [(X_tr[p], y_tr[p]) for p in parts]
    for r in range(3):
        w = federated_round(model, w, clients, epochs=1, lr=0.05, batch_size=16, seed=seed, round_index=r)
    loss = np.float64(model.loss(w, X_ev, y_ev))
    return hashlib.sha256(w.tobytes() + loss.tobytes()).hexdigest()


def test_same_seed_same_bytes_in_process() -> None:
    assert train_digest("softmax", 5) == train_digest("softmax", 5)
    assert train_digest("softmax", 5) != train_digest("softmax", 6)


def test_same_seed_same_bytes_across_processes() -> None:
    here = __file__.rsplit("/", 1)[0]
    for model in ("softmax", "mlp"):
        local = train_digest(model, 11)
        outs = set()
        for threads in ("1", "2"):
            env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "PYTHONHASHSEED": threads}
            import os

            proc = subprocess.run(
                [sys.executable, "-c", SCRIPT.format(path=here, model=model, seed=11)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, **env},
                timeout=120,
            )
            outs.add(proc.stdout.strip())
        assert outs == {local}, (model, outs, local)
    assert hashlib.sha256(b"").hexdigest()  # hashlib is the digest used in both processes
