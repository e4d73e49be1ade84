"""The shipped single-uniform S = 3 network against the Myerson optimum (targets: docs/models/tbcim-auction.md).

Numpy only.
"""

from __future__ import annotations

import numpy as np

from bazaar.mechanisms.ranet import RANet, evaluate, myerson_expected_utility


def test_shipped_network_is_near_optimal_with_low_regret() -> None:
    net = RANet.load(sellers=3, setting="single-uniform")
    costs, _ = net.setting.sample(np.random.default_rng(2024), 3000, 3)
    m = evaluate(net._forward, net.setting, costs, None, regret_profiles=1000, points=101, refine=21)
    optimum = myerson_expected_utility(3)
    # sampling error of the mean utility on 3000 profiles is about 0.005 (std ~0.3); the 2 % band is 0.0106
    assert abs(m.requester_utility / optimum - 1.0) <= 0.02
    assert m.regret <= 0.005
    assert m.ir_violation == 0.0
