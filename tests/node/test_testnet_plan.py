"""Testnet files (docs/testnets.md): every shipped one loads; every error names the dotted key and the file."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bazaar.deploy import shipped_names
from bazaar.node.params import ParamError
from bazaar.node.testnet import INVARIANTS, load_testnet, runner

GOOD = """
name = "t"
scenario = "ai-bazaar-small"
rounds = 3

[byzantine]
"consumer-1" = ["false-claim"]

[clock_skew_ms]
"consumer-2" = 1500

[[perturbations]]
round = 2
at = "settle"
action = "kill"
nodes = ["leader"]
for_rounds = 1

[[perturbations]]
round = 1
repeat = 2
every = 3
action = "clock-skew"
nodes = ["random"]
skew_ms = -300
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_every_shipped_testnet_loads() -> None:
    names = shipped_names("testnet")
    assert {"crash-leader", "crash-any", "pause-partition", "byzantine"} <= set(names)
    markets = {load_testnet(n).scenario.market_name for n in names if n.startswith("market-")}
    assert markets == {"ai-bazaar", "hierarchical", "tbcim", "collab", "cloudchain"}
    for name in names:
        tn = load_testnet(name)
        assert tn.rounds >= 1 and tn.checks == INVARIANTS


def test_a_good_file(tmp_path: Path) -> None:
    tn = load_testnet(_write(tmp_path, GOOD))
    assert tn.byzantine == {"consumer-1": ("false-claim",)}
    assert tn.honest == ["cpp", "consumer-0", "consumer-2"]
    assert tn.clock_skew_ms == {"consumer-2": 1500}
    kill, skew = tn.perturbations
    assert (kill.round, kill.at, kill.action, kill.nodes, kill.for_rounds) == (2, "settle", "kill", ("leader",), 1)
    assert list(skew.rounds()) == [1, 4] and skew.skew_ms == -300


@pytest.mark.parametrize(("change", "key"), [
    (("rounds = 3", "rounds = 0"), "rounds"),
    (('scenario = "ai-bazaar-small"', 'scenario = "nope"'), "scenario"),
    (('"consumer-1" = ["false-claim"]', '"consumer-9" = ["false-claim"]'), "byzantine.consumer-9"),
    (('"consumer-1" = ["false-claim"]', '"consumer-1" = ["teleport"]'), "byzantine.consumer-1"),
    (('"consumer-2" = 1500', '"consumer-2" = "late"'), "clock_skew_ms.consumer-2"),
    (('action = "kill"', 'action = "explode"'), "perturbations[0].action"),
    (('nodes = ["leader"]', 'nodes = ["nobody"]'), "perturbations[0].nodes"),
    (('at = "settle"', 'at = "lunch"'), "perturbations[0].at"),
    (("skew_ms = -300\n", ""), "perturbations[1].skew_ms"),
    (("for_rounds = 1", "for_rounds = 1\nwhen = 3"), "perturbations[0].when"),
    (("[byzantine]", "[extra]\nx = 1\n[byzantine]"), "extra"),
])
def test_errors_name_the_key_and_the_file(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ParamError) as err:
        load_testnet(path)
    assert err.value.key == key, str(err.value)
    assert str(path) in str(err.value)


def test_an_unknown_shipped_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ParamError) as err:
        load_testnet("no-such-testnet")
    assert "crash-leader" in str(err.value)


def test_unknown_invariant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamError) as err:
        load_testnet(_write(tmp_path, GOOD + '\n[checks]\ninvariants = ["no-fork", "vibes"]\n'))
    assert err.value.key == "checks.invariants"


def test_the_launcher_writes_byzantine_behaviours_and_clock_skew_into_node_toml(tmp_path: Path) -> None:
    from bazaar.node.config import load_node_config
    from bazaar.node.launcher import NetDir, prepare_network
    from bazaar.node.scenario import load_scenario

    scenario = load_scenario("ai-bazaar-small")
    net = NetDir(tmp_path / "net")
    with pytest.raises(ParamError) as err:
        prepare_network(scenario, net, False, byzantine={"consumer-9": ["equivocate"]})
    assert err.value.key == "byzantine"
    prepare_network(scenario, net, False, byzantine={"consumer-1": ["equivocate", "replay-flood"]},
                    clock_skew_ms={"consumer-2": -700})
    one = load_node_config(net.node_dir("consumer-1") / "node.toml")
    two = load_node_config(net.node_dir("consumer-2") / "node.toml")
    assert one.byzantine == ("equivocate", "replay-flood") and one.clock_skew_ms == 0
    assert two.byzantine == () and two.clock_skew_ms == -700


def test_a_settle_perturbation_of_a_round_faster_than_the_runner_looks_is_applied_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.toml"
    path.write_text('name = "late"\nscenario = "ai-bazaar-small"\nrounds = 2\n\n[[perturbations]]\nround = 1\n'
                    'at = "settle"\naction = "kill"\nnodes = ["consumer-1"]\nfor_rounds = 1\n')
    testnet = load_testnet(path)
    killed: list[str] = []

    class Run(runner._Run):
        def info(self) -> dict:
            return {"nodes": {"cpp": {"http_port": 1}}}

        def leader(self) -> str:
            return "cpp"

    run = Run(testnet, tmp_path, lambda line: None, random.Random(1))
    monkeypatch.setattr(runner, "_wait_stage", lambda *a, **k: False)  # the round ended before a look saw 'settle'
    monkeypatch.setattr(runner, "_post_round", lambda *a: {"final": True, "height": 1, "round": 1, "left_out": []})
    monkeypatch.setattr(runner.launcher, "net_kill", lambda root, name: killed.append(name))
    with ThreadPoolExecutor(1) as asker:
        row = runner._play_round(run, 1, asker)
    assert row["final"] and killed == ["consumer-1"]
    [entry] = [e for e in run.applied if e["action"] == "kill"]
    assert entry["ok"] and entry["at"] == "settle" and entry["detail"].startswith("late:")
