"""Shipped PB-MARL pre-training results, so that ``bazaar net up`` does not replay the self-play (docs/adr/0122).

``prepare`` of market ai-bazaar pre-trains every WoLF-PHC agent by thousands of episodes of self-play before a
network starts: ≈ 7–15 s of CPU on this machine for the demo scenario, most of ``net up``. The result is a pure
function of the game, the grids, the episodes, the seed — and of the code that plays it. A file here is named
by the SHA-256 of all of those (the source of ``bazaar.mechanisms.ai_bazaar`` and ``bazaar.mechanisms.scalar``
included), so any change of inputs or code misses the cache and the self-play runs as before. Regenerate the
shipped files after such a change with ``python -m bazaar.node.markets.ai_bazaar.pretrained``; a test checks
that the default scenario's file exists for the current key and holds exactly what the self-play returns.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from bazaar.mechanisms.ai_bazaar import Params, pretrain_wolf

FORMAT = 1


def _code_digest() -> str:
    from bazaar.mechanisms import ai_bazaar, scalar

    h = hashlib.sha256()
    sources = sorted(resources.files(ai_bazaar).iterdir(), key=lambda p: p.name)
    for path in [*sources, resources.files("bazaar.mechanisms") / Path(scalar.__file__ or "").name]:
        if path.name.endswith(".py"):
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cache_key(params: Params, *, episodes: int, price_levels: int, demand_levels: int, buckets: int,
              seed: int) -> str:
    """The SHA-256 naming one pre-training run: its inputs and the code that plays it."""
    inputs = {"format": FORMAT, "params": {k: _plain(v) for k, v in vars(params).items()}, "episodes": episodes,
              "price_levels": price_levels, "demand_levels": demand_levels, "buckets": buckets, "seed": seed,
              "code": _code_digest()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _plain(v: Any) -> Any:
    return v.tolist() if hasattr(v, "tolist") else v


def _path(key: str) -> Any:
    return resources.files(__package__) / f"pbmarl-{key[:32]}.json"


def pretrained_agents(params: Params, *, episodes: int, price_levels: int, demand_levels: int, buckets: int,
                      seed: int) -> dict[str, Any]:
    """``{"cpp": state, "consumers": [state, ...], "final_price": p}`` of PB-MARL self-play: read from a
    shipped file when one matches the inputs and the code, else computed (``pretrain_wolf``)."""
    key = cache_key(params, episodes=episodes, price_levels=price_levels, demand_levels=demand_levels,
                    buckets=buckets, seed=seed)
    path = _path(key)
    if path.is_file():
        doc = json.loads(path.read_text())
        if doc.get("key") == key:
            return dict(doc["result"])
    return compute(params, episodes=episodes, price_levels=price_levels, demand_levels=demand_levels,
                   buckets=buckets, seed=seed)


def compute(params: Params, *, episodes: int, price_levels: int, demand_levels: int, buckets: int,
            seed: int) -> dict[str, Any]:
    """Run the self-play (no cache) and return what :func:`pretrained_agents` returns."""
    cpp, consumers, trace = pretrain_wolf(params, episodes=episodes, price_levels=price_levels,
                                          demand_levels=demand_levels, buckets=buckets, seed=seed)
    result = {"cpp": cpp.state_dict(), "consumers": [a.state_dict() for a in consumers],
              "final_price": float(trace.price[-1])}
    return json.loads(json.dumps(result))  # the same plain types a shipped file gives back


def shipped_inputs() -> list[dict[str, Any]]:
    """The pre-training inputs of every shipped ai-bazaar scenario that pre-trains."""
    from bazaar.deploy import shipped_names

    from ...scenario import load_scenario
    from .config import market_config

    out = []
    for name in shipped_names("scenario"):
        sc = load_scenario(name)
        if sc.market_name != "ai-bazaar":
            continue
        cfg = market_config(sc)
        pname = cfg.learning_params(sc)
        if cfg.pretrain_episodes == 0 or pname is None:
            continue
        out.append({"scenario": name, "params": cfg.param_sets[pname], "episodes": cfg.pretrain_episodes,
                    "price_levels": cfg.price_levels, "demand_levels": cfg.demand_levels,
                    "buckets": cfg.demand_buckets, "seed": cfg.agent_seed})
    return out


def regenerate(folder: Path) -> list[Path]:
    """Write the shipped files for every shipped scenario that pre-trains (and remove stale ones)."""
    written = []
    keep = set()
    for item in shipped_inputs():
        kw = {k: item[k] for k in ("episodes", "price_levels", "demand_levels", "buckets", "seed")}
        key = cache_key(item["params"], **kw)
        path = folder / f"pbmarl-{key[:32]}.json"
        keep.add(path.name)
        if not path.exists():
            path.write_text(json.dumps({"key": key, "scenario": item["scenario"],
                                        "result": compute(item["params"], **kw)}, separators=(",", ":")))
        written.append(path)
    for old in folder.glob("pbmarl-*.json"):
        if old.name not in keep:
            old.unlink()
    return written


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    for p in regenerate(Path(__file__).parent):
        print(p)
