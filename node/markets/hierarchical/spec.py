"""The spec of market ``hierarchical`` (docs/models/hierarchical.md): CCSP(s) → MESPs → miners, settled by lottery."""

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
    """The leading CCSP publishes the lottery weights; miners may be drawn, so their BLS keys are registered."""
    return GenesisPlan(weights_authority=scenario.names("ccsp")[0], bls_accounts=tuple(scenario.names("miner")))


def progress(r: Mapping[str, Any]) -> str:
    """One progress line per round."""
    m = r.get("metrics", {})
    gap = m.get("duality_gap")
    lagrangian = f", Lagrangian duality gap {gap:.2%}" if gap is not None else ""
    return (f"round {r['round']}: welfare {m.get('welfare', float('nan')):.4g}{lagrangian} (optimum "
            f"{m.get('optimum_welfare') or float('nan'):.4g}), served {m.get('served')}/{m.get('bids')}, "
            f"cloud units {m.get('cloud_units')}, left out {len(r.get('left_out', []))}, proposer "
            f"{r.get('proposer')}, height {r.get('height')}, final everywhere: {r.get('final_everywhere')}")


def plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    """Welfare against the joint optimum, and utilisation, per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    xs = [r["round"] for r in rounds]
    metric = [r.get("metrics", {}) for r in rounds]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(xs, [m.get("welfare", float("nan")) for m in metric], "o-", label="settled welfare")
    axes[0].plot(xs, [m.get("optimum_welfare") or float("nan") for m in metric], "k--", label="joint MILP optimum")
    axes[0].set_xlabel("round")
    axes[0].set_ylabel("social welfare")
    axes[0].legend()
    axes[1].bar(xs, [m.get("utilisation", 0.0) for m in metric])
    axes[1].set_xlabel("round")
    axes[1].set_ylabel("utilisation")
    fig.suptitle("hierarchical auction over the network (CCSP → MESPs → miners)")
    fig.tight_layout()
    path = out / "hierarchical_welfare.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def min_messages(scenario: Scenario) -> int:
    """call + one bid per (miner, reachable MESP) + M offers + M upper results (each answered with the MESP's lower
    result) + the settlement batch + block + one attestation per validator (CCSPs and MESPs)."""
    cfg = market_config(scenario)
    home = cfg.params.get("miner_mesp")
    m, k = scenario.roles["mesp"], scenario.roles["ccsp"]
    bids = sum(m if home is None or home[i] < 0 else 1 for i in range(scenario.roles["miner"]))
    return 1 + bids + m + m + 1 + 1 + (m + k)


SPEC = MarketSpec(
    name="hierarchical",
    roles=(
        RoleSpec("ccsp", "bazaar.node.markets.hierarchical.ccsp:APP", min_count=1, max_count=16, leads=True),
        RoleSpec("mesp", "bazaar.node.markets.hierarchical.mesp:APP", min_count=1, max_count=64),
        RoleSpec("miner", "bazaar.node.markets.hierarchical.miner:APP", min_count=1, max_count=512,
                 validates=False),
    ),
    consensus=("lottery", "pos"),
    messages="bazaar.protocol.markets.hierarchical",
    settings=market_config,
    deadlines=(
        Field("bid_s", "float", low=0.1, high=600, doc="seconds miners have to bid to the MESPs"),
        Field("bundle_s", "float", low=0.1, high=600, doc="seconds MESPs have to offer for bundles after that"),
        Field("lower_s", "float", low=0.1, high=600, doc="seconds MESPs have to publish their lower result"),
    ),
    modes=("auction",),
    default_scenario="hierarchical",
    small_scenario="hierarchical-small",
    genesis=genesis,
    byzantine=declare(everyone=("ccsp", "mesp", "miner"), proposers=("ccsp", "mesp", "miner")),
    report=Report(
        title="hierarchical: two-level combinatorial auction, lottery block proposer",
        columns=(
            Column("welfare", "metrics.welfare", "{:.4g}", 9), Column("optimum", "metrics.optimum_welfare",
                                                                      "{:.4g}", 9),
            Column("gap", "metrics.gap", "{:.2%}", 7), Column("util", "metrics.utilisation", "{:.3f}", 6),
            Column("served", "metrics.served", "{}", 6), Column("cloud", "metrics.cloud_units", "{:.0f}", 6),
            Column("proposer", "proposer", "{}", 10),
        ),
        progress=progress,
        plots=plots,
        min_messages=min_messages,
    ),
)
