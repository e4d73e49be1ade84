"""The ``[mechanism]`` table of a tbcim scenario, turned into the :class:`MarketConfig` every role and the
offline run (``bazaar solve tbcim-bcfl``) share, so both compute from the very same input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bazaar.mechanisms.errors import MechanismError

from ...params import Field, ParamError, check_params

if TYPE_CHECKING:
    from bazaar.mechanisms.tbcim.market import MarketConfig

    from ...scenario import Scenario

RANET_SIZES = (3, 5, 10)
FIELDS = (
    Field("seed", "int", required=False, default=0, low=0, doc="the only source of randomness of the market"),
    Field("epochs", "int", required=False, default=10, low=1, high=1000, doc="global epochs of one task"),
    Field("alpha", "float", required=False, default=0.5, low=0, low_open=True,
          doc="Dirichlet concentration of the EDs' label split"),
    Field("model", "str", required=False, default="softmax", choices=("softmax", "mlp"), doc="the FL model"),
    Field("local_epochs", "int", required=False, default=5, low=1, high=100,
          doc="delta_1: local epochs of an ED at full compute (C >= 1)"),
    Field("lr", "float", required=False, default=0.05, low=0, low_open=True, doc="eta: local learning rate"),
    Field("batch_size", "int", required=False, default=16, low=1, doc="local minibatch size"),
    Field("data_unit", "float", required=False, default=25.0, low=0, low_open=True,
          doc="paper data units per sample (d_i = samples x data_unit)"),
    Field("omega", "float", required=False, default=0.02, low=0, low_open=True,
          doc="the ESs' value-of-compute weight in the lower game"),
    Field("kappa", "float", required=False, default=1.0, low=0, low_open=True, doc="ED utility scale"),
    Field("gas_price", "float", required=False, default=5e-7, low=0, doc="p_g of the blockchain cost c^b"),
    Field("budget", "float", required=False, default=0.0, low=0,
          doc="the requester's escrowed budget per task (tokens; 0: S x the reserve)"),
    Field("filter", "bool", required=False, default=True, doc="run the cosine poisoning filter"),
    Field("filter_threshold", "float", required=False, default=0.0, low=-1, high=1,
          doc="epsilon: an update's least mean cosine similarity with the ED's earlier ones"),
    Field("filter_history", "int", required=False, default=5, low=1, high=100,
          doc="earlier accepted updates per ED the filter compares with"),
    Field("poisoners", "list_str", required=False, default=[], doc="ED names that poison their updates"),
    Field("attack", "str", required=False, default="sign_flip", choices=("sign_flip", "label_flip"),
          doc="how poisoners poison"),
    Field("attack_scale", "float", required=False, default=3.0, low=0, low_open=True,
          doc="scale of a sign-flipped update"),
    Field("attack_start", "int", required=False, default=2, low=0, doc="first epoch (0-based) poisoners attack"),
    Field("eval_fraction", "float", required=False, default=0.2, low=0, low_open=True, high=0.9,
          doc="the requester's held-out share of the digits"),
    Field("escrow_expiry", "int", required=False, default=0, low=0, high=100_000,
          doc="blocks until an unsettled escrow is refundable (0: 4 x epochs + 40)"),
)


@dataclass(frozen=True)
class TbcimSettings:
    """Checked settings: the market configuration and the network-only knobs."""

    market: MarketConfig
    escrow_expiry: int
    budget: float

    @property
    def epochs(self) -> int:
        """Global epochs per task."""
        return self.market.epochs


def market_config(scenario: Scenario) -> TbcimSettings:
    """Check ``[mechanism]`` against the scenario's roles.

    Raises:
        ParamError: naming ``mechanism.<key>`` or ``roles.<role>``.
    """
    from bazaar.mechanisms.tbcim.market import MarketConfig, even_homes, reserve_of

    try:
        v = check_params(dict(scenario.market), FIELDS)
    except ParamError as err:
        raise ParamError(f"mechanism.{err.key}", str(err).split(": ", 1)[-1]) from err
    n_es, n_ed = scenario.roles.get("es", 0), scenario.roles.get("ed", 0)
    if n_es not in RANET_SIZES:
        raise ParamError("roles.es", f"RANet weights ship for {', '.join(map(str, RANET_SIZES))} edge servers, "
                                     f"not {n_es}")
    if n_ed < n_es:
        raise ParamError("roles.ed", f"every edge server needs an edge device ({n_es} ESs, {n_ed} EDs)")
    eds = scenario.names("ed")
    unknown = [p for p in v["poisoners"] if p not in eds]
    if unknown:
        raise ParamError("mechanism.poisoners", f"not edge devices of this scenario: {', '.join(unknown)}")
    try:
        cfg = MarketConfig(
            n_es=n_es, home=even_homes(n_es, n_ed), epochs=v["epochs"], alpha=v["alpha"], model=v["model"],
            local_epochs=v["local_epochs"], lr=v["lr"], batch_size=v["batch_size"], data_unit=v["data_unit"],
            omega=v["omega"], kappa=v["kappa"], gas_price=v["gas_price"],
            filter_threshold=v["filter_threshold"] if v["filter"] else None, filter_history=v["filter_history"],
            poisoners=tuple(sorted(eds.index(p) for p in v["poisoners"])), attack=v["attack"],
            attack_scale=v["attack_scale"], attack_start=v["attack_start"], eval_fraction=v["eval_fraction"],
            seed=v["seed"])
    except MechanismError as err:
        raise ParamError("mechanism", str(err)) from err
    least = n_es * reserve_of(n_es)
    if v["budget"] and v["budget"] < least:
        raise ParamError("mechanism.budget", f"a winner may be paid up to the reserve: the budget must be at least "
                                             f"{n_es} x {reserve_of(n_es)} = {least:.6g} tokens")
    budget = v["budget"] or least
    expiry = v["escrow_expiry"] or 4 * v["epochs"] + 40
    return TbcimSettings(cfg, expiry, budget)
