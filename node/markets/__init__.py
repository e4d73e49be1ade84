"""The market layer: one registry, a :class:`~.spec.MarketSpec` per market, roles as apps (MARKETS.md)."""
