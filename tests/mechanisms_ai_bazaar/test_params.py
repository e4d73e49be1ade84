"""Parameter validation, round trips and sub-games."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings

from bazaar.mechanisms.ai_bazaar import KEYS, ParameterError, Params, demand_grid, mining_value, price_grid
from bazaar.mechanisms.errors import MechanismError

from .strategies import base_mapping, games, load


@settings(max_examples=30, deadline=None, derandomize=True)
@given(games())
def test_to_mapping_round_trips_through_msgpack(params: Params) -> None:
    d = msgpack.unpackb(msgpack.packb(params.to_mapping()))
    again = Params.from_mapping(d)
    assert again.to_mapping() == params.to_mapping()
    assert sorted(d) == sorted(KEYS)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"bogus": 1.0}, "bogus"),
        ({"n": 0}, "n"),
        ({"n": 2.5}, "n"),
        ({"beta": [0.1, 0.2]}, "beta"),
        ({"beta": 1.5}, "beta"),
        ({"u": [1.0, -1.0, 1.0]}, "u"),
        ({"p_min": 30.0}, "p_max"),
        ({"F_min": 200.0}, "F_max"),
        ({"F_min": 0.0}, "F_min"),
        ({"R": "many"}, "R"),
        ({"C": float("nan")}, "C"),
    ],
)
def test_bad_values_name_the_key(change: dict, key: str) -> None:
    d = base_mapping(3) | change
    with pytest.raises(ParameterError) as err:
        Params.from_mapping(d)
    assert err.value.key == key or err.value.key.startswith(key + "[")
    assert isinstance(err.value, MechanismError)


def test_missing_key_is_named() -> None:
    d = base_mapping(3)
    del d["lambda"]
    with pytest.raises(ParameterError) as err:
        Params.from_mapping(d)
    assert err.value.key == "lambda"


def test_subset_keeps_the_chosen_consumers_in_order() -> None:
    p = load("ai-bazaar-calibrated")
    sub = p.subset([5, 1])
    assert sub.n == 2
    np.testing.assert_array_equal(sub.beta, p.beta[[5, 1]])
    np.testing.assert_array_equal(mining_value(sub), mining_value(p)[[5, 1]])
    for bad in ([], [0, 0], [8]):
        with pytest.raises(ParameterError):
            p.subset(bad)


def test_table1_mining_value_is_negligible() -> None:
    p = load("ai-bazaar-table1")
    # eps tau delta B = 80: R^c = (R + lambda B) e^-80
    np.testing.assert_allclose(mining_value(p), (20000 + 2.5 * 500) * np.exp(-80.0), rtol=1e-12)


def test_grids() -> None:
    p = load("ai-bazaar-calibrated")
    np.testing.assert_allclose(price_grid(p, 11), np.linspace(10, 20, 11))
    np.testing.assert_allclose(demand_grid(p, 4), [10, 40, 70, 100])
    with pytest.raises(MechanismError):
        price_grid(p, 0)
