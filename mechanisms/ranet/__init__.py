"""RANet: the learned reverse auction of market ``tbcim`` and its truthful-by-construction monotone variant,
numpy inference from shipped weights.

See docs/models/tbcim-auction.md.
"""

from .baselines import greedy, random_selection, vcg, winner_sets
from .evaluation import Metrics, evaluate, evaluate_all
from .mechanism import VARIANTS, RANet, weights_name
from .monotone import MonotoneRANet, Transform, monotone_weights_name
from .myerson import myerson_expected_utility, myerson_outcome
from .nets import HEADS, Mlp, allocation_head, ir_payment
from .registry import SETTING_NAMES, get_setting
from .regret import gradient_regret, grid_regret, refined_regret
from .settings import Setting, SingleUniform

__all__ = [
    "HEADS",
    "SETTING_NAMES",
    "VARIANTS",
    "Metrics",
    "Mlp",
    "MonotoneRANet",
    "RANet",
    "Setting",
    "SingleUniform",
    "Transform",
    "allocation_head",
    "evaluate",
    "evaluate_all",
    "get_setting",
    "gradient_regret",
    "greedy",
    "grid_regret",
    "ir_payment",
    "monotone_weights_name",
    "myerson_expected_utility",
    "myerson_outcome",
    "random_selection",
    "refined_regret",
    "vcg",
    "weights_name",
    "winner_sets",
]
