"""The offline audit of ai-bazaar rounds (``bazaar chain audit``, docs/adr/0097): a lease record of an
equilibrium round re-derived with the market's own solver.

For a lease the CPP recorded in ``equilibrium`` mode whose demands cover every consumer of the address book (the
round's participants are then known from the chain alone), the audit re-solves the Stackelberg game of the
recorded parameter set: the recorded price must be the solver's ``p*``, each recorded demand the followers'
equilibrium demand at that price, and each escrow lock of the round in the block must lock ``price × demand``
for the CPP. A round in ``learning`` mode (the price is the CPP's agent's action) or with consumers left out (the
participants are not on chain) is not re-derived.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from bazaar.ledger.amounts import to_units
from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.state import State
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.ai_bazaar import Params, follower_equilibrium, solve_stackelberg
from bazaar.protocol import ProtocolError

from ...config import PeerEntry
from .common import FOLLOWER, LEADER, escrow_id
from .config import MarketConfig

RTOL = 1e-9
"""The solver is deterministic: a recorded figure differs from the re-derived one only by float noise."""


@functools.lru_cache(maxsize=8)
def _equilibrium(params: Params) -> tuple[float, tuple[float, ...]]:
    """``p*`` and the followers' demands there (parameter sets hash by identity: one solve per set per audit)."""
    price = float(solve_stackelberg(params).price)
    return price, tuple(float(f) for f in follower_equilibrium(params, price))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=RTOL)


def audit_block(cfg: MarketConfig, peers: Sequence[PeerEntry], network_id: str, parent: State, block: Block) -> None:
    """Re-derive every equilibrium lease recorded in ``block`` (module docstring).

    Raises:
        InvalidBlock: ``market-contract``, naming the round and what differs.
    """
    cpp = next((p.key for p in peers if p.role == LEADER), None)
    consumers = [p.key for p in peers if p.role == FOLLOWER]
    txs = []
    for raw in block.txs:
        try:
            txs.append(decode_tx(raw, network_id))
        except ProtocolError:
            return  # the ledger refuses the block itself
    locks = {t.body["id"]: t for t in txs if t.type == "tx/escrow_lock"}
    for lease in txs:
        if lease.type != "tx/record" or lease.sender != cpp or lease.body["kind"] != "lease":
            continue
        data = lease.body["data"]
        if data.get("mode") != "equilibrium" or data.get("params") not in cfg.param_sets:
            continue
        demands = {bytes.fromhex(k): float(f) for k, f in data["demands"].items()}
        if set(demands) != set(consumers):
            continue  # consumers were left out: the participant set is not on chain
        params = cfg.param_sets[data["params"]]
        price = float(data["price"])
        p_star, at_p_star = _equilibrium(params)
        if not _close(price, p_star):
            raise InvalidBlock("market-contract", f"round {lease.round}: recorded price {price} is not the "
                                                  f"Stackelberg price {p_star}")
        expected = at_p_star  # the recorded price is p*: the demands are the followers' equilibrium there
        for i, key in enumerate(consumers):
            if not _close(demands[key], float(expected[i])):
                raise InvalidBlock("market-contract", f"round {lease.round}: consumer {key.hex()[:12]} demand "
                                                      f"{demands[key]} is not its equilibrium demand {expected[i]}")
            lock = locks.get(escrow_id(lease.round, key))
            if lock is not None and (lock.sender != key or lock.body["payee"] != cpp
                                     or lock.body["amount"] != to_units(price * demands[key])):
                raise InvalidBlock("market-contract", f"round {lease.round}: consumer {key.hex()[:12]} escrow lock "
                                                      f"is not price x demand for the CPP")
