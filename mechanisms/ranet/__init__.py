"""RANet: the learned reverse auction of market ``tbcim``, numpy inference from shipped weights.

See docs/models/tbcim-auction.md.
"""

from .baselines import greedy, random_selection, vcg, winner_sets
from .evaluation import Metrics, evaluate, evaluate_all
from .mechanism import RANet, weights_name
from .myerson import myerson_expected_utility, myerson_outcome
from .nets import HEADS, Mlp, allocation_head, ir_payment
from .registry import SETTING_NAMES, get_setting
from .regret import grid_regret
from .settings import Setting, SingleUniform

__all__ = [
    "HEADS",
    "SETTING_NAMES",
    "Metrics",
    "Mlp",
    "RANet",
    "Setting",
    "SingleUniform",
    "allocation_head",
    "evaluate",
    "evaluate_all",
    "get_setting",
    "greedy",
    "grid_regret",
    "ir_payment",
    "myerson_expected_utility",
    "myerson_outcome",
    "random_selection",
    "vcg",
    "weights_name",
    "winner_sets",
]
