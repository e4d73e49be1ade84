"""Market ``ai-bazaar`` (seed 000, SPEC §6): Stackelberg pricing of compute, WoLF-PHC agents, PB-MARL."""

from .followers import (
    best_response,
    closed_form_equilibrium,
    consumer_profit,
    cpp_profit,
    follower_equilibrium,
    marginal_cost,
    max_deviation_gain,
    own_profit,
    reference_follower_equilibrium,
)
from .leader import (
    Equilibrium,
    equilibrium_at,
    find_kinks,
    leader_profit,
    reference_stackelberg,
    solve_stackelberg,
)
from .params import KEYS, ParameterError, Params, demand_grid, mining_value, price_grid
from .wolf import WolfPHC, demand_bucket

__all__ = [
    "KEYS",
    "Equilibrium",
    "ParameterError",
    "Params",
    "WolfPHC",
    "best_response",
    "closed_form_equilibrium",
    "consumer_profit",
    "cpp_profit",
    "demand_bucket",
    "demand_grid",
    "equilibrium_at",
    "find_kinks",
    "follower_equilibrium",
    "leader_profit",
    "marginal_cost",
    "max_deviation_gain",
    "mining_value",
    "own_profit",
    "price_grid",
    "reference_follower_equilibrium",
    "reference_stackelberg",
    "solve_stackelberg",
]
