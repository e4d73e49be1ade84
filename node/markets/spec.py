"""What a market declares about itself (plain frozen data): roles, consensus, settings, deadlines, modes,
genesis and prepare hooks, and the report that ``bazaar round``, ``bazaar demo`` and the explorer show.

Nothing generic in ``node/`` names a market or a role: the runtime, launcher, scenario loader, round driver,
demo and CLI read these specs through :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bazaar.protocol.chainmsg import market_topic

from ..params import Field

if TYPE_CHECKING:
    from ..scenario import Scenario


@dataclass(frozen=True)
class RoleSpec:
    """One kind of participant.

    Attributes:
        name: the role name used in scenarios (``[roles] name = count``) and node names (``name-0``).
        app: ``"module:attribute"`` of its :class:`~.app.RoleApp` (imported only by nodes of that role).
        min_count, max_count: how many nodes of this role a scenario may have.
        leads: whether it drives rounds (exactly one node of a leading role leads: the first).
        validates: whether its nodes stake at genesis and attest blocks.
        stake: genesis stake of each validator of this role, in tokens (``None``: the scenario's economy).
    """

    name: str
    app: str
    min_count: int = 1
    max_count: int = 512
    leads: bool = False
    validates: bool = True
    stake: float | None = None


@dataclass(frozen=True)
class Column:
    """One column of a market's round table: header, a dotted path into the round summary, a format."""

    header: str
    path: str
    fmt: str = "{}"
    width: int = 10

    def render(self, summary: Mapping[str, Any]) -> str:
        """The cell for one round summary (``-`` when the path is missing)."""
        value: Any = summary
        for part in self.path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return "-".rjust(self.width)
            value = value[part]
        if value is None:
            return "-".rjust(self.width)
        try:
            text = self.fmt.format(value)
        except (ValueError, TypeError):
            text = str(value)
        return text[: self.width].rjust(self.width)


@dataclass(frozen=True)
class Report:
    """How rounds of a market are shown.

    Attributes:
        title: shown above the table.
        columns: market columns between the generic ``round``/``phase`` and ``height``/``final``/``ms`` columns.
        progress: one progress line for a round summary (``bazaar round --progress``, ``bazaar demo``).
        plots: ``plots(rounds, folder) -> [paths]`` writes the market's figures (matplotlib, Agg).
        floor_deadlines: deadlines every round waits out by design (ai-bazaar's mining time); benchmarks
            subtract them to show the protocol's own latency.
        min_messages: ``min_messages(scenario) -> int``: messages one round needs at least (gossips and direct
            requests, the block and its attestations), to compare with what a round sends.
    """

    title: str
    columns: tuple[Column, ...] = ()
    progress: Callable[[Mapping[str, Any]], str] | None = None
    plots: Callable[[list[dict[str, Any]], Path], list[str]] | None = None
    floor_deadlines: tuple[str, ...] = ()
    min_messages: Callable[[Scenario], int] | None = None


@dataclass(frozen=True)
class GenesisPlan:
    """Market-specific genesis content.

    Attributes:
        params: extra genesis ``params``.
        weights_authority: the node name whose account may publish the proposer ``weights`` record (the
            lottery's allocation, a revenue share).
        bls_accounts: node names whose BLS keys are registered without stake (lottery proposers that do not
            validate).
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    weights_authority: str | None = None
    bls_accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class MarketSpec:
    """Everything the generic layer needs to know about one market.

    Attributes:
        name: the market name (``market = "..."`` in scenarios; the ``market`` field of every envelope).
        roles: its roles, in start order.
        consensus: the proposer rules it may run on.
        messages: the module registering its message schemas (``protocol/markets/<market>.py``).
        settings: ``settings(scenario) -> config`` checks the ``[mechanism]`` table and phase parameter names
            (raises ``ParamError`` naming ``mechanism.<key>``); the config is handed to every role.
        deadlines: its own named waits beside the generic ``block_s`` and ``final_s``.
        modes: the phase modes it accepts.
        default_scenario: the shipped scenario name ``bazaar demo`` runs.
        small_scenario: a shipped small variant the conformance suite runs in memory and over processes.
        genesis: ``genesis(scenario) -> GenesisPlan``.
        prepare: ``prepare(scenario, node_dirs)`` runs once in the launcher before a fresh network starts.
        learning_task: ``learning_task(config)`` for markets that can run on Proof-of-Learning.
        report: how its rounds are shown.
        byzantine: the Byzantine behaviours that make sense for it: behaviour name -> the roles that may be
            started with it (``node/byzantine``; built with :func:`bazaar.node.byzantine.declare`). A node
            started with a behaviour its market does not declare for its role exits at start.
        audit: ``audit(config, peers, network_id, parent_state, block)`` re-derives, offline, what a market without
            a ``@block_check`` contract settled in ``block`` (``bazaar chain audit``, docs/adr/0097); raises
            ``InvalidBlock`` when a recorded trade does not re-verify. ``peers``: the address book in scenario
            order.
        gossip_among: message types gossiped on a topic of their own that only the named roles subscribe to
            (docs/adr/0188): the other nodes neither receive, check nor relay them. Every role with a handler
            for such a type must be named (checked when the role is wired).
    """

    name: str
    roles: tuple[RoleSpec, ...]
    consensus: tuple[str, ...]
    messages: str
    settings: Callable[[Scenario], Any]
    deadlines: tuple[Field, ...]
    modes: tuple[str, ...]
    default_scenario: str
    small_scenario: str
    report: Report
    genesis: Callable[[Scenario], GenesisPlan] | None = None
    prepare: Callable[[Scenario, dict[str, Path]], None] | None = None
    learning_task: Callable[[Any], Any] | None = None
    byzantine: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    audit: Callable[..., None] | None = None
    gossip_among: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for mtype, roles in self.gossip_among.items():
            unknown = sorted(set(roles) - set(self.role_names))
            if not roles or unknown:
                raise ValueError(f"market {self.name}: gossip_among[{mtype!r}] names no role or unknown roles "
                                 f"{unknown} (roles: {', '.join(self.role_names)})")

    def audience(self, mtype: str) -> tuple[str, ...]:
        """The roles that subscribe to ``mtype``'s topic; ``()``: the market topic, every node."""
        return tuple(sorted(self.gossip_among.get(mtype, ())))

    def topics(self, network_id: str, role: str) -> list[str]:
        """The market topics a node of ``role`` subscribes to: the market's own, then those of the audiences it
        belongs to."""
        audiences = sorted({self.audience(t) for t in self.gossip_among if role in self.gossip_among[t]})
        return [market_topic(network_id, self.name)] + [market_topic(network_id, self.name, a) for a in audiences]

    def role(self, name: str) -> RoleSpec:
        """The spec of role ``name``.

        Raises:
            KeyError: no such role.
        """
        for role in self.roles:
            if role.name == name:
                return role
        raise KeyError(name)

    @property
    def role_names(self) -> tuple[str, ...]:
        """Role names in start order."""
        return tuple(r.name for r in self.roles)

    @property
    def leader_roles(self) -> tuple[str, ...]:
        """Roles that lead rounds."""
        return tuple(r.name for r in self.roles if r.leads)

