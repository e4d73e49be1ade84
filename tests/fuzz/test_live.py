"""CI-sized live fuzzing (issue #12): a hostile libp2p peer sends fuzzed gossip, fuzzed direct requests and
lying raw frames to four node processes on loopback; every node stays alive, answers ``GET /status``, logs no
error-level event or handler bug, refuses with documented codes, and a round still settles everywhere. The
full run is ``python benchmarks/fuzz_live.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bazaar.node import launcher

from .campaign import CODES
from .live import fuzz_live, write_scenario

pytestmark = pytest.mark.network
FRAMES = 300


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz-live")
    launcher.net_up(write_scenario(root), root / "net", timeout=180)
    try:
        yield root / "net"
    finally:
        assert launcher.net_down(root / "net")  # every node was still ours to stop


async def test_a_hostile_peer_fuzzing_live_nodes_crashes_none_and_rounds_settle(net: Path) -> None:
    report = await fuzz_live(net, FRAMES, seed=3)
    assert report.frames >= FRAMES * 0.9
    assert report.alive and report.status_answers, report.to_json()
    assert report.error_events == [], report.error_events[:5]
    assert set(report.remote_rejected) <= CODES, report.remote_rejected
    assert set(report.rejected_by_nodes) <= CODES, report.rejected_by_nodes
    assert sum(report.rejected_by_nodes.values()) > 0
    after = report.round_after
    assert after["final"] and after["final_everywhere"], after
