"""What keeps a 50-process start-up on one machine from drowning its hubs (docs/adr/0198): the draw driver waits
for the node's part of the overlay before it counts attempts, regossips its own transactions at widening gaps,
pubsub retries a registration whose stream negotiation failed, and the launcher lowers the leaves' priority."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from bazaar.node.config import NodeConfig, load_node_config
from bazaar.node.consensus.draw import FORMATION_MAX_S, MAX_REGOSSIP_GAP, DrawDriver
from bazaar.node.launcher import LEAF_NICE, leaf_nice, unconnected
from bazaar.protocol.dial_set import DIAL_ALL_UP_TO, DIAL_HUBS


class _Chain:
    def __init__(self) -> None:
        self.regossiped: list[float] = []
        self.clock = SimpleNamespace(now_ms=lambda: 0)  # the driver notes how late each head came (ADR 0204)

    async def regossip_own(self) -> int:
        self.regossiped.append(trio.current_time())
        return 3


def _driver(formed: Any = lambda: True) -> tuple[DrawDriver, _Chain]:
    chain = _Chain()
    node = SimpleNamespace(chain=chain, gossip_formed=formed)
    return DrawDriver(node, "pos", fallback_s=2.0), chain  # type: ignore[arg-type]


def _block(height: int) -> Any:
    return SimpleNamespace(header=SimpleNamespace(height=height, consensus={"attempt": 0}, timestamp_ms=0))


async def test_regossips_after_silent_proposers_come_at_doubling_gaps_and_reset_at_a_clean_height(
        autojump_clock: trio.testing.MockClock) -> None:
    driver, chain = _driver()
    start = trio.current_time()
    for _ in range(200):  # a declaration every 2 s for 400 s, as at a start-up where no height passes
        await driver._regossip(2.0)
        await trio.sleep(2.0)
    gaps = [b - a for a, b in zip(chain.regossiped, chain.regossiped[1:], strict=False)]
    assert gaps[:4] == [2.0, 4.0, 8.0, 16.0]
    assert max(gaps) == MAX_REGOSSIP_GAP * 2.0 and len(chain.regossiped) < 20  # not 200
    assert chain.regossiped[0] == start and driver.status()["regossips"] == len(chain.regossiped)
    driver._observe(_block(1))  # a height without a declaration: the next silent proposer regossips at once
    before = len(chain.regossiped)
    await driver._regossip(2.0)
    assert len(chain.regossiped) == before + 1


async def test_the_driver_waits_for_the_overlay_before_it_counts_attempts(
        autojump_clock: trio.testing.MockClock) -> None:
    formed_at = trio.current_time() + 7.0
    driver, _ = _driver(lambda: trio.current_time() >= formed_at)
    assert await driver._await_mesh() is True
    assert 7.0 <= driver.formation_s < 7.5 and driver.status()["formation_s"] == driver.formation_s
    driver, _ = _driver(lambda: True)  # formed (or in memory): no wait at all
    assert await driver._await_mesh() is False and driver.formation_s == 0.0
    driver, _ = _driver(lambda: False)  # never formed: it goes on after FORMATION_MAX_S
    start = trio.current_time()
    assert await driver._await_mesh() is True
    assert trio.current_time() - start == pytest.approx(FORMATION_MAX_S, abs=0.5)


async def test_pubsub_retries_a_registration_whose_stream_negotiation_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    import libp2p.pubsub.pubsub as pubsub_mod
    from libp2p.host.exceptions import StreamFailure
    from libp2p.network.exceptions import SwarmException

    from bazaar.protocol.p2p_settings import retry_pubsub_registration

    calls = []

    async def fails(self: Any, peer_id: Any) -> None:
        calls.append(peer_id)
        raise StreamFailure("failed to open a stream to peer")

    monkeypatch.setattr(pubsub_mod.Pubsub, "_handle_new_peer", fails)
    retry_pubsub_registration()
    retry_pubsub_registration()  # idempotent: wrapped once
    with pytest.raises(SwarmException):  # the exception _handle_new_peer_with_retry retries on
        await pubsub_mod.Pubsub._handle_new_peer(object(), "peer")  # type: ignore[arg-type]
    assert calls == ["peer"]


def test_leaves_of_a_sparse_network_yield_cpu_to_the_hubs(tmp_path: Path) -> None:
    sparse = DIAL_ALL_UP_TO + 2
    assert [leaf_nice(i, sparse) for i in range(DIAL_HUBS + 1)] == [0] * DIAL_HUBS + [LEAF_NICE]
    assert {leaf_nice(i, DIAL_ALL_UP_TO + 1) for i in range(DIAL_ALL_UP_TO + 1)} == {0}  # a full mesh: no hubs
    cfg = NodeConfig(name="n", role="r", data_dir=tmp_path, genesis=tmp_path / "g", scenario=tmp_path / "s",
                     nice=LEAF_NICE)
    (tmp_path / "node.toml").write_text(cfg.to_toml())
    assert load_node_config(tmp_path / "node.toml").nice == LEAF_NICE
    (tmp_path / "node.toml").write_text(cfg.to_toml().replace(f"nice = {LEAF_NICE}", "nice = -5"))
    with pytest.raises(Exception, match="nice"):
        load_node_config(tmp_path / "node.toml")


def test_a_start_up_that_does_not_connect_says_which_nodes_held_it_back() -> None:
    def st(peers: int, mesh: int | None = 2) -> dict[str, Any]:
        return {"peers": peers, "mesh_min": mesh}

    statuses: dict[str, dict[str, Any] | None] = {"hub": st(45), "a": st(0), "b": st(3, 0), "c": None, "d": st(4),
                                                  "e": st(1, None)}
    why = unconnected(statuses, "hub", 7)
    assert why.split("; ") == ["1 exited", "no status answer: c", "no peer: a", "no gossip mesh on a topic: b"]
    many = {f"n{i}": st(0) for i in range(9)} | {"hub": st(2)}
    assert unconnected(many, "hub", 10) == "no peer: n0, n1, n2, n3, n4, n5 and 3 more; hub saw 2 of 9 peers"
    assert unconnected({"hub": st(1), "a": st(1)}, "hub", 2) == "the last look found every node connected"


def test_a_meshless_node_is_named_with_its_empty_topics_and_their_backoffs() -> None:
    gossip = {"bazaar/net/chain": {"mesh": 3, "subscribers": 7, "backed_off": 0},
              "bazaar/net/market/cloudchain": {"mesh": 0, "subscribers": 5, "backed_off": 4}}
    statuses: dict[str, dict[str, Any] | None] = {
        "hub": {"peers": 2, "mesh_min": 2}, "leaf": {"peers": 5, "mesh_min": 0, "gossip": gossip}}
    assert unconnected(statuses, "hub", 2) == (
        "no gossip mesh on a topic: leaf (market/cloudchain: 5 subscribers, 4 in prune backoff)")


def test_a_peer_kicked_for_not_registering_gets_more_grace_each_time() -> None:
    """docs/adr/0200: a hub too busy to finish pubsub registrations within the grace was kicked every period, and
    each redial cost it a new handshake; the grace doubles per kick, up to 8 times."""
    from bazaar.protocol.p2p import WATCHDOG_MAX_DOUBLINGS, stuck_grace

    assert [stuck_grace(10.0, k) for k in range(5)] == [10.0, 20.0, 40.0, 80.0, 80.0]
    assert stuck_grace(10.0, 100) == 10.0 * 2 ** WATCHDOG_MAX_DOUBLINGS


def test_the_aggregator_of_a_sparse_network_is_its_last_hub_not_the_leader() -> None:
    """docs/adr/0200: on a sparse network the round leader (the first node) and the aggregator (votes, block
    relay, certificate pushes) are different hubs; a fully connected network keeps its first node."""
    from bazaar.node.runtime import _aggregator_key

    def names(n: int) -> list[tuple[str, str]]:
        return [(f"n{i}", "r") for i in range(n)]

    me = SimpleNamespace(public=b"me")
    for n, expect in ((DIAL_ALL_UP_TO + 1, "n0"), (DIAL_ALL_UP_TO + 2, f"n{DIAL_HUBS - 1}"), (50, f"n{DIAL_HUBS - 1}")):
        scenario = SimpleNamespace(nodes=names(n))
        config = SimpleNamespace(name="n9", peers=[SimpleNamespace(name=x, key=x.encode()) for x, _ in names(n)
                                                   if x != "n9"])
        assert _aggregator_key(scenario, config, me) == expect.encode()  # type: ignore[arg-type]
        config.name = expect
        assert _aggregator_key(scenario, config, me) == b"me"  # type: ignore[arg-type]
    assert _aggregator_key(SimpleNamespace(nodes=[]), config, me) is None  # type: ignore[arg-type]


def test_a_round_waits_for_a_leader_that_is_still_catching_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/adr/0200: right after a 50-process start-up the leader can still be syncing; the round driver waits
    for it (bounded) instead of asking at once and being refused with ``not synced``."""
    from bazaar.node import launcher
    from bazaar.node.rounds import driver

    answers = iter([{"synced": False, "height": 0}, None, {"synced": False}, {"synced": True, "height": 4}])
    monkeypatch.setattr(launcher, "node_status", lambda node, timeout=5.0: next(answers, {"synced": True}))
    said: list[str] = []
    assert driver._synced_status("oracle-0", {}, said.append, wait_s=30) == {"synced": True, "height": 4}
    assert said and "oracle-0" in said[0]
    monkeypatch.setattr(launcher, "node_status", lambda node, timeout=5.0: {"synced": False, "height": 1})
    assert driver._synced_status("oracle-0", {}, None, wait_s=0.6) == {"synced": False, "height": 1}  # gives up
    monkeypatch.setattr(launcher, "node_status", lambda node, timeout=5.0: {"height": 2})  # an older node
    assert driver._synced_status("oracle-0", {}, None) == {"height": 2}
