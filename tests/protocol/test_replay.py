"""Replay guard: each (sender, seq) once, bounded window, clock skew, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bazaar.protocol.envelope import Envelope, seal
from bazaar.protocol.errors import ReplayError, StaleError
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.replay import ReplayGuard

KEYS = [KeyPair.from_label(f"replay-{i}") for i in range(4)]
NOW = 1_700_000_000_000


def env(seq: int, key: int = 0, ts: int = NOW) -> Envelope:
    return seal(KEYS[key], "n", "a/b", {}, seq=seq, ts=ts)


def test_in_order_then_duplicate() -> None:
    guard = ReplayGuard()
    for seq in range(5):
        guard.check(env(seq), NOW)
    with pytest.raises(ReplayError, match="already seen"):
        guard.check(env(3), NOW)
    assert guard.highest_seq(KEYS[0].public) == 4
    assert guard.highest_seq(KEYS[1].public) is None


def test_out_of_order_within_the_window() -> None:
    guard = ReplayGuard(window=8)
    for seq in (10, 4, 7, 3, 11, 5):
        guard.check(env(seq), NOW)
    for seq in (4, 10, 11):
        with pytest.raises(ReplayError):
            guard.check(env(seq), NOW)
    with pytest.raises(ReplayError, match="more than 8 below"):
        guard.check(env(3), NOW)  # 11 - 3 = 8 is outside the window now


def test_jump_beyond_the_window_resets_the_bitmap() -> None:
    guard = ReplayGuard(window=4)
    guard.check(env(1), NOW)
    guard.check(env(100), NOW)
    guard.check(env(99), NOW)
    with pytest.raises(ReplayError):
        guard.check(env(1), NOW)


def test_senders_are_independent() -> None:
    guard = ReplayGuard()
    guard.check(env(0, key=0), NOW)
    guard.check(env(0, key=1), NOW)
    assert len(guard) == 2


@pytest.mark.parametrize("offset", [30_001, -30_001, 10**9])
def test_clock_skew_is_stale(offset: int) -> None:
    guard = ReplayGuard(max_skew_ms=30_000)
    with pytest.raises(StaleError) as info:
        guard.check(env(0, ts=NOW + offset), NOW)
    assert info.value.reason == "stale"
    guard.check(env(0, ts=NOW + 30_000), NOW)  # the bound itself is accepted; stale did not record


def test_eviction_never_reopens_a_replay() -> None:
    guard = ReplayGuard(max_senders=2)
    old = env(0, key=0, ts=NOW - 10)
    guard.check(old, NOW)
    guard.check(env(0, key=1, ts=NOW - 5), NOW)
    guard.check(env(0, key=2, ts=NOW), NOW)  # evicts key 0
    assert len(guard) == 2 and guard.highest_seq(KEYS[0].public) is None
    with pytest.raises(ReplayError, match="evicted"):
        guard.check(old, NOW)
    guard.check(env(1, key=0, ts=NOW + 1), NOW)  # a newer message from the evicted sender is fine


def test_lru_keeps_active_senders() -> None:
    guard = ReplayGuard(max_senders=2)
    guard.check(env(0, key=0), NOW)
    guard.check(env(0, key=1), NOW)
    guard.check(env(1, key=0), NOW)  # key 0 is now the most recent
    guard.check(env(0, key=2, ts=NOW + 1), NOW)  # evicts key 1
    assert guard.highest_seq(KEYS[0].public) == 1
    assert guard.highest_seq(KEYS[1].public) is None


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ReplayGuard(window=0)


class ReferenceGuard:
    """Obviously correct model: every accepted seq kept forever."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: set[int] = set()

    def accepts(self, seq: int) -> bool:
        highest = max(self.seen, default=None)
        if seq in self.seen or (highest is not None and seq <= highest - self.window):
            return False
        self.seen.add(seq)
        return True


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=16), st.lists(st.integers(min_value=0, max_value=60), max_size=80))
def test_matches_the_reference_model(window: int, seqs: list[int]) -> None:
    guard, reference = ReplayGuard(window=window), ReferenceGuard(window)
    envelopes = {s: env(s) for s in set(seqs)}
    for seq in seqs:
        try:
            guard.check(envelopes[seq], NOW)
            accepted = True
        except ReplayError:
            accepted = False
        assert accepted == reference.accepts(seq), seq
