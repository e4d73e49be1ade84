"""Hypothesis strategies and fixed parameter sets shared by the ai-bazaar tests."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bazaar.mechanisms.ai_bazaar import Params

ROOT = Path(__file__).resolve().parents[2]
PARAMS_DIR = ROOT / "deploy" / "scenarios" / "params"


def load(name: str) -> Params:
    """A shipped parameter set by file stem, e.g. ``ai-bazaar-calibrated``."""
    with (PARAMS_DIR / f"{name}.toml").open("rb") as fh:
        return Params.from_mapping(tomllib.load(fh))


def base_mapping(n: int) -> dict[str, Any]:
    """A valid mapping for ``n`` consumers (mining matters, a_i changes sign inside the price range)."""
    return {
        "n": n, "epsilon": 1.0, "tau": 0.01, "delta": 0.3, "C_b": 20.0, "u": 1.0, "m": 1.0, "R": 3000.0,
        "B": 200.0, "lambda": 5.0, "beta": 0.3, "C": 5.0, "F_min": 10.0, "F_max": 100.0, "p_min": 10.0,
        "p_max": 20.0,
    }


@st.composite
def games(draw: st.DrawFn, max_n: int = 5, equal_beta: bool = False) -> Params:
    """Random heterogeneous games with 1..max_n consumers."""
    n = draw(st.integers(1, max_n))
    d = base_mapping(n)
    unit = st.floats(0.0, 1.0)
    d["delta"] = [draw(st.floats(0.0, 1.5)) for _ in range(n)]
    d["u"] = [draw(st.floats(0.3, 2.0)) for _ in range(n)]
    d["m"] = [draw(st.floats(0.0, 2.0)) for _ in range(n)]
    if equal_beta:
        d["beta"] = draw(st.floats(0.05, 1.0))
    else:
        d["beta"] = [draw(st.one_of(st.just(0.0), st.floats(0.05, 1.0))) for _ in range(n)]
    d["R"] = draw(st.floats(0.0, 20000.0))
    d["C_b"] = draw(st.floats(0.0, 40.0))
    f_min = draw(st.floats(0.5, 20.0))
    d["F_min"], d["F_max"] = f_min, f_min + draw(st.floats(0.0, 200.0))
    p_min = draw(st.floats(0.0, 20.0))
    d["p_min"], d["p_max"] = p_min, p_min + draw(st.floats(0.0, 20.0))
    d["C"] = draw(unit) * 10
    return Params.from_mapping(d)
