"""Many node processes from the fork server (docs/adr/0120, 0123): a small version of bench_scale's 50 nodes.

Marked ``slow`` and ``network``: 8 processes, 2 rounds, ≈ 40–90 s on a loaded 2-core machine. The 50-process
run is ``python benchmarks/bench_scale.py --scenario ai-bazaar-50`` (figures, not assertions).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bazaar.node import launcher

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _sig_ignored(pid: int, signum: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


def test_forked_nodes_are_what_spawned_nodes_are(tmp_path: Path) -> None:
    # a forked node keeps the interpreter's SIGPIPE disposition (ignored: a reset connection raises, it does not
    # kill the node) and its command line names its own config, as the launcher's PID check needs
    import signal

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from bench_scale import scaled_ai_bazaar, scaled_params
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    (tmp_path / "p.toml").write_text(scaled_params(2))
    path = tmp_path / "s.toml"
    path.write_text(scaled_ai_bazaar(2, "p.toml", rounds=1))
    root = tmp_path / "net"
    info = launcher.net_up(path, root, timeout=180, spawn="fork")
    try:
        assert set(info["up_phases_s"]) == {"prepare", "spawn", "ready", "connected"}
        for v in info["nodes"].values():
            assert launcher.pid_alive(v["pid"], v["config"])
            assert _sig_ignored(v["pid"], signal.SIGPIPE)
            assert not launcher.pid_alive(v["pid"], str(tmp_path / "another" / "node.toml"))
        assert (root / "forkserver.log").exists()
    finally:
        stopped = launcher.net_down(root)
    assert sorted(stopped) == sorted(info["nodes"])


def test_eight_processes_settle_two_rounds_on_one_finalized_head() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_scale.py"), "--nodes", "8",
                           "--rounds", "2", "--json"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["nodes"] == 8 and out["rounds"] == 2
    assert out["final_everywhere"] == 2
    assert out["one_finalized_head"] and out["finalized_height"] >= 2
    assert out["rss_by_role_mb"]["consumer"]["count"] == 7
    assert out["latency_p50_s"] is not None and out["rss_max_mb"] is not None
