"""``bazaar net up --metrics`` on node processes: ``prometheus.yml`` lists every node's ``/metrics``, each target
answers in the Prometheus text format (parsed with prometheus_client's parser), and a restarted node's new port
is written back."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bazaar.node import launcher
from bazaar.node.cli import main
from bazaar.node.httpapi import http_request

from .harness import small_scenario

pytestmark = pytest.mark.network


def _targets(root: Path) -> dict[str, int]:
    config = yaml.safe_load((root / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    out = {}
    for group in job["static_configs"]:
        (target,) = group["targets"]
        host, port = target.rsplit(":", 1)
        assert host == "127.0.0.1"
        out[group["labels"]["node"]] = int(port)
    return out


def _scrape(port: int) -> dict[str, object]:
    async def get() -> tuple[int, dict[str, str], bytes]:
        return await http_request(port, "GET", "/metrics", timeout=10)

    status, headers, body = trio.run(get)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def test_net_up_metrics_writes_a_scrape_config_of_live_targets(tmp_path: Path) -> None:
    root = tmp_path / "net"
    scenario = small_scenario(tmp_path)
    assert main(["net", "up", "--scenario", str(scenario), "--dir", str(root), "--metrics"]) == 0
    try:
        info = launcher.NetDir(root).load()
        targets = _targets(root)
        assert targets == {name: node["http_port"] for name, node in info["nodes"].items()}
        for name, port in targets.items():
            families = _scrape(port)
            labels = families["bazaar_node_info"].samples[0].labels  # type: ignore[attr-defined]
            assert labels["name"] == name and labels["role"] == info["nodes"][name]["role"]
            for family in ("bazaar_chain_height", "bazaar_chain_finalized_height", "bazaar_peers",
                           "bazaar_mempool_transactions", "bazaar_messages_received", "bazaar_messages_sent",
                           "bazaar_messages_rejected", "bazaar_block_import_seconds", "process_resident_memory_bytes"):
                assert family in families, (name, family)
            peers = families["bazaar_peers"].samples[0].value  # type: ignore[attr-defined]
            assert peers >= 1
        assert "bazaar_round_latency_seconds" in _scrape(targets["cpp"])

        async def page() -> tuple[int, dict[str, str], bytes]:
            return await http_request(targets["consumer-0"], "GET", "/", timeout=10)

        status, headers, body = trio.run(page)  # a node process serves the explorer page from its package data
        assert status == 200 and headers["content-type"].startswith("text/html") and b"explorer.js" in body
        old = targets["consumer-2"]
        launcher.net_kill(root, "consumer-2")
        launcher.net_start(root, "consumer-2")
        port = _targets(root)["consumer-2"]
        assert port == launcher.NetDir(root).load()["nodes"]["consumer-2"]["http_port"]
        assert port != old or _scrape(port)
    finally:
        assert launcher.net_down(root)
