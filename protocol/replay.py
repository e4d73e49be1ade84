"""Replay and clock-skew protection for received envelopes (docs/protocol.md).

Per sender the guard keeps the highest ``seq`` seen and a sliding bitmap of the ``window`` sequence numbers
below it (the IPsec/DTLS anti-replay window, RFC 4303 §3.4.3), so messages may arrive out of order (gossip
does that) but each ``(sender, seq)`` is accepted once. Sequence numbers further than ``window`` below the
highest are refused as too old.

Memory is bounded: at most ``max_senders`` senders are tracked, least recently seen evicted first. Evicting a
sender must not reopen a replay hole, so the guard remembers the largest timestamp of any evicted sender
(``eviction_floor``); a sender it does not know is only accepted with a timestamp above that floor. Since
the skew check already refuses timestamps older than ``max_skew_ms``, this costs a legitimate sender nothing
unless the guard evicts senders faster than the skew window turns over (then it refuses, never accepts twice).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .envelope import Envelope
from .errors import ReplayError, StaleError


@dataclass
class _SenderState:
    highest: int
    bitmap: int  # bit i set <=> seq (highest - i) was seen
    max_ts: int


class ReplayGuard:
    """Accept each ``(sender, seq)`` once, within a clock-skew bound.

    Args:
        max_skew_ms: largest accepted ``|env.ts - now_ms|``.
        window: how far below the highest seen ``seq`` an out-of-order message may arrive.
        max_senders: senders tracked at once (LRU).
    """

    def __init__(self, max_skew_ms: int = 30_000, window: int = 4096, max_senders: int = 100_000) -> None:
        if max_skew_ms < 0 or window < 1 or max_senders < 1:
            raise ValueError("max_skew_ms >= 0, window >= 1 and max_senders >= 1 required")
        self.max_skew_ms = max_skew_ms
        self.window = window
        self.max_senders = max_senders
        self.eviction_floor = -1
        self._mask = (1 << window) - 1
        self._senders: OrderedDict[bytes, _SenderState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._senders)

    def check(self, env: Envelope, now_ms: int) -> None:
        """Accept ``env`` (and remember it) or raise.

        Args:
            env: an opened (signature-verified) envelope.
            now_ms: the receiver's wall clock in milliseconds.

        Raises:
            StaleError: ``env.ts`` is more than ``max_skew_ms`` away from ``now_ms``.
            ReplayError: this ``(sender, seq)`` was accepted before, is older than the window, or comes from
                an evicted sender with a timestamp not newer than the eviction floor.
        """
        skew = env.ts - now_ms
        if abs(skew) > self.max_skew_ms:
            raise StaleError(f"timestamp {skew:+d} ms from our clock (max {self.max_skew_ms})")
        state = self._senders.get(env.sender)
        seq = env.seq
        if state is None:
            if env.ts <= self.eviction_floor:
                raise ReplayError("sender state was evicted and the timestamp is not newer than the floor")
            self._senders[env.sender] = _SenderState(highest=seq, bitmap=1, max_ts=env.ts)
            if len(self._senders) > self.max_senders:
                _, evicted = self._senders.popitem(last=False)
                self.eviction_floor = max(self.eviction_floor, evicted.max_ts)
            return
        if seq > state.highest:
            shift = seq - state.highest
            state.bitmap = ((state.bitmap << shift) | 1) & self._mask if shift < self.window else 1
            state.highest = seq
        else:
            offset = state.highest - seq
            if offset >= self.window:
                raise ReplayError(f"seq {seq} is more than {self.window} below the highest {state.highest}")
            bit = 1 << offset
            if state.bitmap & bit:
                raise ReplayError(f"seq {seq} already seen")
            state.bitmap |= bit
        state.max_ts = max(state.max_ts, env.ts)
        self._senders.move_to_end(env.sender)

    def highest_seq(self, sender: bytes) -> int | None:
        """The highest ``seq`` accepted from ``sender``, or ``None`` if not tracked (gap detection)."""
        state = self._senders.get(sender)
        return None if state is None else state.highest
