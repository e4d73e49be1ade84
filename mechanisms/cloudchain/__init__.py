"""CloudChain (seed 004, docs/models/cloudchain.md): compute providers, requesters' workloads with SLAs, the
allocation contract and its exact MILP reference, fairness and payoffs, the providers' pricing rule, private
gradients with a privacy accountant, and the numpy jobs providers run and oracles spot-check.

Pure numpy/scipy; imports nothing of Bazaar outside ``mechanisms``.
"""
