"""A session as a person runs it (docs/cli.md): ``net up``, ``net status``, ``round``, ``net logs``, ``chain show``,
``net down`` — every command as its own process, output for people, on a 4-process network on 127.0.0.1.

Every command has a deadline; the network is stopped in ``finally`` by the launcher (only the PIDs it started).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.node import launcher

pytestmark = pytest.mark.network


def _bazaar(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bazaar.node.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_a_session_for_people(tmp_path: Path) -> None:
    root = tmp_path / "net"
    try:
        up = _bazaar("net", "up", "--scenario", "ai-bazaar-small", "--dir", str(root))
        assert up.returncode == 0, up.stderr
        info = json.loads((root / "net.json").read_text())
        first = next(iter(info["nodes"].values()))
        assert f"explorer  http://127.0.0.1:{first['http_port']}/" in up.stdout  # where to look
        assert f"folder    {root.resolve()}" in up.stdout
        assert re.search(r"network ai-bazaar-small is up: 4 nodes in [\d.]+ s", up.stdout)
        for name in info["nodes"]:  # progress: each node as it is ready, then the connected count
            assert f"node {name} ready" in up.stderr
        assert "connected: 4 of 4 nodes have peers" in up.stderr

        rounds = _bazaar("round", "--dir", str(root), "--rounds", "3")
        assert rounds.returncode == 0, rounds.stderr
        lines = rounds.stdout.strip().splitlines()
        assert [ln.split()[:2] for ln in lines] == [["round", "1"], ["round", "2"], ["round", "3"]]
        assert "final everywhere: True" in lines[-1]
        assert "round 3 is past the scenario's 2 scripted rounds" in rounds.stderr

        status = _bazaar("net", "status", "--dir", str(root))
        assert status.returncode == 0, status.stderr
        rows = [ln.split() for ln in status.stdout.splitlines() if ln.split()[:1] and ln.split()[0] in info["nodes"]]
        assert len(rows) == 4 and all(r[3] == "yes" and r[4] == r[5] == "3" for r in rows), status.stdout
        assert all("synced" in r for r in rows)
        assert f"explorer: http://127.0.0.1:{first['http_port']}/" in status.stdout

        logs = _bazaar("net", "logs", "--dir", str(root), "--node", "cpp", "--json")
        events = [json.loads(ln) for ln in logs.stdout.splitlines()]
        assert logs.returncode == 0 and {e["node"] for e in events} == {"cpp"}
        assert [e["round"] for e in events if e.get("event") == "round.closed"] == [1, 2, 3]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)

        show = _bazaar("chain", "show", "--data-dir", str(root / "nodes" / "cpp"))
        assert show.returncode == 0, show.stderr
        assert "reward (tokens)" in show.stdout and "balance (tokens)" in show.stdout
        proposers = {ln.split()[2] for ln in show.stdout.splitlines() if re.match(r"\s*\d+\s+[0-9a-f]{16}\s", ln)}
        assert proposers and proposers <= set(info["nodes"]), show.stdout  # names, not hex keys

        down = _bazaar("net", "down", "--dir", str(root))
        assert down.returncode == 0 and down.stdout.startswith("stopped 4 nodes:"), down.stdout
        after = _bazaar("net", "status", "--dir", str(root))
        assert after.returncode == 1 and "4 of 4 nodes down" in after.stderr
    finally:
        launcher.net_down(root)
