"""Byzantine behaviours as configuration (issue 12; docs/byzantine.md): the registry, the markets'
declarations, the one-line refusal at start (exit 2) of a behaviour a node's market or role does not support,
and the small generic defences the behaviours lean on (the router's gossip cap, evidence in the mempool)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from libp2p.peer.id import ID

from bazaar.ledger.apply import build_block
from bazaar.ledger.evidence import evidence_from_blocks
from bazaar.node.byzantine import BEHAVIOURS, applicable, check_behaviours, declare
from bazaar.node.cli import main
from bazaar.node.launcher import NetDir, prepare_network
from bazaar.node.markets.registry import MARKETS, get_spec
from bazaar.node.mempool import Mempool
from bazaar.node.params import ParamError
from bazaar.node.router import Router
from bazaar.node.runtime import open_node
from bazaar.node.scenario import load_scenario
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.p2p import SeenPayloads
from bazaar.protocol.transport import MAX_GOSSIP
from tests.ledger.helpers import NID, Net

NAMES = ("false-claim", "equivocate", "withhold-block", "poison-update", "lying-oracle", "replay-flood",
         "malformed-frames", "oversize-frames")


def test_the_registry_holds_exactly_the_named_behaviours() -> None:
    assert set(BEHAVIOURS) == set(NAMES)
    for b in BEHAVIOURS.values():
        assert b.doc and b.hook and b.evidence and set(b.rules) <= {"pol", "pos", "lottery"}


@pytest.mark.parametrize("market", sorted(MARKETS))
def test_every_market_declares_known_behaviours_for_its_own_roles(market: str) -> None:
    spec = get_spec(market)
    assert spec.byzantine, market
    for name, roles in spec.byzantine.items():
        assert name in BEHAVIOURS, (market, name)
        assert roles and set(roles) <= set(spec.role_names), (market, name, roles)
    for rule in spec.consensus:  # every market's nodes can flood and send bad frames; its proposers misbehave
        for role in spec.role_names:
            assert {"replay-flood", "malformed-frames", "oversize-frames"} <= set(applicable(spec, role, rule))
        assert any("equivocate" in applicable(spec, role, rule) for role in spec.role_names)


def test_market_specific_behaviours_belong_to_their_markets() -> None:
    owners = {name: {m for m in MARKETS if name in get_spec(m).byzantine}
              for name in ("false-claim", "poison-update", "lying-oracle")}
    assert owners == {"false-claim": {"ai-bazaar"}, "poison-update": {"tbcim"}, "lying-oracle": {"cloudchain"}}


def test_a_behaviour_that_does_not_apply_is_refused_naming_the_ones_that_do() -> None:
    spec = get_spec("hierarchical")
    assert check_behaviours(["equivocate", "replay-flood"], spec, "mesp", "pos") == {"equivocate", "replay-flood"}
    with pytest.raises(ParamError) as err:
        check_behaviours(["false-claim"], spec, "mesp", "lottery")
    text = str(err.value)
    assert "'false-claim'" in text and "mesp" in text and "hierarchical" in text
    assert "(applicable: equivocate, withhold-block, replay-flood, malformed-frames, oversize-frames)" in text
    with pytest.raises(ParamError, match="unknown behaviour; 'fly'"):
        check_behaviours(["fly"], spec, "mesp", "pos")
    with pytest.raises(ParamError, match="'lying-oracle' does not apply to a provider"):
        check_behaviours(["lying-oracle"], get_spec("cloudchain"), "provider", "pos")
    with pytest.raises(ValueError, match="unknown Byzantine behaviour"):
        declare(everyone=("a",), flying=("a",))


def _net(tmp_path: Path, scenario: str, node: str, behaviours: tuple[str, ...]) -> Path:
    configs = prepare_network(load_scenario(scenario), NetDir(tmp_path / "net"), log_json=False)
    path = tmp_path / "net" / "nodes" / node / "node.toml"
    path.write_text(replace(configs[node], byzantine=behaviours).to_toml())
    return path


async def test_open_node_refuses_an_undeclared_behaviour_before_it_starts(tmp_path: Path) -> None:
    path = _net(tmp_path, "hierarchical-small", "miner-0", ("poison-update",))
    from bazaar.node.config import load_node_config

    net = MemoryNetwork(seed=1)
    with pytest.raises(ParamError, match="'poison-update' does not apply to a miner of market hierarchical"):
        async with open_node(load_node_config(path), transport_factory=lambda k, c, t: net.join(k)):
            pass
    assert not (path.parent / "ready.json").exists()


def test_the_node_command_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _net(tmp_path, "hierarchical-small", "ccsp", ("false-claim",))
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: parameter 'byzantine': 'false-claim' does not apply to a ccsp"), err
    assert "applicable: equivocate, withhold-block, replay-flood" in err[-1]


def test_the_router_refuses_a_gossip_frame_past_the_cap_as_oversize() -> None:
    router = Router("bazaar-test", local_key=b"\x00" * 32)
    assert router.check(b"\x00" * (MAX_GOSSIP + 1), origin="peer") is None
    assert router.rejected == {"oversize": 1}


def test_the_pubsub_validator_refuses_a_copy_from_a_peer_but_never_our_own() -> None:
    me, peer = ID(b"me"), ID(b"peer")
    seen = SeenPayloads(me, size=2)
    msg = SimpleNamespace(data=b"envelope")
    assert seen.fresh(peer, msg) and not seen.fresh(peer, msg) and seen.refused == 1
    assert seen.fresh(me, msg)  # what we send is ours to decide
    for other in (b"a", b"b"):  # bounded: the oldest digest goes first
        assert seen.fresh(peer, SimpleNamespace(data=other))
    assert seen.fresh(peer, msg)


def test_evidence_without_a_nonce_is_kept_once_offered_and_pruned_when_punished() -> None:
    net = Net(stakes=[1_000, 1_000, 1_000])
    state = net.state
    key, proof = net.proposer_and_proof(state)
    a, _, _ = build_block(state, net.genesis, key, [], timestamp_ms=state.timestamp_ms + 1, consensus=proof)
    b, _, _ = build_block(state, net.genesis, key, [], timestamp_ms=state.timestamp_ms + 2, consensus=proof)
    ev = evidence_from_blocks(a, b, NID)
    tx = ev.to_tx(net.keys["alice"], NID)
    pool = Mempool()
    assert not pool.add(tx, tx.wire, state)  # the nonce path has no place for it
    assert pool.add_evidence(tx, tx.wire, (ev.proposer, ev.height), state)
    assert not pool.add_evidence(tx, tx.wire, (ev.proposer, ev.height), state)
    assert pool.last_refusal == "duplicate"
    assert len(pool) == 1 and pool.has_applicable(state) and pool.ordered() == [tx.wire]
    _block, rejected = net.commit(pool.ordered())
    assert not rejected and net.state.is_slashed(key.public)
    pool.prune(net.state)
    assert len(pool) == 0 and not pool.has_applicable(net.state)
    assert not pool.add_evidence(tx, tx.wire, (ev.proposer, ev.height), net.state)  # punished already
