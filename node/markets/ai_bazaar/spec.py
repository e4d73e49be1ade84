"""The spec of market ``ai-bazaar`` (docs/models/ai-bazaar.md): roles, consensus, settings, deadlines, modes, report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...byzantine import declare
from ...consensus.pol_models import LearningTask
from ...params import Field
from ..spec import Column, MarketSpec, Report, RoleSpec
from .audit import audit_block
from .config import MarketConfig, market_config

if TYPE_CHECKING:
    from ...scenario import Scenario


def prepare(scenario: Scenario, node_dirs: dict[str, Path]) -> None:
    """Before a new network starts: pre-train the WoLF-PHC agents by PB-MARL self-play (offline; a shipped
    result when one matches, docs/adr/0122), and give each node its own agent; online learning then continues
    from there. Runs once, in the launcher; nodes that already hold an agent keep it."""
    from .pretrained import pretrained_agents

    cfg = market_config(scenario)
    name = cfg.learning_params(scenario)
    if cfg.pretrain_episodes == 0 or name is None:
        return
    files = {"cpp": node_dirs[scenario.names("cpp")[0]] / "cpp-state.json"}
    files.update({n: node_dirs[n] / "consumer-state.json" for n in scenario.names("consumer")})
    if all(f.exists() for f in files.values()):
        return
    done = pretrained_agents(cfg.param_sets[name], episodes=cfg.pretrain_episodes, price_levels=cfg.price_levels,
                             demand_levels=cfg.demand_levels, buckets=cfg.demand_buckets, seed=cfg.agent_seed)
    files["cpp"].write_text(json.dumps({"round": 0, "bucket": cfg.demand_buckets // 2, "agent": done["cpp"],
                                        "pretrained": {"params": name, "episodes": cfg.pretrain_episodes,
                                                       "final_price": done["final_price"]}}))
    for agent, consumer in zip(done["consumers"], scenario.names("consumer"), strict=True):
        files[consumer].write_text(json.dumps({"agent": agent}))


def learning_task(cfg: MarketConfig) -> LearningTask:
    """The shared PoL task: softmax regression on the digits, split by the scenario's seed."""
    return LearningTask.digits(eval_fraction=cfg.eval_fraction, seed=cfg.data_seed,
                               learning_rate=cfg.learning_rate, batch_size=cfg.batch_size)


def progress(r: Mapping[str, Any]) -> str:
    """One progress line per round."""
    return (f"round {r['round']} ({r['mode']}, {r['params']}): price {r.get('price', float('nan')):.4g}, "
            f"winner {r.get('winner')}, height {r.get('height')}, final everywhere: {r.get('final_everywhere')}")


def plots(rounds: list[dict[str, Any]], out: Path) -> list[str]:
    """Posted price and CPP profit against the Stackelberg equilibrium, per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    xs = [r["round"] for r in rounds]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(xs, [r.get("price", float("nan")) for r in rounds], "o-", label="posted price")
    axes[0].plot(xs, [r.get("equilibrium", {}).get("price", float("nan")) for r in rounds], "k--",
                 label="Stackelberg price p*")
    axes[0].set_xlabel("round")
    axes[0].set_ylabel("price")
    axes[0].legend()
    axes[1].plot(xs, [r.get("cpp_profit", 0.0) for r in rounds], "o-", label="CPP profit")
    axes[1].plot(xs, [r.get("equilibrium", {}).get("cpp_profit", float("nan")) for r in rounds], "k--",
                 label="equilibrium CPP profit")
    axes[1].set_xlabel("round")
    axes[1].legend()
    for r in rounds:
        axes[0].annotate(r["mode"][0], (r["round"], r.get("price", 0.0)), fontsize=7)
    fig.suptitle("ai-bazaar over the network (e = equilibrium mode, l = WoLF-PHC learning)")
    fig.tight_layout()
    path = out / "ai-bazaar_prices_profits.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [str(path)]


def min_messages(scenario: Scenario) -> int:
    """price + N demands + lease + N claims + block + (N + 1) attestations."""
    n = scenario.roles["consumer"]
    return 1 + n + 1 + n + 1 + (n + 1)


SPEC = MarketSpec(
    name="ai-bazaar",
    roles=(
        RoleSpec("cpp", "bazaar.node.markets.ai_bazaar.cpp:APP", min_count=1, max_count=1, leads=True),
        RoleSpec("consumer", "bazaar.node.markets.ai_bazaar.consumer:APP", min_count=1, max_count=512),
    ),
    consensus=("pol",),
    messages="bazaar.protocol.markets.ai_bazaar",
    settings=market_config,
    deadlines=(
        Field("demand_s", "float", low=0.1, high=600, doc="seconds the CPP waits for demands"),
        Field("mining_s", "float", low=0.1, high=600, doc="seconds of local training before the PoL ranking"),
    ),
    modes=("equilibrium", "learning"),
    default_scenario="ai-bazaar",
    small_scenario="ai-bazaar-small",
    prepare=prepare,
    learning_task=learning_task,
    byzantine=declare(everyone=("cpp", "consumer"), proposers=("consumer",), false_claim=("consumer",)),
    audit=audit_block,
    report=Report(
        title="ai-bazaar: Stackelberg pricing, PB-MARL, Proof-of-Learning",
        columns=(
            Column("price", "price", "{:.3f}", 8), Column("p*", "equilibrium.price", "{:.3f}", 8),
            Column("|p-p*|", "price_gap", "{:.3f}", 7), Column("demand", "metrics.total_demand", "{:.1f}", 8),
            Column("cpp profit", "cpp_profit", "{:.1f}", 11),
            Column("consumers", "metrics.consumer_profit_total", "{:.1f}", 10), Column("winner", "winner", "{}", 12),
        ),
        progress=progress,
        plots=plots,
        floor_deadlines=("mining_s",),
        min_messages=min_messages,
    ),
)
