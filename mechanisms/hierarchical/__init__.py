"""Market ``hierarchical`` (seed 002): two-level combinatorial auction CCSP → MESPs → miners (SPEC §8)."""

from .baselines import edge_only, fixed_bundles, random_bundles, solve_with_bundles
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
from .lagrangian import LagrangianResult, lagrangian_allocate, lagrangian_clear
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
from .miners import (
    MinerPopulation,
    NetworkEffect,
    NoEffect,
    SShapedEffect,
    block_reward,
    ex_ante_valuation,
    ex_post_valuation,
    hash_share,
    orphan_factor,
    paper_population,
    success_probability,
)
from .multi_ccsp import (
    MULTI_UPPER_METHODS,
    MultiCcspInstance,
    MultiOutcome,
    make_multi_instance,
    multi_joint_milp,
    multi_upper_market,
    solve_multi_ccsp,
)
from .outcome import Outcome

__all__ = [
    "LOWER_METHODS",
    "MULTI_UPPER_METHODS",
    "NO_TRADE",
    "UPPER_METHODS",
    "Allocation",
    "BundleBids",
    "HierarchicalInstance",
    "JointSolution",
    "LagrangianResult",
    "LowerOutcome",
    "Market",
    "MinerPopulation",
    "MultiCcspInstance",
    "MultiOutcome",
    "NetworkEffect",
    "NoEffect",
    "Outcome",
    "SShapedEffect",
    "UpperOutcome",
    "block_reward",
    "brute_force_allocate",
    "bundle_bids",
    "clear_lower",
    "clear_upper",
    "critical_bid_bisection",
    "critical_bids",
    "dp_allocate",
    "dp_clear",
    "edge_only",
    "ex_ante_valuation",
    "ex_post_valuation",
    "exact_clear",
    "fixed_bundles",
    "greedy_allocate",
    "greedy_clear",
    "hash_share",
    "hierarchical_welfare",
    "joint_brute_force",
    "joint_milp",
    "joint_vcg",
    "lagrangian_allocate",
    "lagrangian_clear",
    "make_instance",
    "make_market",
    "make_multi_instance",
    "milp_allocate",
    "multi_joint_milp",
    "multi_upper_market",
    "orphan_factor",
    "paper_population",
    "random_bundles",
    "reach_from_home",
    "solve_hierarchical",
    "solve_multi_ccsp",
    "solve_with_bundles",
    "success_probability",
    "upper_market",
    "utilization",
    "vcg_payments",
]
