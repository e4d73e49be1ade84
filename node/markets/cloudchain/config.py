"""The ``[mechanism]`` table of a cloudchain scenario, and the schedule of work it implies: which provider runs
which profile, which requester agents are active in a round and which tasks each one posts. The network's roles
and the offline run (``bazaar solve cloudchain-allocate --scenario``) compute from these same functions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ...params import Field, ParamError, check_params

if TYPE_CHECKING:
    from bazaar.mechanisms.cloudchain.model import Provider, Task

    from ...scenario import Scenario

FIELDS = (
    Field("seed", "int", required=False, default=0, low=0, doc="the only source of randomness of the market"),
    Field("agents", "int", required=False, default=1, low=1, high=1000,
          doc="requester agents hosted by each requester process (each with its own key and account)"),
    Field("agents_start", "int", required=False, default=0, low=0,
          doc="requester agents active in round 1 (0: all); the count ramps linearly to agents_end"),
    Field("agents_end", "int", required=False, default=0, low=0, doc="agents active in the last round (0: all)"),
    Field("tasks_per_agent", "int", required=False, default=1, low=1, high=50, doc="tasks an agent posts a round"),
    Field("private_share", "float", required=False, default=0.2, low=0, high=1,
          doc="share of tasks that ask for differentially private training"),
    Field("dp_budget", "float", required=False, default=8.0, low=0, low_open=True,
          doc="epsilon budget of each requester's dataset, composed over its private tasks"),
    Field("dp_delta", "float", required=False, default=1e-5, low=0, high=0.1, low_open=True,
          doc="delta of every private task and of the dataset budget"),
    Field("clip", "float", required=False, default=1.0, low=0, low_open=True, doc="clip norm C of private updates"),
    Field("deadline_s", "float", required=False, default=6.0, low=0.1, high=3600,
          doc="the SLA completion deadline of every task, in seconds of network time"),
    Field("latency_ms", "float", required=False, default=250.0, low=1, high=60_000,
          doc="the SLA latency bound of every task (oracle probe round trip, ms)"),
    Field("quorum", "int", required=False, default=0, low=0,
          doc="t: oracles that must agree (0: a majority of the oracles)"),
    Field("probes", "int", required=False, default=3, low=1, high=50, doc="latency probes per oracle and task"),
    Field("probe_from", "str", required=False, default="day", choices=("day", "allocation"),
          doc="when an oracle starts a round's latency probes of a provider: at the day's call (every bonded "
              "provider) or once its head fixes the allocation that gives the provider a task (docs/adr/0186)"),
    Field("oracle_fee", "float", required=False, default=0.05, low=0, doc="tokens per task paid to the quorum"),
    Field("bond", "float", required=False, default=50.0, low=0, low_open=True,
          doc="tokens each provider bonds to the contract for SLA penalties and slashing"),
    Field("wrong_factor", "float", required=False, default=3.0, low=1,
          doc="a wrong result costs the provider this many SLA penalties"),
    Field("max_faults", "int", required=False, default=3, low=1,
          doc="attestations contradicting the quorum after which an oracle earns no more fees"),
    Field("task_expiry", "int", required=False, default=60, low=5, high=100_000,
          doc="blocks after which the payer may take back a task escrow the contract never settled"),
    Field("slow", "list_str", required=False, default=[],
          doc="providers that answer probes and finish jobs too late (name or name:first_round)"),
    Field("fail", "list_str", required=False, default=[],
          doc="providers that silently never deliver (name or name:first_round)"),
    Field("wrong", "list_str", required=False, default=[],
          doc="providers that deliver a wrong result (name or name:first_round)"),
    Field("lying_oracles", "list_str", required=False, default=[],
          doc="oracles that attest the opposite of what they measured"),
    Field("contest", "list_str", required=False, default=[],
          doc="providers that contest every violation verdict, requester processes whose agents contest every "
              "met verdict (each dispute with a deposit; the oracles' ruling decides)"),
    Field("dispute_blocks", "int", required=False, default=10, low=1, high=10_000,
          doc="blocks after a settlement during which its requester or provider may contest it"),
    Field("dispute_deposit", "float", required=False, default=1.0, low=0, low_open=True,
          doc="tokens a disputer locks; paid to the other side when the ruling goes against it"),
    Field("requester_bond", "float", required=False, default=5.0, low=0,
          doc="tokens each requester agent bonds (what an upheld provider dispute takes from)"),
)


@dataclass(frozen=True)
class CloudchainConfig:
    """Checked settings of one cloudchain network."""

    seed: int
    agents: int
    agents_start: int
    agents_end: int
    tasks_per_agent: int
    private_share: float
    dp_budget: float
    dp_delta: float
    clip: float
    deadline_s: float
    latency_ms: float
    quorum: int
    probes: int
    oracle_fee: float
    bond: float
    wrong_factor: float
    max_faults: int
    task_expiry: int
    rounds: int
    requesters: int
    slow: tuple[tuple[str, int], ...] = ()
    fail: tuple[tuple[str, int], ...] = ()
    wrong: tuple[tuple[str, int], ...] = ()
    lying_oracles: tuple[str, ...] = ()
    contest: tuple[str, ...] = ()
    dispute_blocks: int = 10
    dispute_deposit: float = 1.0
    requester_bond: float = 5.0
    probe_from: str = "day"

    def active_agents(self, round_no: int) -> int:
        """Requester agents active in round ``round_no`` (1-based): a linear ramp from ``agents_start`` to
        ``agents_end`` over the scenario's rounds."""
        total = self.agents * self.requesters
        start = self.agents_start or total
        end = self.agents_end or total
        if self.rounds <= 1:
            return min(total, end)
        share = (min(round_no, self.rounds) - 1) / (self.rounds - 1)
        return max(1, min(total, round(start + (end - start) * share)))

    def faulty(self, table: tuple[tuple[str, int], ...], name: str, round_no: int) -> bool:
        """Whether ``name`` misbehaves (per ``table``) in round ``round_no``."""
        return any(n == name and round_no >= first for n, first in table)


