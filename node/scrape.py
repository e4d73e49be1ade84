"""``prometheus.yml`` for a local network (``bazaar net up --metrics``): one scrape target per node, labelled with
the node's name and role (docs/metrics.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCRAPE_FILE = "prometheus.yml"
SCRAPE_INTERVAL = "5s"


def scrape_config(info: dict[str, Any], root: Path) -> str:
    """The Prometheus configuration (YAML) scraping ``GET /metrics`` of every node recorded in ``info``
    (``net.json``: name -> role and HTTP port); nodes with no HTTP port yet are left out."""
    job = json.dumps(f"bazaar-{info.get('name', 'net')}")
    lines = [
        f"# Prometheus scrape configuration of the Bazaar network in {root}",
        "# written by `bazaar net up --metrics` (rewritten by `bazaar net start`: a restarted node has a new port);",
        f"# run: prometheus --config.file={root / SCRAPE_FILE}",
        "global:",
        f"  scrape_interval: {SCRAPE_INTERVAL}",
        "scrape_configs:",
        f"  - job_name: {job}",
        "    metrics_path: /metrics",
        "    static_configs:",
    ]
    for name, node in info["nodes"].items():
        port = node.get("http_port")
        if not port:
            continue
        lines += [f"      - targets: [{json.dumps(f'127.0.0.1:{port}')}]",
                  f"        labels: {{node: {json.dumps(name)}, role: {json.dumps(node.get('role', ''))}}}"]
    return "\n".join(lines) + "\n"


def write_scrape_config(root: Path, info: dict[str, Any]) -> Path:
    """Write ``prometheus.yml`` into the network folder ``root`` (atomically); returns its path."""
    path = root / SCRAPE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(scrape_config(info, root))
    tmp.replace(path)
    return path
