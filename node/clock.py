"""The node's wall clock: every timestamp a node takes goes through its :class:`Clock` (docs/testnets.md).

A testnet's ``clock-skew`` perturbation sets ``skew_ms`` (at start from ``node.toml``'s ``clock_skew_ms``, later by
the control route ``POST /clock``): the node then stamps its envelopes and the blocks it proposes, and judges the
age of what it receives, by a clock that is off by that much — as a machine with a drifting clock would.
"""

from __future__ import annotations

from dataclasses import dataclass

from bazaar.protocol.envelope import now_ms as _system_ms


@dataclass
class Clock:
    """Wall-clock milliseconds, offset by ``skew_ms`` (0 for an honest clock)."""

    skew_ms: int = 0

    def now_ms(self) -> int:
        """The node's idea of the current time, in Unix milliseconds."""
        return _system_ms() + self.skew_ms
