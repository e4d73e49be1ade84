"""Start the behaviours a node runs on its own (flooding and bad frames); the others are read where they act —
the consensus drivers (:mod:`.proposer`) and the market roles (``ctx.byzantine``)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ..logs import Events
from .flood import ReplayFlood
from .frames import send_frames
from .registry import MALFORMED_FRAMES, OVERSIZE_FRAMES, REPLAY_FLOOD

if TYPE_CHECKING:
    from ..runtime import Node

_events = Events("byzantine")


def install(node: Node) -> None:
    """Install the node's behaviours (none for an honest node): taps and background tasks in its nursery."""
    behaviours = node.byzantine
    if not behaviours:
        return
    _events.warning("byzantine.started", name=node.name, behaviours=",".join(sorted(behaviours)))
    if REPLAY_FLOOD in behaviours:
        flood = ReplayFlood(node)
        node.router.taps.append(flood.tap)
        node.spawn("byzantine.replay-flood", flood.run)
    garbage, oversize = MALFORMED_FRAMES in behaviours, OVERSIZE_FRAMES in behaviours
    if garbage or oversize:
        node.spawn("byzantine.frames", functools.partial(send_frames, node, garbage=garbage, oversize=oversize))
