"""The Byzantine behaviours a node can be started with (``byzantine = [...]`` in ``node.toml``), and the check a
node runs at start: every name is known, applies to the consensus rule of the network, and is declared by the
node's market for the node's role (``MarketSpec.byzantine``). docs/byzantine.md describes each behaviour, what
honest nodes do about it and the evidence it leaves.

Generic: no market or role is named here; the markets declare which behaviours make sense for which of their
roles, and the hooks that need market knowledge live in the roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..params import ParamError

if TYPE_CHECKING:
    from ..markets.spec import MarketSpec

RULES = ("pol", "pos", "lottery")

FALSE_CLAIM = "false-claim"
EQUIVOCATE = "equivocate"
WITHHOLD_BLOCK = "withhold-block"
POISON_UPDATE = "poison-update"
LYING_ORACLE = "lying-oracle"
REPLAY_FLOOD = "replay-flood"
MALFORMED_FRAMES = "malformed-frames"
OVERSIZE_FRAMES = "oversize-frames"


@dataclass(frozen=True)
class Behaviour:
    """One misbehaviour.

    Attributes:
        name: the name in ``node.toml`` and testnet files.
        doc: what the node does.
        rules: the consensus rules it applies to.
        hook: where it is installed (the module or role that acts on it).
        evidence: what honest nodes leave behind (a ledger record or a coded reason).
        signals: the event names, reason codes or log fields in honest nodes' logs (and ``GET /status``
            ``rejected`` or ``transport``) that show the act was caught — what a testnet runner matches.
        acts: events in the Byzantine node's own log that show it acted (a proposer behaviour acts only when the
            node is drawn or wins); empty when it acts whenever it runs.
    """

    name: str
    doc: str
    rules: tuple[str, ...]
    hook: str
    evidence: str
    signals: tuple[str, ...] = ()
    acts: tuple[str, ...] = ()


BEHAVIOURS: dict[str, Behaviour] = {b.name: b for b in (
    Behaviour(FALSE_CLAIM, "claims loss 0 for a model that does not achieve it (Proof-of-Learning)", ("pol",),
              "the mining role's claim", "pol.false_claim (coded pol-loss): the claim is dropped from the ranking",
              ("pol.false_claim", "pol-loss")),
    Behaviour(EQUIVOCATE, "signs two different blocks at the same height when it proposes", RULES,
              "node/consensus/draw.py, node/consensus/pol.py",
              "tx/evidence on the ledger; the proposer's stake is slashed",
              ("block.equivocation", "evidence.pending"), ("byzantine.equivocated",)),
    Behaviour(WITHHOLD_BLOCK, "wins the right to propose and never publishes the block", RULES,
              "node/consensus/draw.py, node/consensus/pol.py",
              "draw.silent_proposer: the next draw proposes after block_s (pos, lottery)",
              ("draw.silent_proposer", "pol.silent_winner"), ("byzantine.withheld", "pol.withheld")),
    Behaviour(POISON_UPDATE, "sends sign-flipped, x3 scaled federated-learning updates", RULES,
              "the FL worker role's update", "the cosine filter's rejection (accepted = false) in the signed record",
              ("update.rejected",), ("byzantine.poisoned",)),
    Behaviour(LYING_ORACLE, "flips every verdict it attests", RULES, "the attesting role's verdict",
              "its verdict is recorded as dissent in the quorum record and counted as its fault",
              ("dissent",)),
    Behaviour(REPLAY_FLOOD, "re-broadcasts envelopes and transactions it already saw, at a high rate", RULES,
              "node/byzantine/flood.py", "router rejects with reason replay (libp2p: the pubsub validator refuses "
              "the copy, transport stat gossip_replayed); mempool refusals (duplicate, stale-nonce)",
              ("replay", "gossip_replayed"), ("byzantine.replayed",)),
    Behaviour(MALFORMED_FRAMES, "sends garbage frames over gossip and direct streams", RULES,
              "node/byzantine/frames.py", "router rejects with reason malformed (gossip and direct requests)",
              ("malformed", "bad-signature")),
    Behaviour(OVERSIZE_FRAMES, "sends frames past the envelope and message caps over gossip and direct streams",
              RULES, "node/byzantine/frames.py",
              "router rejects with reason oversize (direct requests) and schema (over-cap gossip)",
              ("oversize", "schema")),
)}

NETWORK_BEHAVIOURS = (REPLAY_FLOOD, MALFORMED_FRAMES, OVERSIZE_FRAMES)
"""Behaviours any node of any market can show (they need no market knowledge)."""
PROPOSER_BEHAVIOURS = (EQUIVOCATE, WITHHOLD_BLOCK)
"""Behaviours of a node when it proposes (a market declares them for the roles that may be drawn or win)."""


def declare(*, everyone: Iterable[str], proposers: Iterable[str] = (),
            **specific: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """A market's ``byzantine`` declaration: the network behaviours for ``everyone``, the proposer behaviours for
    ``proposers``, and market-specific ones by keyword (``false_claim=("miner",)``: underscores for dashes).

    Raises:
        ValueError: an unknown behaviour name (a bug in the market's spec).
    """
    out: dict[str, tuple[str, ...]] = {}
    roles = tuple(everyone)
    for name in NETWORK_BEHAVIOURS:
        out[name] = roles
    for name in PROPOSER_BEHAVIOURS:
        out[name] = tuple(proposers)
    for key, value in specific.items():
        name = key.replace("_", "-")
        if name not in BEHAVIOURS:
            raise ValueError(f"unknown Byzantine behaviour {name!r}")
        out[name] = tuple(value)
    return {k: v for k, v in out.items() if v}


def applicable(spec: MarketSpec, role: str, rule: str) -> list[str]:
    """The behaviours a node of ``role`` in ``spec``'s market may be started with on consensus ``rule``."""
    declared: Mapping[str, tuple[str, ...]] = spec.byzantine
    return [name for name, b in BEHAVIOURS.items() if rule in b.rules and role in declared.get(name, ())]


def check_behaviours(names: Iterable[str], spec: MarketSpec, role: str, rule: str) -> frozenset[str]:
    """The node's behaviours, checked against the registry and its market's declaration.

    Raises:
        ParamError: key ``byzantine``, one line naming the behaviour and the ones that apply.
    """
    names = tuple(names)
    ok = applicable(spec, role, rule)
    for name in names:
        if name in ok:
            continue
        where = f"a {role} of market {spec.name} on {rule}"
        known = "" if name in BEHAVIOURS else "unknown behaviour; "
        raise ParamError("byzantine", f"{known}{name!r} does not apply to {where} (applicable: "
                                      f"{', '.join(ok) if ok else 'none'})")
    return frozenset(names)
