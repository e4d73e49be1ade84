"""``equivocate`` and ``withhold-block``: how a Byzantine node proposes once it may.

Both consensus drivers call :func:`propose` where an honest node calls ``ChainService.propose``:

* ``withhold-block`` — the node won the right to propose and publishes nothing (:class:`Withheld`, reason
  ``withheld``). Under ``pos`` and ``lottery`` the honest nodes' next draw proposes after ``block_s``
  (``draw.silent_proposer``); under ``pol`` the PoL next-best fallback answers it (the next verified claim
  proposes after a timeout).
* ``equivocate`` — the node proposes as usual and then gossips a second block it signed at the same height (the
  same parent and transactions, another timestamp). An honest node that holds the first block detects the two
  headers (``ledger.chain.Chain.import_block``), submits ``tx/evidence``, and the block that carries it burns
  ``slash_fraction`` of the proposer's stake and bars it from proposing and attesting (docs/ledger.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bazaar.ledger.block import Block
from bazaar.ledger.errors import InvalidBlock
from bazaar.protocol.chainmsg import MSG_BLOCK

from ..logs import Events
from ..reasons import NodeReason
from .registry import EQUIVOCATE, WITHHOLD_BLOCK

if TYPE_CHECKING:
    from ..consensus.base import DriverHost

_events = Events("byzantine")


class Withheld(InvalidBlock):
    """A ``withhold-block`` node keeps the block it may propose to itself."""

    reason = NodeReason.WITHHELD


async def propose(node: DriverHost, consensus: dict[str, Any], *, timestamp_ms: int) -> Block:
    """Propose the next block as the node's behaviours bend it (honestly when it has none).

    Raises:
        Withheld: a ``withhold-block`` node (nothing is built, stored or sent).
        InvalidBlock: as :meth:`~bazaar.node.chain.service.ChainService.propose`.
    """
    chain = node.chain
    if WITHHOLD_BLOCK in node.byzantine:
        _events.warning("byzantine.withheld", height=chain.height + 1, rule=consensus.get("rule"))
        raise Withheld(NodeReason.WITHHELD, f"withholding block {chain.height + 1}")
    if EQUIVOCATE not in node.byzantine:
        return await chain.propose(consensus, timestamp_ms=timestamp_ms)
    twin = chain.dry_run(consensus, timestamp_ms=timestamp_ms + 1)  # same parent, another timestamp: another hash
    block = await chain.propose(consensus, timestamp_ms=timestamp_ms)
    if twin.height == block.height and twin.hash != block.hash:
        await chain.publish(MSG_BLOCK, {"block": twin.encode()})
        _events.warning("byzantine.equivocated", height=block.height, first=block.hash, second=twin.hash)
    return block
