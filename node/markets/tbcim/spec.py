"""The spec of market ``tbcim`` (docs/models/tbcim.md): a requester buys federated learning from edge servers (RANet
auction) that price their edge devices (ES–ED Stackelberg game); the ESs validate by PoS weighted by revenue
share and re-execute the FedAvg contract. A round is one global epoch; a task's first epoch runs its auction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...byzantine import declare
from ...params import Field
from ..spec import Column, GenesisPlan, MarketSpec, Report, RoleSpec
from .config import market_config

if TYPE_CHECKING:
    from ...scenario import Scenario


def genesis(scenario: Scenario) -> GenesisPlan:
    """The requester publishes the proposer weights (the winning ESs' revenue shares)."""
    return GenesisPlan(weights_authority=scenario.names("requester")[0])


def progress(r: Mapping[str, Any]) -> str:
    """One progress line per round (one global epoch)."""
    m, o = r.get("metrics", {}), r.get("outcome", {})
    head = ""
    if r.get("epoch") == 0:
        head = (f"task {r.get('task')}: winners {', '.join(o.get('winners', [])) or 'none'} paid "
                f"{sum(o.get('payments', {}).values()):.4g}; ")
    acc = m.get("accuracy")
    return (f"round {r['round']}: {head}epoch {r.get('epoch')} accuracy "
            f"{acc if acc is None else f'{acc:.3f}'}, updates {m.get('updates')} (rejected {m.get('rejected')}), "
            f"left out {len(r.get('left_out', []))}, proposer {r.get('proposer')}, height {r.get('height')}, "
            f"final everywhere: {r.get('final_everywhere')}")


def plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    """Accuracy per epoch over the network against the offline runs (this market, and an IID reference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bazaar.mechanisms.tbcim.bcfl import BcflConfig, run_bcfl

    out.mkdir(parents=True, exist_ok=True)
    last = rounds[-1]["outcome"] if rounds else {}
    acc = last.get("accuracy", [])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, len(acc) + 1), acc, "o-", label="network: RANet winners, ES-ED game, filter (non-IID)")
    if acc:
        names = rounds[-1].get("participants", [])
        n_es = max(1, sum(1 for n in names if n.startswith("es-")))
        n_ed = max(n_es, sum(1 for n in names if n.startswith("ed-")))
        for split, style in (("dirichlet", "k--"), ("iid", ":")):
            ref = run_bcfl(BcflConfig(n_es=n_es, eds_per_es=(n_ed // n_es, n_ed // n_es), split=split,
                                      selection="all", rounds=len(acc), seed=0)).accuracy
            ax.plot(range(1, len(ref) + 1), ref, style, label=f"offline FedAvg, every ED, {split} split")
    ax.set_xlabel("global epoch")
    ax.set_ylabel("requester's held-out accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("tbcim: blockchain-aided FL over the network")
    fig.tight_layout()
    path = out / "tbcim_accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


SPEC = MarketSpec(
    name="tbcim",
    roles=(
        RoleSpec("requester", "bazaar.node.markets.tbcim.requester:APP", min_count=1, max_count=1, leads=True,
                 validates=False),
        RoleSpec("es", "bazaar.node.markets.tbcim.es:APP", min_count=3, max_count=10),
        RoleSpec("ed", "bazaar.node.markets.tbcim.ed:APP", min_count=3, max_count=512, validates=False),
    ),
    consensus=("pos",),
    messages="bazaar.protocol.markets.tbcim",
    settings=market_config,
    deadlines=(
        Field("report_s", "float", low=0.1, high=600, doc="seconds EDs have to report to their ES"),
        Field("bid_s", "float", low=0.1, high=600, doc="seconds ESs have to bid after the report deadline"),
        Field("answer_s", "float", low=0.1, high=600, doc="seconds EDs have to answer their ES's price"),
        Field("epoch_s", "float", low=0.1, high=600, doc="seconds of a global epoch (training and updates)"),
    ),
    modes=("bcfl",),
    default_scenario="tbcim",
    small_scenario="tbcim-small",
    genesis=genesis,
    byzantine=declare(everyone=("requester", "es", "ed"), proposers=("es",), poison_update=("ed",)),
    report=Report(
        title="tbcim: RANet auction, ES-ED Stackelberg game, blockchain-aided FL, PoS by revenue share",
        columns=(
            Column("task", "task", "{}", 5), Column("epoch", "epoch", "{}", 5),
            Column("accuracy", "metrics.accuracy", "{:.3f}", 8), Column("workers", "metrics.workers", "{}", 7),
            Column("updates", "metrics.updates", "{}", 7), Column("rejected", "metrics.rejected", "{}", 8),
            Column("winners", "metrics.winners", "{}", 7), Column("paid", "metrics.paid", "{:.4g}", 8),
            Column("U_req", "metrics.requester_utility", "{:.4g}", 8),
            Column("proposer", "proposer", "{}", 10),
        ),
        progress=progress,
        plots=plots,
    ),
)
