"""The spec of market ``cloudchain`` (docs/models/cloudchain.md): compute providers bond and register on chain,
requester agents post tasks with contract escrows, the block proposer allocates and settles by the contract
every validator re-executes, and t-of-m SLA oracles' aggregated BLS verdicts move the money. PoS blocks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bazaar.protocol.markets.cloudchain import MSG_ATTEST

from ...byzantine import declare
from ...params import Field
from ..spec import Column, MarketSpec, Report, RoleSpec
from .config import market_config

if TYPE_CHECKING:
    from ...scenario import Scenario


def progress(r: Mapping[str, Any]) -> str:
    """One progress line per round."""
    m = r.get("metrics", {})
    sla = m.get("sla_compliance")
    return (f"round {r['round']}: {m.get('tasks')} tasks, served {m.get('served')}, Jain {m.get('jain', 0):.3f}, "
            f"SLA met {'-' if sla is None else f'{sla:.0%}'}, verdicts {m.get('verdicts')}, paid {m.get('paid')} "
            f"tokens, penalties {m.get('penalised')}, left out {len(r.get('left_out', []))}, proposer "
            f"{r.get('proposer')}, height {r.get('height')}, final everywhere: {r.get('final_everywhere')}")


def plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    """Tokens earned per provider after the last round, and Jain's index and SLA compliance per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    tokens = rounds[-1].get("outcome", {}).get("tokens", {}) if rounds else {}
    names = sorted(tokens)
    axes[0].bar(range(len(names)), [tokens[n] for n in names])
    axes[0].set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    axes[0].set_ylabel("tokens earned (verified compute)")
    axes[0].set_title("tokens per provider")
    xs = [r["round"] for r in rounds]
    axes[1].plot(xs, [r.get("metrics", {}).get("jain") for r in rounds], marker="o", label="Jain index")
    axes[1].plot(xs, [r.get("metrics", {}).get("sla_compliance") for r in rounds], marker="s",
                 label="SLA compliance")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel("round (simulated day)")
    axes[1].legend(fontsize=8)
    fig.suptitle("cloudchain over the network")
    fig.tight_layout()
    file = out / "cloudchain_rounds.png"
    fig.savefig(file, dpi=110)
    plt.close(fig)
    return [str(file)]


def min_messages(scenario: Scenario) -> int:
    """Per round at least: the day call, one transaction batch per requester process, the window, the block that
    allocates, the results, one verdict message per oracle (its verdicts of the round together, docs/adr/0188)
    and one quorum batch, the settling block, and a block and its votes (here counted once: the phases
    overlap)."""
    m = scenario.roles["oracle"]
    validators = m + scenario.roles["provider"]
    return 1 + scenario.roles["requester"] + 1 + 1 + (1 + m + 1) + 1 + 1 + validators


SPEC = MarketSpec(
    name="cloudchain",
    roles=(
        RoleSpec("oracle", "bazaar.node.markets.cloudchain.oracle:APP", min_count=1, max_count=64, leads=True),
        RoleSpec("provider", "bazaar.node.markets.cloudchain.provider:APP", min_count=1, max_count=28),
        RoleSpec("requester", "bazaar.node.markets.cloudchain.requester:APP", min_count=1, max_count=256,
                 validates=False),
    ),
    consensus=("pos",),
    messages="bazaar.protocol.markets.cloudchain",
    settings=market_config,
    deadlines=(
        Field("window_s", "float", low=0.1, high=600, doc="seconds requesters have to get their tasks on chain"),
        Field("settle_s", "float", low=0.1, high=3600,
              doc="seconds beyond the SLA deadline the leader waits for every task's settlement"),
    ),
    modes=("day",),
    default_scenario="cloudchain",
    small_scenario="cloudchain-small",
    byzantine=declare(everyone=("oracle", "provider", "requester"), proposers=("oracle", "provider"),
                      lying_oracle=("oracle",)),
    gossip_among={MSG_ATTEST: ("oracle",)},
    report=Report(
        title="cloudchain: allocation contract, SLA oracles (t-of-m BLS quorum), escrow settlement, PoS",
        columns=(
            Column("tasks", "metrics.tasks", "{}", 5), Column("served", "metrics.served", "{}", 6),
            Column("jain", "metrics.jain", "{:.3f}", 6), Column("sla", "metrics.sla_compliance", "{:.0%}", 5),
            Column("paid", "metrics.paid", "{:.4g}", 8), Column("penalty", "metrics.penalised", "{:.4g}", 7),
            Column("proposer", "proposer", "{}", 10),
        ),
        progress=progress,
        plots=plots,
        min_messages=min_messages,
    ),
)
