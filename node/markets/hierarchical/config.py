"""The ``[mechanism]`` table of a hierarchical scenario: the ``bazaar solve hierarchical`` parameter file the
round clears (so the network and the offline solver read the same input) and the escrow expiry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...params import Field, ParamError
from ...solve import hierarchical as solve_file
from ..mechanism_file import load_mechanism

if TYPE_CHECKING:
    from ...scenario import Scenario

FIELDS = (
    Field("params", "str", doc="the `bazaar solve hierarchical` parameter file (relative to the scenario, or "
                               "shipped)"),
    Field("max_bid", "float", required=False, default=1e6, low=0, low_open=True,
          doc="largest bid a MESP accepts from a miner (tokens); larger bids are refused"),
    Field("escrow_expiry", "int", required=False, default=20, low=1, high=10_000,
          doc="blocks after which an unsettled escrow may be refunded to its payer"),
)


@dataclass(frozen=True)
class HierarchicalConfig:
    """Checked settings.

    Attributes:
        params: the checked parameter file (what ``bazaar solve hierarchical`` reads).
        params_path: where it was found.
        escrow_expiry: blocks until an unsettled escrow is refundable.
        max_bid: the largest miner bid a MESP accepts.
    """

    params: dict[str, Any]
    params_path: Path
    escrow_expiry: int
    max_bid: float

    @property
    def multi(self) -> bool:
        """Whether the file describes several CCSPs (a list of CCSP capacities)."""
        return isinstance(self.params["ccsp_capacity"], list)

    @property
    def n_miners(self) -> int:
        """Miners in the file."""
        return len(self.params["miner_demand"])

    @property
    def n_mesps(self) -> int:
        """MESPs in the file."""
        return len(self.params["mesp_capacity"])

    @property
    def n_ccsps(self) -> int:
        """CCSPs in the file."""
        return len(self.params["ccsp_capacity"]) if self.multi else 1


def market_config(scenario: Scenario) -> HierarchicalConfig:
    """Check ``[mechanism]``, load the parameter file and match its sizes to the scenario's roles.

    Raises:
        ParamError: naming ``mechanism.<key>`` (``mechanism.params.<key>`` for the parameter file's keys).
    """
    values, params, path = load_mechanism(scenario, FIELDS, solve_file.load)
    cfg = HierarchicalConfig(params, path, values["escrow_expiry"], values["max_bid"])
    for role, want in (("miner", cfg.n_miners), ("mesp", cfg.n_mesps), ("ccsp", cfg.n_ccsps)):
        if scenario.roles.get(role, 0) != want:
            raise ParamError(f"roles.{role}", f"the parameter file {path.name} describes {want} but the scenario "
                                              f"has {scenario.roles.get(role, 0)}")
    pair = (params["upper"], params["lower"])
    if not cfg.multi and pair == ("milp", "exact"):
        raise ParamError("mechanism.params.upper", "upper = milp with lower = exact is the centralised joint "
                                                   "MILP; the network clears level by level (use dp + exact)")
    return cfg
