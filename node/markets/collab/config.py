"""The ``[mechanism]`` table of a collab scenario: the ``bazaar solve collab-pricing`` parameter file the
network regulates (so the network and the offline solver read the same input) and the escrow expiry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...params import Field, ParamError
from ...solve import collab as solve_file
from ..mechanism_file import load_mechanism

if TYPE_CHECKING:
    from bazaar.mechanisms.collab import Publisher, Seller
    from bazaar.mechanisms.collab.pricing import PricingConfig

    from ...scenario import Scenario

POOL_RULES = ("spa", "pdpa", "tapa")
"""Rules the pool applies to every price (the network equals ``bazaar solve collab-pricing`` with them)."""
AGENT_RULES = ("qlearning", "evolutionary")
"""Rules the devices apply to their own prices (``mechanisms.collab.agents``)."""
NETWORK_RULES = POOL_RULES + AGENT_RULES
PROTOCOLS = ("declared", "iterative")
"""How a round exchanges messages (docs/adr/0160-collab-declared-round.md)."""
FIELDS = (
    Field("params", "str", doc="the `bazaar solve collab-pricing` parameter file (relative to the scenario, or "
                               "shipped)"),
    Field("escrow_expiry", "int", required=False, default=200, low=1, high=100_000,
          doc="blocks after which a publisher's unsettled budget lock may be refunded to it"),
    Field("protocol", "str", required=False, default="declared", choices=PROTOCOLS,
          doc="declared: publishers declare their parameters to the pool once and it regulates locally (O(1) "
              "exchanges a round); iterative: the paper's book/order/regulate exchange every iteration "
              "(ADR 0160; device-side rules always run iterative)"),
)


@dataclass(frozen=True)
class CollabConfig:
    """Checked settings: the parameter file and what the roles build from it."""

    params: dict[str, Any]
    params_path: Path
    escrow_expiry: int
    protocol: str = "declared"

    @property
    def algorithm(self) -> str:
        """The pricing rule."""
        return str(self.params["top"]["algorithm"])

    @property
    def declared(self) -> bool:
        """Whether rounds run the declared protocol (publishers declare once, the pool regulates locally)."""
        return self.protocol == "declared" and not self.device_side

    @property
    def device_side(self) -> bool:
        """Whether the devices price themselves (Q-learning, evolutionary agents)."""
        return self.algorithm in AGENT_RULES

    def sellers(self) -> list[Seller]:
        """The devices' offers (starting prices) in scenario order."""
        return solve_file._sellers(self.params["sellers"])

    def publishers(self) -> list[Publisher]:
        """The publishers in scenario order (the order the pool serves them)."""
        return solve_file.publishers_of(self.params)

    def pricing(self) -> PricingConfig:
        """The regulation's parameters (history recorded: the network reports its price path)."""
        return solve_file.pricing_config(self.params)


def market_config(scenario: Scenario) -> CollabConfig:
    """Check ``[mechanism]``, load the parameter file and match its sizes to the scenario's roles.

    Raises:
        ParamError: naming ``mechanism.<key>``, ``mechanism.params.<key>`` or ``roles.<role>``.
    """
    values, params, path = load_mechanism(scenario, FIELDS, solve_file.load_pricing)
    cfg = CollabConfig(params, path, values["escrow_expiry"], values["protocol"])
    if cfg.device_side and scenario.market.get("protocol") == "declared":
        raise ParamError("mechanism.protocol", f"the devices price themselves under {cfg.algorithm!r}: their "
                                               f"moves are their own, so rounds must be 'iterative'")
    for role, want in (("device", len(params["sellers"]["compute_capacity"])),
                       ("publisher", len(params["publishers"]["budget"]))):
        if scenario.roles.get(role, 0) != want:
            raise ParamError(f"roles.{role}", f"the parameter file {path.name} describes {want} but the scenario "
                                              f"has {scenario.roles.get(role, 0)}")
    return cfg
