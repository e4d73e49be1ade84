"""Block checks a node adds to the pure state transition (a consensus driver's or a market contract's).

``check(parent_state, block)`` raises :class:`~.errors.InvalidBlock` to refuse the block. The ledger knows no
market: a PoL driver's model re-evaluation and a market's settlement contract are both just checks.
"""

from __future__ import annotations

from collections.abc import Callable

from .block import Block
from .state import State

BlockCheck = Callable[[State, Block], None]
"""``check(parent_state, block)``; raise ``InvalidBlock`` to refuse."""
