"""``bazaar demo --market NAME`` chooses one market's default scenario; a name nobody registered is exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bazaar.node.cli import main
from bazaar.node.demo import demo_scenarios, market_scenarios
from bazaar.node.markets.registry import get_spec, market_names
from bazaar.node.params import ParamError


def test_an_unknown_market_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--market", "no-such-market", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-market" in err[0] and "ai-bazaar" in err[0]
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_a_market_names_its_default_scenario_alone() -> None:
    for name in market_names():
        assert market_scenarios([name]) == [get_spec(name).default_scenario]
    assert market_scenarios(["collab", "tbcim", "collab"]) == ["collab", "tbcim"]
    assert sorted(market_scenarios(market_names())) == sorted(demo_scenarios())
    with pytest.raises(ParamError):
        market_scenarios(["ai-bazaar", "typo"])
