"""Consensus drivers, chosen by the genesis (not by the market): ``pol``, ``pos``, ``lottery``.

Each driver gives the chain service its :class:`~bazaar.node.chain.hooks.BlockHooks` and may run background work
(the ``pos`` and ``lottery`` proposer loop). A market never proposes blocks itself except through its driver.
"""
