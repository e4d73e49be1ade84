"""TBCIM economics: EMD, client selection, quality, data utility, costs, the ES-ED Stackelberg game."""

from . import constants, costs, quality, selection
from .constants import TbcimConstants
from .costs import blockchain_cost, comm_cost, compute_cost, data_cost
from .quality import alpha, data_utility, emd, set_quality
from .selection import select_clients

__all__ = [
    "TbcimConstants",
    "alpha",
    "blockchain_cost",
    "comm_cost",
    "compute_cost",
    "constants",
    "costs",
    "data_cost",
    "data_utility",
    "emd",
    "quality",
    "select_clients",
    "selection",
    "set_quality",
]