def _faults(key: str, values: list[str], names: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for item in values:
        name, _, first = item.partition(":")
        if name not in names:
            raise ParamError(f"mechanism.{key}", f"{name!r} is not a provider of this scenario")
        try:
            out.append((name, int(first) if first else 1))
        except ValueError as err:
            raise ParamError(f"mechanism.{key}", f"{item!r}: the first round must be an integer") from err
    return tuple(out)


def market_config(scenario: Scenario) -> CloudchainConfig:
    """Check ``[mechanism]`` against the scenario's roles.

    Raises:
        ParamError: naming ``mechanism.<key>`` or ``roles.<role>``.
    """
    try:
        v = check_params(dict(scenario.market), FIELDS)
    except ParamError as err:
        raise ParamError(f"mechanism.{err.key}", str(err).split(": ", 1)[-1]) from err
    oracles = scenario.roles.get("oracle", 0)
    quorum = v["quorum"] or oracles // 2 + 1
    if quorum > oracles:
        raise ParamError("mechanism.quorum", f"t = {quorum} > the {oracles} oracles of this scenario")
    if 2 * quorum <= oracles:
        raise ParamError("mechanism.quorum", f"t = {quorum} of {oracles}: two disjoint quorums could disagree "
                                             f"(t must exceed half the oracles)")
    providers = scenario.names("provider")
    strangers = [n for n in v["contest"] if n not in providers and n not in scenario.names("requester")]
    if strangers:
        raise ParamError("mechanism.contest", f"not providers or requesters of this scenario: {', '.join(strangers)}")
    liars = [o for o in v["lying_oracles"] if o not in scenario.names("oracle")]
    if liars:
        raise ParamError("mechanism.lying_oracles", f"not oracles of this scenario: {', '.join(liars)}")
    from bazaar.mechanisms.cloudchain.profiles import paper_providers

    if len(providers) > len(paper_providers(v["seed"])):
        raise ParamError("roles.provider", f"{len(providers)} providers > the {len(paper_providers(v['seed']))} "
                                           f"shipped profiles")
    rounds = sum(p.rounds for p in scenario.phases)
    return CloudchainConfig(
        seed=v["seed"], agents=v["agents"], agents_start=v["agents_start"], agents_end=v["agents_end"],
        tasks_per_agent=v["tasks_per_agent"], private_share=v["private_share"], dp_budget=v["dp_budget"],
        dp_delta=v["dp_delta"], clip=v["clip"], deadline_s=v["deadline_s"], latency_ms=v["latency_ms"],
        quorum=quorum, probes=v["probes"], oracle_fee=v["oracle_fee"], bond=v["bond"],
        wrong_factor=v["wrong_factor"], max_faults=v["max_faults"], task_expiry=v["task_expiry"], rounds=rounds,
        requesters=scenario.roles.get("requester", 0),
        slow=_faults("slow", v["slow"], providers), fail=_faults("fail", v["fail"], providers),
        wrong=_faults("wrong", v["wrong"], providers), lying_oracles=tuple(v["lying_oracles"]),
        contest=tuple(v["contest"]), dispute_blocks=v["dispute_blocks"], dispute_deposit=v["dispute_deposit"],
        requester_bond=v["requester_bond"], probe_from=v["probe_from"])


def provider_profiles(cfg: CloudchainConfig, names: list[str]) -> list[Provider]:
    """The profile each provider node registers, in scenario order: the shipped 28, enterprise (cheapest first)
    and community interleaved so a small network has both kinds, renamed to the node names."""
    from bazaar.mechanisms.cloudchain.profiles import paper_providers

    shipped = paper_providers(cfg.seed)
    ent = sorted((p for p in shipped if p.kind == "enterprise"), key=lambda p: (p.price, p.name))
    com = [p for p in shipped if p.kind != "enterprise"]
    order = []
    while ent or com:
        if ent:
            order.append(ent.pop(0))
        if com:
            order.append(com.pop(0))
    return [replace(order[i], name=name) for i, name in enumerate(names)]


def agent_names(cfg: CloudchainConfig, requester_names: list[str]) -> list[str]:
    """Every requester agent's name, process by process (``requester-0/0``, ``requester-0/1``, ...)."""
    return [f"{r}/{a}" for r in requester_names for a in range(cfg.agents)]


def agent_seed(node_seed: bytes, index: int) -> bytes:
    """The Ed25519 seed of agent ``index`` hosted by a requester process (derived from the node's own seed)."""
    return hashlib.sha256(b"bazaar/cloudchain/agent/v1" + node_seed + index.to_bytes(4, "big")).digest()


def round_tasks(cfg: CloudchainConfig, round_no: int, agents: list[str]) -> list[tuple[str, Task, int]]:
    """The tasks of round ``round_no``: ``(agent name, task, job seed)`` for every active agent, in agent order.

    The workload mix (kind, units, prices, value, privacy) is :func:`~bazaar.mechanisms.cloudchain.profiles.
    workloads`; the SLA is the scenario's (deadline and latency bound in network time)."""
    from bazaar.mechanisms.cloudchain.model import Sla
    from bazaar.mechanisms.cloudchain.profiles import workloads

    active = agents[: cfg.active_agents(round_no)]
    n = len(active) * cfg.tasks_per_agent
    seed = int.from_bytes(hashlib.sha256(f"cloudchain/{cfg.seed}/{round_no}".encode()).digest()[:4], "big")
    mix = workloads(n, seed, start=0, private_share=cfg.private_share)
    out = []
    for i, task in enumerate(mix):
        agent = active[i // cfg.tasks_per_agent]
        sla = Sla(latency_ms=cfg.latency_ms, availability=min(task.sla.availability, 0.99),
                  deadline_s=cfg.deadline_s)
        tid = f"{agent}#{round_no}.{i % cfg.tasks_per_agent}"
        out.append((agent, replace(task, id=tid, sla=sla,
                                   delta=cfg.dp_delta if task.epsilon is not None else None), seed + i))
    return out
