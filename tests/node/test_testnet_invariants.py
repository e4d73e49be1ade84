"""The testnet invariants as pure functions of what a run collected (docs/testnets.md)."""

from __future__ import annotations

from types import SimpleNamespace

from bazaar.ledger.state import Escrow
from bazaar.node.testnet import invariants as inv

KEY = bytes(range(32))


def _state(height: int, escrows: dict[bytes, Escrow] | None = None, slashed: dict[bytes, int] | None = None,
           ) -> SimpleNamespace:
    return SimpleNamespace(height=height, escrows=escrows or {}, slashed=slashed or {}, evidence=frozenset())


def test_same_finalized_head_and_no_fork() -> None:
    same = {"a": {"finalized": 4, "finalized_hash": "ab"}, "b": {"finalized": 4, "finalized_hash": "ab"}}
    assert inv.same_finalized_head(inv.Evidence(statuses=same))[0]
    behind = {**same, "c": {"finalized": 3, "finalized_hash": "cd"}}
    held, why = inv.same_finalized_head(inv.Evidence(statuses=behind))
    assert not held and any(w.startswith("c:") for w in why)
    assert not inv.same_finalized_head(inv.Evidence())[0]  # nobody answered: nothing holds
    assert inv.no_fork({"a": ["h1", "h2", "h3"], "b": ["h1", "h2"]})[0]  # a prefix is no fork
    held, why = inv.no_fork({"a": ["h1", "h2"], "b": ["h1", "x2"]})
    assert not held and "height 2" in why[0]


def test_an_escrow_past_its_expiry_is_tokens_lost() -> None:
    live = Escrow(payer=KEY, payee=KEY, amount=70, expires=12)
    stale = Escrow(payer=KEY, payee=KEY, amount=500, expires=9)
    held, why, lost = inv.escrows_closed(inv.Evidence(final_state=_state(10, {b"a" * 32: live})))
    assert held and lost == 0
    held, why, lost = inv.escrows_closed(inv.Evidence(final_state=_state(10, {b"a" * 32: live, b"b" * 32: stale})))
    assert not held and lost == 500 and "expired at height 9" in why[0]


def test_every_byzantine_act_needs_evidence_and_an_equivocation_a_slashing() -> None:
    keys = {"byz": KEY.hex()}
    reject = f"12:00:00.000 W cpp msg.rejected reason=replay detail= sender={KEY.hex()[:16]}"
    caught = inv.Evidence(byzantine={"byz": ("replay-flood",)}, keys=keys, logs={"cpp": reject},
                          final_state=_state(3))
    assert inv.byzantine_evidence(caught)[0]
    silent = inv.Evidence(byzantine={"byz": ("replay-flood",)}, keys=keys, logs={"cpp": "12:00 I cpp block.final"},
                          final_state=_state(3))
    held, why = inv.byzantine_evidence(silent)
    assert not held and "byz (replay-flood)" in why[0]
    unslashed = inv.Evidence(byzantine={"byz": ("equivocate",)}, keys=keys, logs={"cpp": reject},
                             final_state=_state(3))
    held, why = inv.byzantine_evidence(unslashed)
    assert not held and why == ["byz (equivocate): not slashed"]
    slashed = inv.Evidence(byzantine={"byz": ("equivocate",)}, keys=keys, logs={},
                           final_state=_state(3, slashed={KEY: 2}))
    assert inv.byzantine_evidence(slashed)[0]


def test_crashes_and_resyncs() -> None:
    assert inv.no_honest_crash(inv.Evidence())[0]
    assert not inv.no_honest_crash(inv.Evidence(crashed=["consumer-1"]))[0]
    assert inv.restarts_resync(inv.Evidence(resync=[("a", 3.2)]))[0]
    assert not inv.restarts_resync(inv.Evidence(resync=[("a", 3.2), ("b", None)]))[0]


def test_a_proposer_behaviour_that_never_acted_is_unexercised_and_a_status_counter_is_evidence() -> None:
    keys = {"byz": KEY.hex()}
    never_drawn = inv.Evidence(byzantine={"byz": ("equivocate",)}, keys=keys, logs={"cpp": ""},
                               byzantine_logs={"byz": "12:00 I byz block.imported height=3"}, final_state=_state(3))
    held, why = inv.byzantine_evidence(never_drawn)
    assert held and why == [] and never_drawn.unexercised == ["byz (equivocate)"]
    drawn = inv.Evidence(byzantine={"byz": ("equivocate",)}, keys=keys, logs={"cpp": ""},
                         byzantine_logs={"byz": "12:00 W byz byzantine.equivocated height=3"}, final_state=_state(3))
    held, why = inv.byzantine_evidence(drawn)
    assert not held and drawn.unexercised == [] and "not slashed" in why[-1]
    # a replayed gossip payload refused by the pubsub validator leaves no log line, only a transport counter
    flood = {"byzantine": {"byz": ("replay-flood",)}, "keys": keys, "logs": {"cpp": ""},
             "byzantine_logs": {"byz": "12:00 W byz byzantine.replayed frames=300"}, "final_state": _state(3)}
    assert not inv.byzantine_evidence(inv.Evidence(**flood))[0]
    counted = inv.Evidence(**flood, statuses={"cpp": {"transport": {"gossip_replayed": 41}, "rejected": {}}})
    assert inv.byzantine_evidence(counted)[0]
