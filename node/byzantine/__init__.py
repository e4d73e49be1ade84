"""Byzantine behaviours a node can be started with (testnets; docs/byzantine.md)."""

from .install import install
from .proposer import Withheld, propose
from .registry import (
    BEHAVIOURS,
    EQUIVOCATE,
    FALSE_CLAIM,
    LYING_ORACLE,
    MALFORMED_FRAMES,
    NETWORK_BEHAVIOURS,
    OVERSIZE_FRAMES,
    POISON_UPDATE,
    PROPOSER_BEHAVIOURS,
    REPLAY_FLOOD,
    WITHHOLD_BLOCK,
    Behaviour,
    applicable,
    check_behaviours,
    declare,
)

__all__ = [
    "BEHAVIOURS", "EQUIVOCATE", "FALSE_CLAIM", "LYING_ORACLE", "MALFORMED_FRAMES", "NETWORK_BEHAVIOURS",
    "OVERSIZE_FRAMES", "POISON_UPDATE", "PROPOSER_BEHAVIOURS", "REPLAY_FLOOD", "WITHHOLD_BLOCK", "Behaviour",
    "Withheld", "applicable", "check_behaviours", "declare", "install", "propose",
]
