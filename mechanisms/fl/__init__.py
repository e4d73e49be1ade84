"""Federated-learning core: data set, splits, numpy models, deterministic FedAvg, poisoning filter."""

from . import data, fedavg, filter, linalg, mlp, softmax
from .data import dirichlet_split, iid_split, label_distribution, load_digits, split_train_eval
from .fedavg import fedavg as fedavg_aggregate
from .filter import UpdateFilter, cosine_similarity

__all__ = [
    "UpdateFilter",
    "cosine_similarity",
    "data",
    "dirichlet_split",
    "fedavg",
    "fedavg_aggregate",
    "filter",
    "iid_split",
    "label_distribution",
    "linalg",
    "load_digits",
    "mlp",
    "softmax",
    "split_train_eval",
]
