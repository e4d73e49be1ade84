"""A node's Prometheus metrics (``GET /metrics``, docs/metrics.md), in a registry of its own.

Most figures are read from the node at scrape time by :class:`NodeCollector` (height, finality, peers, mempool,
messages by type, refusals by reason: the counters the node keeps anyway), so the hot paths carry no extra
bookkeeping; the two distributions, round latency and block import time, are prometheus_client histograms the
round engine and the chain service feed through small observer hooks. ``process_*`` (RSS, CPU, open files) comes
from prometheus_client's own process collector.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .httpapi import Reply

if TYPE_CHECKING:
    from .runtime import Node

ROUND_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Round latency buckets in seconds (a round spans the market's deadlines: seconds to minutes)."""
IMPORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Block import buckets in seconds (re-execution and the market's checks; a PoL model re-evaluation is slower)."""


def _counter(name: str, doc: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(counts.items()):
        family.add_metric([key], value)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class NodeCollector(Collector):
    """Reads a running node's figures at scrape time."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        """One sample set per scrape."""
        node = self.node
        chain = node.chain
        info = InfoMetricFamily("bazaar_node", "This node's name, role and market.")
        info.add_metric([], {"name": node.name, "role": node.role, "market": node.market,
                             "network": node.network_id})
        yield info
        yield _gauge("bazaar_chain_height", "Height of this node's head block.", chain.height)
        yield _gauge("bazaar_chain_finalized_height", "Height of this node's last finalized block.",
                     chain.finalized_height)
        yield _gauge("bazaar_chain_synced", "1 when the node holds the certified head its peers showed it.",
                     1.0 if chain.synced else 0.0)
        yield _gauge("bazaar_peers", "Peers connected now.", len(node.transport.peers()))
        yield _gauge("bazaar_mempool_transactions", "Transactions waiting in the mempool.", len(chain.mempool))
        yield _counter("bazaar_messages_received", "Verified envelopes received from peers, by message type.",
                       "type", node.router.received)
        yield _counter("bazaar_messages_sent", "Envelopes this node signed and sent, by message type.",
                       "type", node.sent)
        yield _counter("bazaar_messages_rejected", "Messages refused, by reason code (docs/protocol.md).",
                       "reason", node.router.rejected)
        ignored = CounterMetricFamily("bazaar_messages_ignored", "Valid messages for other roles (no handler here).")
        ignored.add_metric([], node.router.ignored)
        yield ignored
        transport = CounterMetricFamily("bazaar_transport_events", "Transport counters (gossip, requests, dials).",
                                        labels=["event"])
        for key, value in sorted(dict(node.transport.stats).items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                transport.add_metric([key], value)
        yield transport
        if node.engine is not None:
            yield _gauge("bazaar_round", "The last round number this leader opened.", node.engine.number)


class NodeMetrics:
    """The metrics of one node: its own registry (several in-memory nodes share one process)."""

    def __init__(self, node: Node) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.round_latency = Histogram("bazaar_round_latency_seconds",
                                       "Time from a round's opening to its settlement's finality (leader only).",
                                       buckets=ROUND_BUCKETS, registry=self.registry)
        self.block_import = Histogram("bazaar_block_import_seconds",
                                      "Time to check and import one block (market checks included).",
                                      buckets=IMPORT_BUCKETS, registry=self.registry)
        self.registry.register(NodeCollector(node))
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, CPU seconds, open fds

    def observe_round(self, summary: Mapping[str, Any]) -> None:
        """Round engine observer: one closed round's summary."""
        latency = summary.get("latency_ms")
        if isinstance(latency, (int, float)):
            self.round_latency.observe(latency / 1000)

    def observe_import(self, seconds: float) -> None:
        """Chain service observer: one block imported in ``seconds``."""
        self.block_import.observe(seconds)

    async def http_metrics(self, _: dict[str, Any]) -> Reply:
        """``GET /metrics``: the Prometheus text exposition format."""
        return Reply(generate_latest(self.registry), CONTENT_TYPE_LATEST)
