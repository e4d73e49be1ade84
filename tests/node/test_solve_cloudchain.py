"""``bazaar solve cloudchain-allocate``: the printed keys, the scenario mode, and a one-line error naming the key
(exit 2) for every bad parameter file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bazaar.deploy import shipped_file
from bazaar.node.cli import main


def test_the_example_prints_the_contract_beside_the_exact_optimum(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "cloudchain-allocate", "--params", "cloudchain-allocate.toml", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"allocation", "prices", "jain", "provider_profit", "requester_utility", "unserved", "optimum"}
    assert out["optimum"]["optimal"] and out["optimum"]["contract_objective"] <= out["optimum"]["objective"] + 1e-9
    assert set(out["unserved"]) == {t for t, p in out["allocation"].items() if p is None}
    assert main(["solve", "cloudchain-allocate", "--scenario", "cloudchain-small", "--round", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allocation"]


@pytest.mark.parametrize(("edit", "key"), [
    (("time_limit = 30.0", "time_limit = 30.0\nbogus = 1"), "bogus"),
    (('name = "aws-like"\n', ""), "provider[0].name"),
    (("capacity = 96.0", 'capacity = "lots"'), "provider[0].capacity"),
    (("units = 12.0", "units = -1.0"), "task[0].units"),
    (("reliability = 0.9999", "reliability = 1.5"), "provider[0].reliability"),
    (('kind = "training"\n', 'kind = "mining"\n'), "task[0].kind"),
])
def test_a_bad_file_is_one_line_naming_the_key(edit: tuple[str, str], key: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = shipped_file("params", "cloudchain-allocate.toml").read_text().replace(*edit, 1)
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["solve", "cloudchain-allocate", "--params", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert key in err and len(err.splitlines()) == 1


def test_no_input_and_a_scenario_of_another_market_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "cloudchain-allocate"]) == 2
    assert main(["solve", "cloudchain-allocate", "--scenario", "collab-small"]) == 2
    assert main(["solve", "cloudchain-allocate", "--scenario", "cloudchain-small", "--round", "99"]) == 2


PROVIDER = ('[[provider]]\nname = "p"\nkind = "community"\ncapacity = 1.0\nprice = 1.0\nreliability = 0.9\n'
            'latency_ms = 50.0\n')


@pytest.mark.parametrize(("text", "key"), [
    ("", "provider"),
    ("task = []\n" + PROVIDER, "task"),
    (PROVIDER, "task"),
    (PROVIDER.replace("capacity = 1.0", "capacity = 0.0"), "provider[0].capacity"),
])
def test_no_or_empty_tables_are_one_line_naming_the_table(text: str, key: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["solve", "cloudchain-allocate", "--params", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert key in err and len(err.splitlines()) == 1


def test_batches_are_the_networks_allocation_of_a_large_window(capsys: pytest.CaptureFixture[str]) -> None:
    """``--batch K``: the contract over consecutive batches of K tasks, as the network allocates a window larger
    than one block holds (ADR 0154); a negative batch is one error line."""
    def allocation(*extra: str) -> dict[str, str | None]:
        assert main(["solve", "cloudchain-allocate", "--params", "cloudchain-allocate.toml", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)["allocation"]

    joint, batched = allocation(), allocation("--batch", "2")
    assert joint == allocation("--batch", "0") == allocation("--batch", "6")
    assert batched != joint  # the example's six tasks allocate differently two at a time
    assert main(["solve", "cloudchain-allocate", "--params", "cloudchain-allocate.toml", "--batch", "-1"]) == 2
    assert "--batch" in capsys.readouterr().err
