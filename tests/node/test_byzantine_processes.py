"""A replay flood over real libp2p processes on loopback (issue 12; docs/byzantine.md): a miner started with
``replay-flood`` re-publishes what it saw; the honest nodes' pubsub validator refuses every copy one hop down
(neither delivered nor relayed: the flooder's mesh peers count the refusals), and every round still settles with
no honest node left out. Before the validator, the relayed copies stalled the honest nodes' direct requests from
the second round on.

Every wait is bounded; only the processes the launcher started are ever signalled (by PID).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bazaar.node import launcher
from bazaar.node.cli import main
from bazaar.node.launcher import NetDir
from bazaar.protocol.p2p_settings import DEGREE_LOW

pytestmark = pytest.mark.network
FLOODER = "miner-1"


def test_a_replay_flood_over_libp2p_is_refused_one_hop_down_and_rounds_settle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "net"
    launcher.net_up("hierarchical-small", root, timeout=120, byzantine={FLOODER: ["replay-flood"]})
    try:
        assert main(["round", "--dir", str(root), "--rounds", "2", "--json"]) == 0  # the flood runs from round 1
        rounds = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
        for r in rounds:  # the flooder's own requests may be late (its publishes wait on backpressure)
            assert r["final_everywhere"] and set(r["left_out"]) <= {FLOODER}, r
        info = NetDir(root).load()
        status: dict[str, Any] = {name: launcher.node_status(v) for name, v in info["nodes"].items()}
        honest = {name: s for name, s in status.items() if name != FLOODER}
        # the flooder publishes to its mesh (at least DEGREE_LOW peers per topic) and every copy stops one hop
        # down, so the refusals are counted at its mesh peers: not necessarily at every honest node (since the
        # sealed settlement batch stopped being gossiped, ADR 0176, a two-round run gave it fewer frames to replay
        # and once left an honest node outside every mesh it replayed into)
        refusing = [n for n, s in honest.items() if s["transport"]["gossip_replayed"] > 0]
        assert len(refusing) >= min(DEGREE_LOW, len(honest)), {n: s["transport"] for n, s in honest.items()}
        assert len({(s["finalized"], s["finalized_hash"]) for s in honest.values()}) == 1
    finally:
        launcher.net_down(root)
