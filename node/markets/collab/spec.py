"""The spec of market ``collab`` (docs/models/collab.md): publishers buy compute shares and data units from
edge devices through a resource pool that regulates the prices to equilibrium; settled by escrow splits, the
block proposer drawn by PoS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...byzantine import declare
from ...params import Field
from ..spec import Column, MarketSpec, Report, RoleSpec
from .config import market_config

if TYPE_CHECKING:
    from ...scenario import Scenario


def progress(r: Mapping[str, Any]) -> str:
    """One progress line per round."""
    m = r.get("metrics", {})
    return (f"round {r['round']}: {m.get('iterations')} iterations, cleared {m.get('cleared')}, gap "
            f"{m.get('gap', float('nan')):.4g}, average prices {m.get('avg_compute_price', float('nan')):.3f} "
            f"(compute) {m.get('avg_data_price', float('nan')):.3f} (data), total payoff "
            f"{m.get('total_payoff', float('nan')):.4g}, traded {m.get('traded')} tokens, left out "
            f"{len(r.get('left_out', []))}, proposer {r.get('proposer')}, height {r.get('height')}, "
            f"final everywhere: {r.get('final_everywhere')}")


def plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    """The price path of the last round: every device's compute and data price per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    path = rounds[-1].get("outcome", {}).get("price_path", []) if rounds else []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("compute", "data"), strict=True):
        if path:
            n = len(path[0][key])
            for i in range(n):
                ax.plot(range(len(path)), [p[key][i] for p in path], label=f"device-{i}")
        ax.set_xlabel("regulation iteration")
        ax.set_ylabel(f"{key} price")
        ax.legend(fontsize=7)
    fig.suptitle(f"collab: price regulation over the network ({rounds[-1]['outcome'].get('algorithm', '')})"
                 if rounds else "collab")
    fig.tight_layout()
    file = out / "collab_price_path.png"
    fig.savefig(file, dpi=110)
    plt.close(fig)
    return [str(file)]


def min_messages(scenario: Scenario) -> int:
    """Per round at least, with no regulation needed (one evaluation): iterative — call + D offers + (book + J
    orders) per evaluation + (regulate + D prices) per iteration + J final orders + the settlement batch + block
    + one attestation per validator; declared — call + D offers + J declarations + (D outcomes once the prices
    moved) + J final books + the settlement batch + block + attestations."""
    d, j = scenario.roles["device"], scenario.roles["publisher"]
    declared = market_config(scenario).declared
    return 1 + d + (0 if declared else 1) + j + j + 1 + 1 + (d + 1)


SPEC = MarketSpec(
    name="collab",
    roles=(
        RoleSpec("pool", "bazaar.node.markets.collab.pool:APP", min_count=1, max_count=1, leads=True),
        RoleSpec("device", "bazaar.node.markets.collab.device:APP", min_count=1, max_count=256),
        RoleSpec("publisher", "bazaar.node.markets.collab.publisher:APP", min_count=1, max_count=256,
                 validates=False),
    ),
    consensus=("pos",),
    messages="bazaar.protocol.markets.collab",
    settings=market_config,
    deadlines=(
        Field("offer_s", "float", low=0.1, high=600, doc="seconds devices have to offer to the pool"),
        Field("order_s", "float", low=0.1, high=600, doc="seconds publishers have to order against a book"),
        Field("price_s", "float", low=0.1, high=600, doc="seconds devices have to post their regulated prices"),
    ),
    modes=("regulate",),
    default_scenario="collab",
    small_scenario="collab-small",
    byzantine=declare(everyone=("pool", "device", "publisher"), proposers=("pool", "device")),
    report=Report(
        title="collab: CPPI portfolios, price regulation to equilibrium, escrow settlement, PoS",
        columns=(
            Column("iters", "metrics.iterations", "{}", 5), Column("cleared", "metrics.cleared", "{}", 7),
            Column("gap", "metrics.gap", "{:.3g}", 8), Column("p_comp", "metrics.avg_compute_price", "{:.3f}", 7),
            Column("p_data", "metrics.avg_data_price", "{:.3f}", 7),
            Column("payoff", "metrics.total_payoff", "{:.4g}", 8), Column("traded", "metrics.traded", "{:.4g}", 8),
            Column("proposer", "proposer", "{}", 10),
        ),
        progress=progress,
        plots=plots,
        min_messages=min_messages,
    ),
)
