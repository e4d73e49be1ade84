"""Market ``hierarchical`` (seed 002): two-level combinatorial auction CCSP → MESPs → miners (SPEC §8)."""

from .exact import brute_force_allocate, exact_clear, milp_allocate, vcg_payments
from .greedy import critical_bid_bisection, critical_bids, greedy_allocate, greedy_clear
from .hierarchy import solve_hierarchical
from .instance import (
    HierarchicalInstance,
    hierarchical_welfare,
    make_instance,
    reach_from_home,
    utilization,
)
from .joint import JointSolution, joint_brute_force, joint_milp, joint_vcg
from .knapsack import dp_allocate, dp_clear
from .levels import (
    LOWER_METHODS,
    UPPER_METHODS,
    BundleBids,
    LowerOutcome,
    UpperOutcome,
    bundle_bids,
    clear_lower,
    clear_upper,
    upper_market,
)
from .market import NO_TRADE, Allocation, Market, make_market
from .outcome import Outcome

__all__ = [
    "LOWER_METHODS",
    "NO_TRADE",
    "UPPER_METHODS",
    "Allocation",
    "BundleBids",
    "HierarchicalInstance",
    "JointSolution",
    "LowerOutcome",
    "Market",
    "Outcome",
    "UpperOutcome",
    "brute_force_allocate",
    "bundle_bids",
    "clear_lower",
    "clear_upper",
    "critical_bid_bisection",
    "critical_bids",
    "dp_allocate",
    "dp_clear",
    "exact_clear",
    "greedy_allocate",
    "greedy_clear",
    "hierarchical_welfare",
    "joint_brute_force",
    "joint_milp",
    "joint_vcg",
    "make_instance",
    "make_market",
    "milp_allocate",
    "reach_from_home",
    "solve_hierarchical",
    "upper_market",
    "utilization",
    "vcg_payments",
]
