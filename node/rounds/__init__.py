"""Rounds: the engine that runs a market's rounds at its leader, the deadline :class:`~.collector.Collector`,
and the ``bazaar round`` driver."""
