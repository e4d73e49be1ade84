"""The invariants a testnet checks at the end (docs/testnets.md), each a pure function of what the run collected:
the live nodes' last status and the stopped nodes' data directories.

Each check returns ``(held, problems)``: ``problems`` are one-line explanations (empty when it held).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.ledger.block import Block
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.store import CHAIN_DB, SqliteStore

SLASHING = frozenset({"equivocate"})
"""Behaviours whose evidence must end in a slashing (an equivocation is provable on chain); the others must
leave evidence on the ledger or a coded reject in an honest node's log."""

REJECT_EVENTS = ("msg.rejected", "rejected", "refused", "invalid")
"""Words of a log line that records a refusal (node/logs.py events: ``msg.rejected reason=...``, block and
transaction refusals)."""

Check = tuple[bool, list[str]]


@dataclass
class Evidence:
    """What the run collected for the checks.

    Attributes:
        statuses: ``GET /status`` of every running honest node at the end (after the settle wait).
        audits: node -> ``bazaar chain audit`` report of its data directory (honest nodes).
        crashed: honest nodes that died without being killed by the schedule.
        keys: node -> account key (hex).
        byzantine: node -> behaviours.
        final_state: the state at the head of the reference node's chain (the honest node furthest ahead).
        logs: node -> its log text (honest nodes).
        byzantine_logs: node -> its log text (the Byzantine nodes: did the behaviour act at all?).
        unexercised: ``node (behaviour)`` of proposer behaviours that never acted (filled by the check).
        resync: restarts as ``(node, seconds or None)``.
    """

    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    byzantine: dict[str, tuple[str, ...]] = field(default_factory=dict)
    final_state: Any = None
    logs: dict[str, str] = field(default_factory=dict)
    byzantine_logs: dict[str, str] = field(default_factory=dict)
    unexercised: list[str] = field(default_factory=list)
    resync: list[tuple[str, float | None]] = field(default_factory=list)
    data_dirs: dict[str, Path] = field(default_factory=dict)


def same_finalized_head(ev: Evidence) -> Check:
    """Every live honest node reports the same finalized height and hash."""
    heads = {n: (s.get("finalized"), s.get("finalized_hash")) for n, s in ev.statuses.items()}
    if not heads:
        return False, ["no live honest node answered"]
    if len(set(heads.values())) == 1:
        return True, []
    return False, [f"{n}: finalized {h} {str(x)[:16]}" for n, (h, x) in sorted(heads.items())]


def finalized_hashes(data_dir: Path, genesis: Genesis) -> list[str]:
    """Hashes of the blocks a node's database holds as final (height order)."""
    store = SqliteStore(data_dir / CHAIN_DB)
    try:
        out = []
        for row in store.iter_blocks(1):
            if store.get_certificate(row.height) is None:
                break
            out.append(Block.decode(row.raw, genesis.network_id).hash.hex())
        return out
    finally:
        store.close()


def no_fork(chains: Mapping[str, Sequence[str]]) -> Check:
    """Every two honest nodes' finalized chains agree at every height both hold (safety)."""
    problems = []
    names = sorted(chains)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for h, (x, y) in enumerate(zip(chains[a], chains[b], strict=False), start=1):
                if x != y:
                    problems.append(f"{a} and {b} finalized different blocks at height {h}")
                    break
    return not problems, problems


def tokens_conserved(ev: Evidence) -> Check:
    """Tokens conserved after every block of every honest node's chain (re-applied from genesis)."""
    bad = [f"{n}: {a['error']}" for n, a in sorted(ev.audits.items()) if not a["conserved"]]
    missing = [f"{n}: not audited" for n in ev.data_dirs if n not in ev.audits]
    return not bad and not missing, bad + missing


def trades_reverify(ev: Evidence) -> Check:
    """Every honest node whose role re-executes its market's contract accepts every stored block again."""
    bad = [f"{n}: {a['error']}" for n, a in sorted(ev.audits.items()) if a["conserved"] and not a["ok"]]
    return not bad, bad


def no_honest_crash(ev: Evidence) -> Check:
    """No honest node died unless the schedule killed it."""
    return not ev.crashed, [f"{n} is down and was not killed by the schedule" for n in ev.crashed]


