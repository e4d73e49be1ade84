"""Instances with the paper's values (Section 6) for the experiments and the benchmark.

CCSP 10000 MIPS, two MESPs owning 3000 each (4000 spare), miners with ``d_i, s_i ∈ U{100..1000}``,
``R ∈ [0, 6]``, ``r ∈ [0.002, 0.01]``, ``λ = 1/600``, ``z = 0.1`` s per transaction (the paper's value was lost).
Bids are the ex-ante valuations. The paper gives no MESP asks; we set MESP ``j``'s per-unit ask to
``ask_factors[j]`` times the median per-unit bid, so that the least valuable miners are not worth serving.
"""

from __future__ import annotations

import numpy as np

from .instance import HierarchicalInstance, make_instance
from .miners import MinerPopulation, ex_ante_valuation, paper_population
from .multi_ccsp import MultiCcspInstance, make_multi_instance

PAPER_CCSP_CAPACITY = 10000.0
PAPER_MESP_CAPACITY = (3000.0, 3000.0)
PAPER_ASK_FACTORS = (0.3, 0.5)


def paper_instance(
    n_miners: int,
    rng: np.random.Generator,
    bundle_step: float = 100.0,
    ask_factors: tuple[float, ...] = PAPER_ASK_FACTORS,
    mesp_capacity: tuple[float, ...] = PAPER_MESP_CAPACITY,
    ccsp_capacity: float = PAPER_CCSP_CAPACITY,
) -> tuple[HierarchicalInstance, MinerPopulation]:
    """A single-CCSP round with the paper's values and the miner population behind its bids."""
    pop = paper_population(n_miners, rng)
    v = ex_ante_valuation(pop)
    unit = float(np.median(v / pop.demand))
    asks = np.array(ask_factors, float) * unit
    inst = make_instance(pop.demand, v, list(mesp_capacity), asks, ccsp_capacity, bundle_step)
    return inst, pop


def multi_ccsp_instance(
    n_miners: int,
    rng: np.random.Generator,
    n_ccsps: int = 3,
    n_mesps: int = 3,
    mesp_capacity: float = 2000.0,
    ccsp_capacity: tuple[float, float] = (1000.0, 2500.0),
    bundle_step: float = 250.0,
) -> tuple[MultiCcspInstance, MinerPopulation]:
    """A multi-CCSP round: paper-style miners, ``n_mesps`` MESPs, ``n_ccsps`` CCSPs with random capacity and asks.

    MESP asks are 0.2–0.5 and CCSP asks 0.05–0.3 times the median per-unit bid.
    """
    pop = paper_population(n_miners, rng)
    v = ex_ante_valuation(pop)
    unit = float(np.median(v / pop.demand))
    inst = make_multi_instance(pop.demand, v, np.full(n_mesps, mesp_capacity),
                               rng.uniform(0.2, 0.5, n_mesps) * unit,
                               np.round(rng.uniform(*ccsp_capacity, n_ccsps) / bundle_step) * bundle_step,
                               rng.uniform(0.05, 0.3, n_ccsps) * unit, bundle_step)
    return inst, pop
