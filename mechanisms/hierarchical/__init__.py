"""Market ``hierarchical`` (seed 002): two-level combinatorial auction CCSP → MESPs → miners.

See docs/models/hierarchical.md.
"""

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
    clear_lower_on,
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
    clear_multi_upper,
    make_multi_instance,
    multi_joint_milp,
    multi_upper_market,
    solve_multi_ccsp,
)
from .network import (
    DECOMPOSABLE,
    clear_multi_upper_from_rows,
    clear_upper_from_rows,
    decomposable,
    lottery_weights,
    mesp_bundle_bids,
    multi_mesp_bundle_bids,
)
from .outcome import Outcome

__all__ = [
    "DECOMPOSABLE",
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
    "clear_lower_on",
    "clear_multi_upper",
    "clear_multi_upper_from_rows",
    "clear_upper",
    "clear_upper_from_rows",
    "critical_bid_bisection",
    "critical_bids",
    "decomposable",
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
    "lottery_weights",
    "make_instance",
    "make_market",
    "make_multi_instance",
    "mesp_bundle_bids",
    "milp_allocate",
    "multi_joint_milp",
    "multi_mesp_bundle_bids",
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
