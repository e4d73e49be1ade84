"""``bazaar sim``: the deployed role apps in one process on a virtual clock (docs/sim.md)."""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path

import pytest
import trio

from bazaar.node.cli import main
from bazaar.node.markets.cloudchain.sim import MAX_HOSTED
from bazaar.node.scenario import load_scenario
from bazaar.node.sim.clock import EPOCH_MS, run_virtual
from bazaar.node.sim.population import build_population, dump_toml
from bazaar.node.sim.world import simulate
from bazaar.protocol.envelope import now_ms


def _head(tmp_path: Path, name: str, seed: int) -> tuple[str, int, bool]:
    pop = build_population("cloudchain-small", tmp_path / name / "scenario", agents=None, rounds=1)
    result = simulate(pop, tmp_path / name / "net", seed=seed)
    return result.head_hash, result.head_height, result.one_head


def test_the_same_seed_gives_a_bit_identical_chain_and_another_seed_another(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first, height, one = _head(tmp_path, "a", seed=7)
    import time

    real = time.monotonic
    calls = [0]

    def racing() -> float:  # a loaded machine: 3 s of wall time pass between any two readings
        calls[0] += 1
        return real() + 3.0 * calls[0]

    monkeypatch.setattr(time, "monotonic", racing)  # nothing that decides the chain may read the wall clock
    again, height_again, _ = _head(tmp_path, "b", seed=7)
    monkeypatch.undo()
    other, _, _ = _head(tmp_path, "c", seed=8)
    assert one and height >= 3  # bonds and registrations, the tasks, the allocation, the settlement
    assert (again, height_again) == (first, height)
    assert other != first


def test_the_virtual_clock_drives_the_nodes_wall_clock_and_deadlines() -> None:
    async def body() -> tuple[int, int, float]:
        before = now_ms()
        await trio.sleep(3600)  # an hour of virtual time passes at once
        return before, now_ms(), trio.current_time()

    before, after, virtual = run_virtual(body, seed=0)
    assert before == EPOCH_MS and after == EPOCH_MS + 3_600_000 and virtual == 3600
    assert abs(now_ms() - EPOCH_MS) > 1000  # outside a simulation: the wall clock again


async def test_compute_runs_inline_under_a_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    from bazaar.node.runtime import Node

    threads = []
    out = await Node.compute(None, lambda: threads.append(threading.get_ident()) or 5)  # type: ignore[arg-type]
    assert out == 5 and threads == [threading.get_ident()]


def test_cloudchain_agents_are_hosted_and_spread_over_requester_nodes(tmp_path: Path) -> None:
    pop = build_population("cloudchain", tmp_path, agents=2500, rounds=2)
    scenario = load_scenario(pop.scenario)
    hosts = scenario.roles["requester"]
    per = tomllib.loads(pop.scenario.read_text())["mechanism"]["agents"]
    assert per <= MAX_HOSTED and hosts * per >= 2500 and pop.hosted == hosts * per
    assert pop.nodes == sum(scenario.roles.values()) and pop.nodes < 20  # nodes stay few while agents grow
    assert pop.rounds == 2 and pop.agents == pop.hosted + pop.nodes - hosts


def test_ai_bazaar_consumers_are_nodes_and_the_parameter_set_is_tiled(tmp_path: Path) -> None:
    pop = build_population("ai-bazaar-small", tmp_path, agents=7, rounds=1)
    scenario = load_scenario(pop.scenario)
    assert scenario.roles["consumer"] == 7 and pop.hosted == 0 and pop.nodes == 8
    params = tomllib.loads(next(tmp_path.glob("params-*.toml")).read_text())
    assert params["n"] == 7 and len(params["beta"]) == 7


def test_dump_toml_round_trips_a_scenario_document() -> None:
    doc = {"name": "x", "n": 3, "f": 0.5, "ok": True, "l": ["a", "b"], "roles": {"a": 1},
           "mechanism": {"k": 1, "param_sets": {"p": "f.toml"}}, "phases": [{"name": "p", "rounds": 2}]}
    assert tomllib.loads(dump_toml(doc)) == doc


def test_sim_json_and_telemetry_agree_with_the_offline_solver(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    code = main(["sim", "--scenario", "ai-bazaar-small", "--rounds", "1", "--seed", "2", "--json",
                 "--out", str(tmp_path / "out")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"agents", "rounds", "head_hash", "wall_s_per_round"} <= set(doc)
    assert doc["agents"] == 4 and doc["rounds"] == 1 and len(doc["head_hash"]) == 64 and doc["one_head"]
    row = doc["per_round"][0]
    # equilibrium mode: the network's price and the CPP's profit are the offline Stackelberg solver's
    assert row["price"] == pytest.approx(row["offline_price"], abs=1e-9)
    assert row["equilibrium_gap"] == pytest.approx(0.0, abs=1e-9)
    assert 0 < row["jain"] <= 1 and row["final"]
    written = json.loads((tmp_path / "out" / "telemetry.json").read_text())
    assert written["head_hash"] == doc["head_hash"]
    assert (tmp_path / "out" / "telemetry.png").stat().st_size > 0


@pytest.mark.parametrize("argv, key", [
    (["--scenario", "ai-bazaar-small", "--agents", "0"], "--agents"),
    (["--scenario", "ai-bazaar-small", "--rounds", "0"], "--rounds"),
    (["--scenario", "no-such-scenario"], "--scenario"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], key: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and key in err and "Traceback" not in err and err.count("\n") == 1


def test_the_mempool_is_sized_for_the_population_unless_the_scenario_says(tmp_path: Path) -> None:
    from bazaar.node.sim.population import MEMPOOL_SLOTS_PER_AGENT

    pop = build_population("cloudchain", tmp_path / "a", agents=10_000, rounds=1)
    assert load_scenario(pop.scenario).chain["mempool"] == MEMPOOL_SLOTS_PER_AGENT * (pop.hosted + pop.nodes)
    small = build_population("cloudchain", tmp_path / "b", agents=10, rounds=1)
    assert load_scenario(small.scenario).chain["mempool"] == 10_000  # never below the default
    assert "chain" not in tomllib.loads(small.scenario.read_text())  # and then not written at all


@pytest.mark.parametrize("scenario", ["cloudchain-small", "hierarchical-small"])
def test_the_same_seed_gives_the_same_head_in_another_process_and_hash_seed(scenario: str, tmp_path: Path) -> None:
    """Nothing that decides the chain may follow the interpreter's string hashing (set and dict-of-set order)."""
    import os
    import subprocess
    import sys

    code = ("import sys; from bazaar.node.cli import main; "
            f"sys.exit(main(['sim', '--scenario', '{scenario}', '--rounds', '2', '--seed', '3', '--json']))")
    heads = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, check=True).stdout
        heads.add(json.loads(out)["head_hash"])
    assert len(heads) == 1, heads
