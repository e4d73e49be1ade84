"""Market ``ai-bazaar`` (seed 000): Stackelberg pricing of compute, WoLF-PHC agents, PB-MARL.

See docs/models/ai-bazaar.md.
"""

from .baselines import GigaWolf, MinimaxQ, PgaApp, genetic_maximize, minimax_policy, project_simplex
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
from .marl import (
    LEARNERS,
    Trace,
    discrete_equilibrium_price,
    episodes_to_converge,
    equilibrium_profits,
    one_sided_ga,
    pretrain_wolf,
    reward_scales,
    run_learning,
)
from .params import KEYS, ParameterError, Params, demand_grid, mining_value, price_grid
from .wolf import WolfPHC, demand_bucket

__all__ = [
    "KEYS",
    "LEARNERS",
    "Equilibrium",
    "GigaWolf",
    "MinimaxQ",
    "ParameterError",
    "Params",
    "PgaApp",
    "Trace",
    "WolfPHC",
    "best_response",
    "closed_form_equilibrium",
    "consumer_profit",
    "cpp_profit",
    "demand_bucket",
    "demand_grid",
    "discrete_equilibrium_price",
    "episodes_to_converge",
    "equilibrium_at",
    "equilibrium_profits",
    "find_kinks",
    "follower_equilibrium",
    "genetic_maximize",
    "leader_profit",
    "marginal_cost",
    "max_deviation_gain",
    "minimax_policy",
    "mining_value",
    "one_sided_ga",
    "own_profit",
    "pretrain_wolf",
    "price_grid",
    "project_simplex",
    "reference_follower_equilibrium",
    "reference_stackelberg",
    "reward_scales",
    "run_learning",
    "solve_stackelberg",
]
