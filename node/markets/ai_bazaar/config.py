"""The ``[mechanism]`` table of an ai-bazaar scenario, checked, with its parameter sets loaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bazaar.mechanisms.ai_bazaar import Params
from bazaar.mechanisms.errors import MechanismError

from ...params import Field, ParamError, check_params, read_toml
from ...scenario import Scenario

FIELDS = (
    Field("param_sets", "str", required=False, default="", doc="(a table: name -> parameter file)"),
    Field("price_levels", "int", required=False, default=11, low=2, high=1000),
    Field("demand_levels", "int", required=False, default=11, low=2, high=1000),
    Field("demand_buckets", "int", required=False, default=10, low=1, high=1000),
    Field("steps_per_unit", "float", required=False, default=2.0, low=0),
    Field("max_steps", "int", required=False, default=400, low=1, high=100_000),
    Field("learning_rate", "float", required=False, default=0.5, low=0, low_open=True),
    Field("batch_size", "int", required=False, default=32, low=1, high=4096),
    Field("eval_fraction", "float", required=False, default=0.25, low=0.05, high=0.9),
    Field("data_seed", "int", required=False, default=7, low=0),
    Field("agent_seed", "int", required=False, default=1, low=0),
    Field("escrow_expiry", "int", required=False, default=20, low=1, high=10_000),
    Field("pretrain_episodes", "int", required=False, default=0, low=0, high=1_000_000),
)


@dataclass(frozen=True)
class MarketConfig:
    """Checked ai-bazaar market settings."""

    param_sets: dict[str, Params]
    price_levels: int
    demand_levels: int
    demand_buckets: int
    steps_per_unit: float
    max_steps: int
    learning_rate: float
    batch_size: int
    eval_fraction: float
    data_seed: int
    agent_seed: int
    escrow_expiry: int
    pretrain_episodes: int

    def learning_params(self, scenario: Scenario) -> str | None:
        """The parameter set of the first learning phase (what agents are pre-trained on), if any."""
        return next((p.params for p in scenario.phases if p.mode == "learning"), None)


def market_config(scenario: Scenario) -> MarketConfig:
    """Check the scenario's ``[market]`` table and load every parameter set it names.

    Raises:
        ParamError: naming the key (parameter-set errors name ``mechanism.param_sets.<set>``).
    """
    raw: dict[str, Any] = dict(scenario.market)
    sets_raw = raw.pop("param_sets", None)
    values = check_params(raw, FIELDS[1:])
    if not isinstance(sets_raw, dict) or not sets_raw:
        raise ParamError("mechanism.param_sets", "expected a table: set name -> parameter file")
    consumers = len(scenario.names("consumer"))
    param_sets = {}
    for name, path in sets_raw.items():
        if not isinstance(path, str):
            raise ParamError(f"mechanism.param_sets.{name}", "expected a file path")
        try:
            params = Params.from_mapping(read_toml(scenario.resolve_file(path, "mechanism.param_sets")))
        except MechanismError as err:
            raise ParamError(f"mechanism.param_sets.{name}", str(err)) from err
        if params.n != consumers:
            raise ParamError(f"mechanism.param_sets.{name}",
                             f"describes n = {params.n} consumers but the scenario has {consumers}")
        param_sets[name] = params
    for i, phase in enumerate(scenario.phases):
        if phase.params not in param_sets:
            raise ParamError(f"phases[{i}].params", f"unknown parameter set {phase.params!r}")
    return MarketConfig(param_sets=param_sets, **values)
