"""Block hooks: how consensus drivers and market roles plug into block import (a list, so they compose).

``prepare(block)`` (async; e.g. fetch and re-evaluate a PoL winner's model) returns a synchronous ledger
check, ``check(parent_state, block)`` is a market contract re-executed on import, ``may_attest(block)`` says
whether this validator endorses a block it could import, ``imported(block)`` observes every new head,
``propose(parent_state, txs)`` lists the market contract's own transactions for a block this node proposes that
carries ``txs`` (decoded, in block order) before them, ``admit(state, env)`` refuses (``ProtocolError``) a
transaction the market's rules do not let the head take, and ``complete(state)`` says whether the mempool holds
the whole batch the market's next block waits for (True: a proposer seals; False: it holds on; None: no batch is
awaited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bazaar.ledger.block import Block
from bazaar.ledger.checks import BlockCheck
from bazaar.ledger.state import State
from bazaar.protocol import Envelope


@dataclass
class BlockHooks:
    """One participant's block hooks (a consensus driver's, or a market role's)."""

    prepare: Callable[[Block], Awaitable[BlockCheck | None]] | None = None
    check: BlockCheck | None = None
    may_attest: Callable[[Block], bool] | None = None
    imported: Callable[[Block], None] | None = None
    propose: Callable[[State, Sequence[Envelope]], list[tuple[str, dict[str, Any]]]] | None = None
    admit: Callable[[State, Envelope], None] | None = None
    complete: Callable[[State], bool | None] | None = None


def batch_verdict(said: Iterable[bool | None]) -> bool | None:
    """Several ``complete`` answers folded into one: True as soon as one says its batch is complete, else False if
    one says its batch is still incomplete, else None (docs/adr/0185, 0187)."""
    verdict: bool | None = None
    for one in said:
        if one:
            return True
        if one is False:
            verdict = False
    return verdict
