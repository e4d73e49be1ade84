"""The market conformance suite (MARKETS.md), parametrised over the registry: every market passes the same
checks of its scenario loading and of its in-memory network; per-market tests then check only economics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from bazaar.deploy import scenario_file
from bazaar.node.markets.registry import get_spec, market_names
from bazaar.node.markets.spec import MarketSpec
from bazaar.node.memnet import open_memory_network
from bazaar.node.params import ParamError
from bazaar.node.runtime import Node
from bazaar.node.scenario import load_scenario
from bazaar.node.wiring import load_app
from bazaar.protocol import KeyPair, seal
from bazaar.protocol.chainmsg import market_topic
from bazaar.protocol.memory import MemoryNetwork

MARKETS = market_names()
ROUND_S = 60


def _copy_scenario(name: str, folder: Path, extra: str = "", replace: tuple[str, str] | None = None) -> Path:
    """A shipped scenario copied next to its parameter files, optionally edited."""
    src = scenario_file(name)
    text = src.read_text()
    if replace is not None:
        text = text.replace(*replace)
    path = folder / f"{name}.toml"
    (folder / "params").mkdir(exist_ok=True)
    for f in (src.parent / "params").glob("*.toml"):
        (folder / "params" / f.name).write_text(f.read_text())
    path.write_text(text + extra)
    return path


@pytest.mark.parametrize("market", MARKETS)
def test_default_and_small_scenarios_load(market: str) -> None:
    spec = get_spec(market)
    for name in (spec.default_scenario, spec.small_scenario):
        sc = load_scenario(name)
        assert sc.market_name == market
        assert {r for _, r in sc.nodes} <= set(spec.role_names)
        assert sc.consensus in spec.consensus
        spec.settings(sc)


@pytest.mark.parametrize("market", MARKETS)
def test_an_unknown_mechanism_key_is_refused_by_name_and_file(market: str, tmp_path: Path) -> None:
    spec = get_spec(market)
    path = _copy_scenario(spec.small_scenario, tmp_path, replace=("[mechanism]\n", "[mechanism]\nbogus_key = 1\n"))
    with pytest.raises(ParamError) as err:
        load_scenario(path)
    assert "mechanism.bogus_key" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("market", MARKETS)
def test_unknown_role_deadline_and_mode_are_refused_by_name(market: str, tmp_path: Path) -> None:
    spec = get_spec(market)
    cases = [("[roles]\n", "[roles]\nwizard = 2\n", "roles.wizard"),
             ("[deadlines]\n", "[deadlines]\nnap_s = 2.0\n", "deadlines.nap_s")]
    for old, new, key in cases:
        path = _copy_scenario(spec.small_scenario, tmp_path, replace=(old, new))
        with pytest.raises(ParamError, match=key.replace(".", r"\.")):
            load_scenario(path)
    text = scenario_file(spec.small_scenario).read_text()
    mode = next(m for m in spec.modes if f'mode = "{m}"' in text)
    path = _copy_scenario(spec.small_scenario, tmp_path, replace=(f'mode = "{mode}"', 'mode = "dance"'))
    with pytest.raises(ParamError, match=r"phases\[0\]\.mode"):
        load_scenario(path)


async def _play(nodes: dict[str, Node]) -> dict:
    leader = next(n for n in nodes.values() if n.engine is not None)
    with trio.fail_after(ROUND_S):
        return await leader.engine.play()


async def _all_final(nodes: dict[str, Node], height: int) -> None:
    with trio.fail_after(20):
        for node in nodes.values():
            await node.chain.wait_for(lambda n=node: n.chain.finalized_height >= height, timeout=20)
    assert len({n.chain.block(height).hash for n in nodes.values()}) == 1


@pytest.mark.parametrize("market", MARKETS)
async def test_two_rounds_settle_with_one_finalized_head_and_tokens_conserved(market: str, tmp_path: Path) -> None:
    spec = get_spec(market)
    async with open_memory_network(spec.small_scenario, tmp_path / "net") as nodes:
        summaries = [await _play(nodes), await _play(nodes)]
        for s in summaries:
            assert s["final"] and s["left_out"] == [] and s["market"] == market, s
            assert {"round", "phase", "mode", "participants", "height", "latency_ms", "metrics", "outcome"} <= set(s)
        await _all_final(nodes, summaries[-1]["height"])
        for node in nodes.values():
            assert node.chain.state.conserved()
            assert node.router.rejected.get("handler-error", 0) == 0


@pytest.mark.parametrize("market", MARKETS)
async def test_a_participant_that_disappears_is_left_out(market: str, tmp_path: Path) -> None:
    spec = get_spec(market)
    net = MemoryNetwork(seed=5)
    async with open_memory_network(spec.small_scenario, tmp_path / "net", network=net) as nodes:
        follower_role = spec.roles[-1].name
        gone = nodes[load_scenario(spec.small_scenario).names(follower_role)[-1]]
        for node in nodes.values():
            if node is not gone:
                net.disconnect(node.key.public, gone.key.public)
        live = {k: v for k, v in nodes.items() if v is not gone}
        leader = next(n for n in live.values() if n.engine is not None)
        # The leader still counts it in while the mesh reports it connected: cut it from the leader's view too.
        summary = await _play(live)
        assert summary["final"], summary
        assert gone.name not in summary["participants"] or gone.name in summary["left_out"]
        await _all_final(live, summary["height"])
        assert leader.chain.state.conserved()


@pytest.mark.parametrize("market", MARKETS)
async def test_a_hostile_message_is_dropped_and_counted(market: str, tmp_path: Path) -> None:
    spec = get_spec(market)
    async with open_memory_network(spec.small_scenario, tmp_path / "net") as nodes:
        any_node = next(iter(nodes.values()))
        topic = market_topic(any_node.network_id, market)
        before = {n: sum(node.router.rejected.values()) for n, node in nodes.items()}
        await any_node.transport.publish(topic, b"\xc1 not msgpack")
        # a well-formed message signed by a key outside the address book
        outsider = KeyPair(b"\x07" * 32)
        first_type = _a_gossip_type(spec)
        forged = seal(outsider, any_node.network_id, first_type, {}, seq=1, market=market, round=1)
        await any_node.transport.publish(topic, forged.wire)
        for name, node in nodes.items():
            if node is not any_node:
                await node.router.changes.wait_for(
                    lambda n=node, b=before[name]: sum(n.router.rejected.values()) >= b + 2, timeout=10)
        summary = await _play(nodes)
        assert summary["final"]


def _a_gossip_type(spec: MarketSpec) -> str:
    for role in spec.roles:
        for h in load_app(role.app).of_kind("gossip"):
            return h.declared.mtype
    raise AssertionError("a market without gossip")


@pytest.mark.parametrize("market", MARKETS)
def test_a_type_gossiped_among_some_roles_is_handled_by_those_roles_alone(market: str) -> None:
    spec = get_spec(market)
    for role in spec.roles:
        for h in load_app(role.app).of_kind("gossip"):
            audience = spec.audience(h.declared.mtype)
            assert not audience or role.name in audience, (role.name, h.declared.mtype, audience)
        topics = spec.topics("n", role.name)
        assert topics[0] == market_topic("n", market) and len(set(topics)) == len(topics)


def test_an_audience_of_unknown_roles_is_refused() -> None:
    spec = get_spec("cloudchain")
    with pytest.raises(ValueError, match="unknown roles"):
        dataclasses.replace(spec, gossip_among={"cloudchain/attest": ("auditor",)})


async def test_a_role_that_handles_a_type_outside_its_audience_does_not_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(get_spec("cloudchain"), gossip_among={"cloudchain/attest": ("provider",)})
    monkeypatch.setattr("bazaar.node.runtime.get_spec", lambda _name: spec)
    with pytest.raises(ExceptionGroup) as err:  # raised inside the network's nurseries
        async with open_memory_network(spec.small_scenario, tmp_path / "net"):
            pass
    assert err.group_contains(TypeError, match="oracle:APP handles cloudchain/attest, which cloudchain gossips "
                                               "only among provider", depth=2)
