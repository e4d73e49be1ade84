"""The outcome document of a tbcim task, one builder for the network and the offline run (same keys, same
numbers): ``bazaar round --json`` prints it per round (the epochs so far), ``bazaar solve tbcim-bcfl`` after
the last epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KEYS = ("task", "epochs", "winners", "allocation", "expected_payments", "payments", "bids", "price",
        "participants", "compute", "fees", "requester_utility", "accuracy", "global_model_hash",
        "rejected_updates")


@dataclass
class TaskOutcome:
    """What a task has produced so far, by participant name.

    Attributes:
        task: the task number.
        bids: ES -> its cost bid (ESs that bid).
        allocation: ES -> ``z_s``; expected: ES -> ``p_s``; paid: winning ES -> what it is paid.
        price: winning ES -> its unit price ``p_t``; participants: winning ES -> the EDs that joined.
        compute, fees: participating ED -> ``C_i``, ``V_i``.
        requester_utility: ``U_d(z) - sum p`` of the fractional allocation.
        accuracy: the requester's held-out accuracy after each epoch so far.
        model_hash: hex hash of the global model after the last epoch so far.
        rejected: ``{epoch, ed, score}`` per update the filter rejected.
    """

    task: int
    bids: dict[str, float] = field(default_factory=dict)
    allocation: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    paid: dict[str, float] = field(default_factory=dict)
    price: dict[str, float] = field(default_factory=dict)
    participants: dict[str, list[str]] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    fees: dict[str, float] = field(default_factory=dict)
    requester_utility: float = 0.0
    accuracy: list[float] = field(default_factory=list)
    model_hash: str = ""
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        """The JSON document (keys :data:`KEYS`)."""
        return {
            "task": self.task, "epochs": len(self.accuracy), "winners": sorted(self.paid),
            "allocation": dict(sorted(self.allocation.items())),
            "expected_payments": dict(sorted(self.expected.items())), "payments": dict(sorted(self.paid.items())),
            "bids": dict(sorted(self.bids.items())), "price": dict(sorted(self.price.items())),
            "participants": {k: sorted(v) for k, v in sorted(self.participants.items())},
            "compute": dict(sorted(self.compute.items())), "fees": dict(sorted(self.fees.items())),
            "requester_utility": self.requester_utility, "accuracy": list(self.accuracy),
            "global_model_hash": self.model_hash, "rejected_updates": list(self.rejected),
        }


def from_run(run: Any, task: int, es_names: Sequence[str], ed_names: Sequence[str],
             members: Mapping[int, Sequence[int]]) -> TaskOutcome:
    """The outcome of an offline :class:`~bazaar.mechanisms.tbcim.market.TaskRun`."""
    out = TaskOutcome(task)
    alloc = run.allocation
    for s, bid in run.bids.items():
        out.bids[es_names[s]] = float(bid.bid)
        out.allocation[es_names[s]] = float(alloc.z[s])
        out.expected[es_names[s]] = float(alloc.expected[s])
    for s, amount in alloc.paid.items():
        out.paid[es_names[s]] = amount
    for s, game in run.games.items():
        kept = [members[s][k] for k in run.bids[s].selected]
        out.price[es_names[s]] = float(game.price)
        out.participants[es_names[s]] = [ed_names[kept[k]] for k in game.participants.tolist()]
        for k in game.participants.tolist():
            out.compute[ed_names[kept[k]]] = float(game.compute[k])
            out.fees[ed_names[kept[k]]] = float(game.fees[k])
    out.requester_utility = float(run.requester_utility)
    out.accuracy = [float(a) for a in run.accuracy]
    out.model_hash = run.model_hashes[-1].hex() if run.model_hashes else ""
    out.rejected = [{"epoch": e, "ed": ed_names[i], "score": s} for e, i, s in run.rejected]
    return out
