"""The one place a market is registered: market name -> the module holding its ``SPEC``.

Adding a market is one line here (plus its own folder under ``node/markets/``). Specs are imported lazily, so
``bazaar --help`` stays fast and a node imports only its own market.
"""

from __future__ import annotations

import importlib
from functools import cache

from ..params import ParamError
from .spec import MarketSpec

MARKETS: dict[str, str] = {
    "ai-bazaar": "bazaar.node.markets.ai_bazaar.spec",
    "hierarchical": "bazaar.node.markets.hierarchical.spec",
    "tbcim": "bazaar.node.markets.tbcim.spec",
    "collab": "bazaar.node.markets.collab.spec",
    "cloudchain": "bazaar.node.markets.cloudchain.spec",
}


def market_names() -> list[str]:
    """Every registered market, in registration order."""
    return list(MARKETS)


@cache
def get_spec(name: str) -> MarketSpec:
    """The spec of market ``name`` (its message schemas registered as a side effect).

    Raises:
        ParamError: no such market (key ``market``).
    """
    if name not in MARKETS:
        raise ParamError("market", f"unknown market {name!r} (registered: {', '.join(MARKETS)})")
    module = importlib.import_module(MARKETS[name])
    spec = module.SPEC
    if not isinstance(spec, MarketSpec) or spec.name != name:
        raise RuntimeError(f"{MARKETS[name]}.SPEC is not the MarketSpec of {name!r}")
    importlib.import_module(spec.messages)
    return spec