def escrows_closed(ev: Evidence) -> tuple[bool, list[str], int]:
    """No escrow is still locked past its expiry at the reference node's head; returns the tokens stranded."""
    state = ev.final_state
    if state is None:
        return False, ["no honest chain to read"], 0
    stranded = [(eid, e) for eid, e in sorted(state.escrows.items()) if e.expires < state.height]
    lost = sum(e.amount for _, e in stranded)
    return not stranded, [f"escrow {eid.hex()[:16]} of {e.amount} µ expired at height {e.expires}, still locked at "
                          f"{state.height}" for eid, e in stranded], lost


def _rejects_of(key_hex: str, logs: Iterable[str]) -> int:
    prefix = key_hex[:16]
    count = 0
    for text in logs:
        for line in text.splitlines():
            if prefix in line and any(word in line for word in REJECT_EVENTS):
                count += 1
    return count


def signals_of(behaviour: str, what: str = "signals") -> tuple[str, ...]:
    """The event names and reason codes that show ``behaviour`` was caught (``what="acts"``: that the Byzantine node
    acted), from the node's registry of Byzantine behaviours (``bazaar.node.byzantine.BEHAVIOURS[name]``) when it
    is installed; none otherwise."""
    try:
        registry = importlib.import_module("bazaar.node.byzantine")
    except ModuleNotFoundError:
        return ()
    found = getattr(registry, "BEHAVIOURS", {}).get(behaviour)
    return tuple(getattr(found, what, ()))


def _counted(signals: Sequence[str], statuses: Iterable[dict[str, Any]]) -> int:
    """How often honest nodes' ``GET /status`` counters (``rejected`` by reason, ``transport`` stats) name a
    signal (a refusal that leaves no log line, e.g. a replayed gossip payload refused by the pubsub validator)."""
    total = 0
    for status in statuses:
        for section in ("rejected", "transport"):
            counters = status.get(section)
            if isinstance(counters, dict):
                total += sum(v for k, v in counters.items() if k in signals and isinstance(v, int))
    return total


def _signalled(signals: Sequence[str], logs: Iterable[str]) -> int:
    if not signals:
        return 0
    token = re.compile(r"(?:^|[\s=])(?:" + "|".join(map(re.escape, signals)) + r")(?=$|[\s,])", re.M)
    return sum(len(token.findall(text)) for text in logs)


def byzantine_evidence(ev: Evidence) -> Check:
    """Every Byzantine act left evidence: on the ledger (an evidence record or a slashing of the node), a coded
    reject naming its key in an honest node's log, or one of the behaviour's signals (event or reason code) in an
    honest node's log or status counters; and a node whose behaviour calls for slashing was slashed. A proposer
    behaviour whose node was never drawn (its own log shows no act) is not exercised: listed, not a failure."""
    problems = []
    state = ev.final_state
    for node, behaviours in sorted(ev.byzantine.items()):
        key = bytes.fromhex(ev.keys.get(node, "")) if ev.keys.get(node) else b""
        on_ledger = state is not None and (key in state.slashed or any(p == key for p, _ in state.evidence))
        rejects = _rejects_of(key.hex(), ev.logs.values()) if key else 0
        acted = set()
        for behaviour in behaviours:
            acts = signals_of(behaviour, "acts")
            if acts and node in ev.byzantine_logs and not _signalled(acts, [ev.byzantine_logs[node]]):
                ev.unexercised.append(f"{node} ({behaviour})")
                continue
            acted.add(behaviour)
            signals = signals_of(behaviour)
            if (not on_ledger and not rejects and not _signalled(signals, ev.logs.values())
                    and not _counted(signals, ev.statuses.values())):
                problems.append(f"{node} ({behaviour}): no evidence on the ledger, no coded reject or signal in an "
                                f"honest node's log or status")
        if SLASHING & acted and not (state is not None and key in state.slashed):
            problems.append(f"{node} ({', '.join(sorted(SLASHING & set(behaviours)))}): not slashed")
    return not problems, problems


def restarts_resync(ev: Evidence) -> Check:
    """Every restarted node came to hold the network's finalized head in time."""
    late = [f"{n} did not reach the network's finalized head in time" for n, s in ev.resync if s is None]
    return not late, late
