"""The cloudchain contract as data: the :class:`Book` every node folds from the chain's cloudchain records, the
admission rules for each record (:meth:`Book.admit`) and the contract's own transactions for the next block
(:meth:`Book.contract_work`) — which the block proposer writes and every validator re-derives.

Pure: no network, no clock. A book is immutable; :meth:`Book.apply` returns the book after one block, so a
node keeps one per recent head and checks each block against its parent's book (docs/models/cloudchain.md
"The contract on the chain").

Life of a task: ``open`` (its record and its contract escrow landed) → the leader's ``window`` record → the next
block's proposer allocates every open task (``alloc``; an unserved one is refunded at once) → ``allocated`` →
the provider posts its ``result`` → t oracles' aggregated verdict (``quorum``) → ``decided`` → the next block's
proposer settles it (``settle`` + the escrow moves) → ``closed``. An allocated task that no quorum decides
within ``task_expiry`` blocks is refunded by the contract (and its payer could take it back after the escrow's
own expiry, should the contract never run).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bazaar.ledger import bls
from bazaar.ledger.amounts import UNIT
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.state import State
from bazaar.ledger.txs import contract_account
from bazaar.mechanisms.cloudchain.contract import Allocation, allocate, eligible
from bazaar.mechanisms.cloudchain.model import Provider, Sla, Task
from bazaar.protocol import Envelope, codec
from bazaar.protocol.markets import cloudchain as msg

from ..context import Refuse

CONTRACT = contract_account(msg.MARKET)
KINDS = ("training", "inference", "preprocessing")
MAX_UNITS = 1e6
CONTRACT_RECORDS = (msg.ALLOC, msg.SETTLE, msg.RESETTLE)
MAX_ALLOC_TASKS = 150
"""Open tasks one block's allocation takes, in (round, task id) order: the allocation record (≈ 72 bytes per task)
and the refunds of the unserved (≈ 276 bytes each) must fit in the quarter of a block the proposer leaves beside
the mempool's transactions (docs/adr/0154); the rest are allocated in the next block, on the providers' load."""
MAX_EXPECT = 4096
"""Task keys one window record may name (the tasks whose landing closes it)."""
ESCROW_MOVES = ("tx/escrow_release", "tx/escrow_refund", "tx/escrow_settle", "tx/escrow_split", "tx/escrow_take")


def task_key(requester: bytes, task_id: str) -> bytes:
    """A task's key on chain, which is also the id of its contract escrow."""
    return hashlib.sha256(b"cloudchain/task" + requester + task_id.encode()).digest()


def bond_id(provider: bytes) -> bytes:
    """The id of a provider's bond (a contract escrow the SLA penalties are taken from)."""
    return hashlib.sha256(b"cloudchain/bond" + provider).digest()


def dispute_id(task: bytes, disputer: bytes) -> bytes:
    """The id of a dispute's deposit (a contract escrow of the disputer)."""
    return hashlib.sha256(b"cloudchain/dispute" + task + disputer).digest()


def floor_units(x: float) -> int:
    """Micro-tokens, rounded down (never pay more than a price times units)."""
    return max(0, math.floor(x * UNIT + 1e-6))


def task_escrow(task: Task, oracle_fee: float) -> int:
    """What a requester locks for a task: the most it can pay (max price × units) and the oracles' fee."""
    return floor_units(task.max_price * task.units) + floor_units(oracle_fee) + 1


@dataclass(frozen=True)
class Rules:
    """What the contract needs besides the chain: the oracles, the leader and the scenario's economics."""

    network_id: str
    oracles: tuple[bytes, ...]
    leader: bytes
    quorum: int
    oracle_fee: float
    wrong_factor: float
    max_faults: int
    task_expiry: int
    dp_budget: float
    dp_delta: float
    clip: float
    dispute_blocks: int = 10
    dispute_deposit: int = 0
    """Micro-tokens a disputer locks (the stake it loses when the ruling goes against it)."""


@dataclass(frozen=True)
class Dispute:
    """A contested verdict: who contests, what it claims, when, and the oracles' ruling once it landed."""

    task: bytes
    disputer: bytes
    claim: str
    height: int
    ruling: str = ""
    signers: tuple[int, ...] = ()
    dissent: tuple[int, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One task on chain."""

    key: bytes
    requester: bytes
    round: int
    task: Task
    seed: int
    dataset: str
    height: int
    state: str = "open"
    provider: bytes = b""
    price: float = 0.0
    alloc_height: int = 0
    result: bytes = b""
    meta: bytes = b""
    sizes: tuple[int, int] = (0, 0)
    verdict: str = ""
    signers: tuple[int, ...] = ()
    dissent: tuple[int, ...] = ()
    rtt_ms: tuple[float, ...] = ()
    completion_ms: tuple[float, ...] = ()
    settled_height: int = 0
    paid: int = 0
    penalty: int = 0


@dataclass(frozen=True)
class Book:
    """The contract's view of the chain at one block."""

    providers: Mapping[bytes, Provider] = field(default_factory=dict)
    tasks: Mapping[bytes, Entry] = field(default_factory=dict)
    windows: tuple[int, ...] = ()
    faults: Mapping[bytes, int] = field(default_factory=dict)
    earned: Mapping[bytes, int] = field(default_factory=dict)
    penalties: Mapping[bytes, int] = field(default_factory=dict)
    privacy: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    hosts: Mapping[bytes, tuple[bytes, ...]] = field(default_factory=dict)
    closed: Mapping[bytes, Entry] = field(default_factory=dict)
    """Settled tasks kept ``dispute_blocks`` blocks (or while disputed), so a party can contest them."""
    disputes: Mapping[bytes, Dispute] = field(default_factory=dict)
    expect: frozenset[bytes] = frozenset()
    """The tasks a pending window waits for: the allocation comes in the block after the last of them landed
    (docs/adr/0174); empty for a window the leader shut (the next block allocates)."""

    # ------------------------------------------------------------------ derived views
    def load(self) -> dict[bytes, float]:
        """Units each provider holds for tasks allocated and not yet decided."""
        out: dict[bytes, float] = {}
        for e in self.tasks.values():
            if e.state == "allocated":
                out[e.provider] = out.get(e.provider, 0.0) + e.task.units
        return out

    def bonded(self, state: State) -> list[tuple[bytes, Provider]]:
        """Registered providers whose bond covers one SLA penalty, in registration order."""
        out = []
        for acct, prof in self.providers.items():
            bond = state.escrows.get(bond_id(acct))
            if bond is not None and bond.arbiter == CONTRACT and bond.payer == acct \
                    and bond.amount >= floor_units(prof.penalty):
                out.append((acct, prof))
        return out

    # ------------------------------------------------------------------ admission
    def admit(self, state: State, env: Envelope, rules: Rules) -> None:
        """The market's rules for one cloudchain record against the book and ``state`` (the head).

        Raises:
            Refuse: with a coded reason (``no-stake``, ``bad-profile``, ``bad-task``, ``duplicate-task``,
                ``unservable``, ``budget-spent``, ``not-authorised``, ``contract-only``, ``unknown-task``,
                ``not-assigned``, ``oversize``, ``decided``, ``bad-quorum``). A late result from a provider, or a
                second quorum from an oracle, is let through: the book ignores it, and refusing it would leave
                its sender's later transactions behind a nonce gap.
        """
        if env.type != "tx/record" or env.market != msg.MARKET:
            return
        kind, data = env.body["kind"], env.body["data"]
        if kind == msg.REGISTER:
            if state.stakes.get(env.sender, 0) <= 0:
                raise Refuse("no-stake", "a provider registers only with stake on the ledger")
            profile_of(env.sender, data)
        elif kind == msg.TASK:
            self._admit_task(env, data, rules)
        elif kind == msg.WINDOW:
            if env.sender != rules.leader:
                raise Refuse("not-authorised", "only the round leader closes a submission window")
            expect = data.get("expect")
            if expect is not None and not (isinstance(expect, list) and len(expect) <= MAX_EXPECT and all(
                    isinstance(k, bytes) and len(k) == 32 for k in expect)):
                raise Refuse("malformed", f"a window expects at most {MAX_EXPECT} 32-byte task keys")
        elif kind == msg.AGENTS:
            agents = data.get("agents")
            if not isinstance(agents, list) or not 1 <= len(agents) <= 1000 or not all(
                    isinstance(a, bytes) and len(a) == 32 for a in agents):
                raise Refuse("bad-agents", "agents must list 1..1000 32-byte accounts")
        elif kind in CONTRACT_RECORDS:
            raise Refuse("contract-only", f"{kind} is written by the block proposer's contract, never submitted")
        elif kind == msg.RESULT:
            entry = self.tasks.get(data.get("task")) if isinstance(data.get("task"), bytes) else None
            if entry is None or entry.state != "allocated" or not entry.provider:
                if env.sender in self.providers:
                    return  # late: the task was decided without it (a no-op, so the provider's nonces go on)
                raise Refuse("not-assigned", "a result comes from the task's provider while the task is open")
            if entry.provider != env.sender:
                raise Refuse("not-assigned", "a result comes from the task's provider while the task is open")
            sizes = data.get("sizes")
            if not (isinstance(sizes, list) and len(sizes) == 2 and all(isinstance(s, int) and 0 < s <= msg.MAX_BLOB
                                                                       for s in sizes)):
                raise Refuse("oversize", f"blob sizes must be 1..{msg.MAX_BLOB} bytes")
            for k in ("model", "meta"):
                if not isinstance(data.get(k), bytes) or len(data[k]) != 32:
                    raise Refuse("bad-result", f"{k} must be a 32-byte hash")
        elif kind == msg.QUORUM:
            entry = self.tasks.get(data.get("task")) if isinstance(data.get("task"), bytes) else None
            if entry is None or entry.state != "allocated":
                if env.sender in rules.oracles:
                    return  # another aggregator was first (a no-op, so the oracle's nonces go on)
                raise Refuse("decided" if entry is not None else "unknown-task",
                             "the task is not awaiting a verdict")
            check_quorum(data, entry, rules, state)
        elif kind == msg.DISPUTE:
            self._admit_dispute(state, env, data, rules)
        elif kind == msg.RULING:
            task = data.get("task")
            dispute = self.disputes.get(task) if isinstance(task, bytes) else None
            done = self.closed.get(task) if isinstance(task, bytes) else None
            if dispute is None or dispute.ruling or done is None:
                if env.sender in rules.oracles:
                    return  # another aggregator was first (a no-op)
                raise Refuse("unknown-task", "no open dispute on this task")
            check_quorum(data, done, rules, state, prefix=msg.RULING_PREFIX)
        elif kind == msg.CLOSE:
            if env.sender != rules.leader:
                raise Refuse("not-authorised", "only the round leader closes a round")
        else:
            raise Refuse("unknown-record", f"no cloudchain record {kind!r}")

    def _admit_dispute(self, state: State, env: Envelope, data: dict[str, Any], rules: Rules) -> None:
        task, claim = data.get("task"), data.get("claim")
        done = self.closed.get(task) if isinstance(task, bytes) else None
        if done is None:
            raise Refuse("bad-dispute", "no settled task under this key within the dispute window")
        if env.sender not in (done.requester, done.provider):
            raise Refuse("not-authorised", "only the task's requester or provider may contest its verdict")
        if task in self.disputes:
            raise Refuse("bad-dispute", "the task is already contested")
        if claim not in msg.VERDICTS or claim == done.verdict:
            raise Refuse("bad-dispute", f"the claim must be another verdict than {done.verdict!r}")
        if state.height + 1 > done.settled_height + rules.dispute_blocks:
            closes = done.settled_height + rules.dispute_blocks
            raise Refuse("bad-dispute", f"the dispute window closed at height {closes}")

    def _admit_task(self, env: Envelope, data: dict[str, Any], rules: Rules) -> None:
        task, _, dataset = task_of(data)
        if task_key(env.sender, task.id) in self.tasks:
            raise Refuse("duplicate-task", f"task {task.id!r} is already on chain")
        servers = [p for p in self.providers.values() if eligible(task, p)]
        if not servers:
            raise Refuse("unservable", f"task {task.id!r}: no registered provider can serve {task.units:g} units "
                                       f"at ≤ {task.max_price:g} tokens/unit within latency {task.sla.latency_ms:g} ms "
                                       f"and availability {task.sla.availability:g}")
        if task.epsilon is not None:
            from bazaar.mechanisms.cloudchain.privacy import BudgetExceeded

            try:
                self.accountant(env.sender, dataset, rules).check(task.id, *privacy_cost(task, rules))
            except BudgetExceeded as err:
                raise Refuse("budget-spent", str(err)) from err

    def accountant(self, requester: bytes, dataset: str, rules: Rules) -> Any:
        """The privacy accountant of one requester's dataset with every private task it already ran."""
        from bazaar.mechanisms.cloudchain.privacy import PrivacyAccountant

        acc = PrivacyAccountant(rules.dp_budget, rules.dp_delta)
        for sigma, steps in self.privacy.get(requester.hex() + "/" + dataset, ()):
            acc.spend("earlier", sigma, steps)
        return acc

    # ------------------------------------------------------------------ folding blocks
    def apply(self, parent: State, txs: Sequence[Envelope], proposer: bytes, height: int, rules: Rules) -> Book:
        """The book after a block with (decoded) transactions ``txs`` on ``parent``.

        A task is funded when its contract escrow is locked in the block or held in ``parent``; the state after
        the block answers the same (no contract moves a task escrow in the block that posts the task), so a
        node that imported a certified block without the checks folds it with its new head state."""
        providers = dict(self.providers)
        tasks = dict(self.tasks)
        windows = list(self.windows)
        faults, earned, penalties = dict(self.faults), dict(self.earned), dict(self.penalties)
        privacy = dict(self.privacy)
        hosts = dict(self.hosts)
        closed, disputes = dict(self.closed), dict(self.disputes)
        expect = self.expect
        locks = {t.body["id"]: t for t in txs if t.type == "tx/escrow_lock" and t.market == msg.MARKET}
        for env in txs:
            if env.type != "tx/record" or env.market != msg.MARKET:
                continue
            kind, data = env.body["kind"], env.body["data"]
            if kind == msg.REGISTER:
                providers[env.sender] = profile_of(env.sender, data)
            elif kind == msg.TASK:
                task, seed, dataset = task_of(data)
                key = task_key(env.sender, task.id)
                if key in tasks:
                    continue
                if _funded(locks.get(key), parent.escrows.get(key), env.sender, task_escrow(task, rules.oracle_fee)):
                    tasks[key] = Entry(key, env.sender, env.round, task, seed, dataset, height)
            elif kind == msg.WINDOW:
                windows.append(env.round)
                keys = data.get("expect")
                expect = frozenset(k for k in keys if isinstance(k, bytes)) if isinstance(keys, list) else frozenset()
            elif kind == msg.AGENTS:
                hosts[env.sender] = tuple(data["agents"])
            elif kind == msg.DISPUTE:
                key = data["task"]
                done = closed.get(key)
                dep = dispute_id(key, env.sender)
                funded = _funded(locks.get(dep), parent.escrows.get(dep), env.sender, rules.dispute_deposit)
                if done is not None and key not in disputes and funded:
                    disputes[key] = Dispute(key, env.sender, str(data["claim"]), height)
            elif kind == msg.RULING:
                d = disputes.get(data["task"])
                if d is not None and not d.ruling:
                    disputes[d.task] = replace(d, ruling=str(data["verdict"]), signers=tuple(data["signers"]),
                                               dissent=tuple(int(x[0]) for x in data["dissent"]))
            elif kind == msg.RESETTLE and env.sender == proposer:
                for row in data["tasks"]:
                    key, ruling, delta = row[0], str(row[1]), int(row[2])
                    d, done = disputes.pop(key, None), closed.pop(key, None)
                    if d is None or done is None or not ruling:
                        continue
                    if delta > 0:
                        earned[done.provider] = earned.get(done.provider, 0) + delta
                    elif delta < 0:
                        penalties[done.provider] = penalties.get(done.provider, 0) - delta
                    if ruling != done.verdict:  # the quorum that signed the overturned verdict erred
                        for idx in done.signers:
                            faults[rules.oracles[idx]] = faults.get(rules.oracles[idx], 0) + 1
            elif kind == msg.ALLOC and env.sender == proposer:
                for key, prov, price in zip(data["tasks"], data["providers"], data["prices"], strict=True):
                    e = tasks[key]
                    if prov:
                        tasks[key] = replace(e, state="allocated", provider=prov, price=float(price),
                                             alloc_height=height)
                        if e.task.epsilon is not None:
                            slot = e.requester.hex() + "/" + e.dataset
                            privacy[slot] = (*privacy.get(slot, ()), privacy_cost(e.task, rules))
                    else:
                        del tasks[key]  # unserved: refunded in this very block
                # a window stays pending while tasks are left open for the next block (MAX_ALLOC_TASKS)
                windows = windows if any(e.state == "open" for e in tasks.values()) else []
                expect = frozenset()  # an allocation ran: what the window waited for had landed
            elif kind == msg.RESULT:
                r = tasks.get(data["task"])
                if r is not None and r.state == "allocated" and not r.result:
                    tasks[r.key] = replace(r, result=data["model"], meta=data["meta"],
                                           sizes=(int(data["sizes"][0]), int(data["sizes"][1])))
            elif kind == msg.QUORUM:
                q = tasks.get(data["task"])
                if q is not None and q.state == "allocated":
                    tasks[q.key] = replace(q, state="decided", verdict=data["verdict"],
                                           signers=tuple(data["signers"]),
                                           dissent=tuple(int(d[0]) for d in data["dissent"]),
                                           rtt_ms=tuple(float(x) for x in data["rtt_ms"]),
                                           completion_ms=tuple(float(x) for x in data["completion_ms"]))
            elif kind == msg.SETTLE and env.sender == proposer:
                for row in data["tasks"]:
                    key, paid, penalty = row[0], int(row[2]), int(row[3])
                    if key not in tasks:
                        continue
                    done = tasks.pop(key)
                    closed[key] = replace(done, state="closed", verdict=str(row[1]) if done.state != "decided"
                                          else done.verdict, settled_height=height, paid=paid, penalty=penalty)
                    if paid:
                        earned[done.provider] = earned.get(done.provider, 0) + paid
                    if penalty:
                        penalties[done.provider] = penalties.get(done.provider, 0) + penalty
                    for idx in done.dissent:
                        o = rules.oracles[idx]
                        faults[o] = faults.get(o, 0) + 1
        closed = {k: e for k, e in closed.items() if height <= e.settled_height + rules.dispute_blocks or k in disputes}
        return Book(providers, tasks, tuple(windows), faults, earned, penalties, privacy, hosts, closed, disputes,
                    expect)

    # ------------------------------------------------------------------ the contract
    def allocation(self, state: State, task_expiry: int, locked: Mapping[bytes, int] | None = None
                   ) -> tuple[list[Entry], list[bytes], Allocation, list[Entry]] | None:
        """The allocation the next block must carry (None: no window is pending or nothing is open): every open
        task, ordered by round and task id (never by arrival, which a proposer could influence), over the bonded
        providers in registration order — and, last, the open tasks left unserved because their escrow would not
        outlive their settlement (the ledger refunds an escrow at ``expires + 1`` on its own, docs/ledger.md §End
        of block; a task allocated now is settled at the latest at ``height + task_expiry + 1``)."""
        if not self.windows or any(k not in self.tasks and k not in self.closed for k in self.expect):
            return None  # no window pending, or one waits for tasks still to land
        # the first MAX_ALLOC_TASKS in that order (nsmallest is sorted(...)[:n], ties included, without sorting
        # every open task per block); the rest in the next block(s): one block must fit one gossip message
        open_ = heapq.nsmallest(MAX_ALLOC_TASKS, (e for e in self.tasks.values() if e.state == "open"),
                                key=lambda e: (e.round, e.task.id))
        if not open_:
            return None
        settle_by = state.height + 1 + task_expiry
        locked = locked or {}

        def expires(key: bytes) -> int | None:  # a task escrow held, or locked earlier in the block itself
            esc = state.escrows.get(key)
            return esc.expires if esc is not None else locked.get(key)

        batch = [e for e in open_ if (x := expires(e.key)) is not None and x >= settle_by]
        kept = {e.key for e in batch}  # by key, not dataclass equality: 150 x 150 field-by-field comparisons
        stale = [e for e in open_ if e.key not in kept]
        bonded = self.bonded(state)
        load = self.load()
        accts = [a for a, _ in bonded]
        alloc = allocate([e.task for e in batch], [p for _, p in bonded], [load.get(a, 0.0) for a in accts])
        return batch, accts, alloc, stale

    def contract_work(self, state: State, rules: Rules, txs: Sequence[Envelope] = ()
                      ) -> list[tuple[str, dict[str, Any]]]:
        """The contract's transactions for the block on ``state``, in order: the allocation (and the refunds of
        unserved tasks), then the settlement of every decided or expired task (and its escrow moves), then the
        resettlement of ruled disputes.

        ``txs``: the transactions the block carries before the contract's, in block order. The allocation and the
        settlement read this book with the block's own task, window and quorum records (and task escrow locks)
        applied: a window whose tasks land in the block is allocated in it (docs/adr/0187), a task a quorum record
        among them decides is settled in it (docs/adr/0186). The disputes read this book alone.

        Kept on the book for the last head and quorum records it was asked for (a node derives it when it
        proposes on this book and again when it checks the block; each pass reads every task): callers only
        read it."""
        read = [t for t in txs if t.market == msg.MARKET and (
            (t.type == "tx/record" and t.body["kind"] in BLOCK_READ) or t.type == "tx/escrow_lock")]
        key = (state.head, tuple((t.sender, t.body["nonce"]) for t in read))
        kept = self.__dict__.get("_work")
        if kept is not None and kept[0] == key and kept[1] is rules:
            return kept[2]  # type: ignore[no-any-return]
        mid = self.apply(state, read, b"", state.height + 1, rules) if read else self
        out = self._contract_work(state, rules, mid, locked_in(read))
        self.__dict__["_work"] = (key, rules, out)
        return out

    def _contract_work(self, state: State, rules: Rules, mid: Book, locked: Mapping[bytes, int]
                       ) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        planned = mid.allocation(state, rules.task_expiry, locked)
        if planned is not None:
            batch, accts, alloc, stale = planned
            provs = [accts[i] if i >= 0 else b"" for i in alloc.assignment] + [b""] * len(stale)
            out.append(("record", {"kind": msg.ALLOC, "data": {
                "rounds": sorted(set(mid.windows)), "tasks": [e.key for e in (*batch, *stale)], "providers": provs,
                "prices": [float(p) for p in alloc.prices] + [0.0] * len(stale), "objective": float(alloc.objective)}}))
            for e, prov in zip((*batch, *stale), provs, strict=True):
                if not prov and (e.key in state.escrows or e.key in locked):
                    out.append(("escrow_refund", {"id": e.key}))
        rows: list[list[Any]] = []
        moves: list[tuple[str, dict[str, Any]]] = []
        bonds: dict[bytes, int] = {}
        for e in mid.tasks.values():  # this book's tasks, as the block's own records left them
            expired = e.state == "allocated" and state.height + 1 > e.alloc_height + rules.task_expiry
            if e.state != "decided" and not expired:
                continue
            escrow = state.escrows.get(e.key)
            verdict = e.verdict if e.state == "decided" else "expired"
            paid = penalty = fee_paid = 0
            if escrow is None:  # the payer took it back after expiry: nothing to move
                rows.append([e.key, verdict, 0, 0, 0])
                continue
            to: dict[bytes, int] = {}
            if verdict == "met":
                paid = min(floor_units(e.price * e.task.units), escrow.amount)
                to[e.provider] = paid
            if verdict != "expired":
                fee = min(floor_units(rules.oracle_fee), escrow.amount - paid)
                payees = [rules.oracles[i] for i in e.signers
                          if self.faults.get(rules.oracles[i], 0) < rules.max_faults]
                if payees and fee:
                    share = fee // len(payees)
                    for o in payees:
                        to[o] = to.get(o, 0) + share
                    fee_paid = share * len(payees)
            moves.append(("escrow_split", {"id": e.key, "to": {k: v for k, v in to.items() if v > 0}}))
            if verdict in ("late", "missing", "wrong"):
                prof = self.providers.get(e.provider)
                bond = state.escrows.get(bond_id(e.provider))
                left = (bond.amount if bond is not None else 0) - bonds.get(e.provider, 0)
                lam = prof.penalty * (rules.wrong_factor if verdict == "wrong" else 1.0) if prof else 0.0
                penalty = max(0, min(floor_units(lam), left))
                if penalty:
                    bonds[e.provider] = bonds.get(e.provider, 0) + penalty
                    moves.append(("escrow_take", {"id": bond_id(e.provider), "to": {e.requester: penalty}}))
            rows.append([e.key, verdict, paid, penalty, fee_paid])
        if rows:
            out.append(("record", {"kind": msg.SETTLE, "data": {"tasks": rows}}))
            out.extend(moves)
        out.extend(self._resettle(state, rules, bonds))
        return out

    def _resettle(self, state: State, rules: Rules, bonds: dict[bytes, int]) -> list[tuple[str, dict[str, Any]]]:
        """Settle every ruled dispute by the difference between what the ruling's verdict pays and what the
        original settlement paid — taken from the side that owes it (its bond: the losing side's stake) — and pay
        the deposit back to an upheld disputer or over to its counterparty. A dispute no ruling settles within
        ``task_expiry`` blocks returns its deposit."""
        rows: list[list[Any]] = []
        moves: list[tuple[str, dict[str, Any]]] = []
        for key, d in self.disputes.items():
            done = self.closed.get(key)
            if done is None:
                continue
            deposit = state.escrows.get(dispute_id(key, d.disputer))
            if not d.ruling:
                if state.height + 1 > d.height + rules.task_expiry:
                    rows.append([key, "", 0])
                    if deposit is not None:
                        moves.append(("escrow_split", {"id": dispute_id(key, d.disputer), "to": {}}))
                continue
            prof = self.providers.get(done.provider)
            paid = floor_units(done.price * done.task.units) if d.ruling == "met" else 0
            lam = prof.penalty * (rules.wrong_factor if d.ruling == "wrong" else 1.0) if prof else 0.0
            penalty = floor_units(lam) if d.ruling in ("late", "missing", "wrong") else 0
            delta = (paid - done.paid) - (penalty - done.penalty)  # > 0: the requester owes the provider
            debtor, creditor = (done.requester, done.provider) if delta > 0 else (done.provider, done.requester)
            bond = state.escrows.get(bond_id(debtor))
            left = (bond.amount if bond is not None else 0) - bonds.get(debtor, 0)
            taken = max(0, min(abs(delta), left))
            if taken:
                bonds[debtor] = bonds.get(debtor, 0) + taken
                moves.append(("escrow_take", {"id": bond_id(debtor), "to": {creditor: taken}}))
            if deposit is not None:
                upheld = d.ruling == d.claim
                other = done.provider if d.disputer == done.requester else done.requester
                moves.append(("escrow_split", {"id": dispute_id(key, d.disputer),
                                               "to": {} if upheld else {other: deposit.amount}}))
            rows.append([key, d.ruling, taken if delta > 0 else -taken])
        if not rows:
            return []
        return [("record", {"kind": msg.RESETTLE, "data": {"tasks": rows}}), *moves]


BLOCK_READ = frozenset({msg.TASK, msg.WINDOW, msg.QUORUM})
"""The records of a block that its own contract work reads (docs/adr/0186, 0187)."""


def locked_in(txs: Sequence[Envelope]) -> dict[bytes, int]:
    """Escrow id -> expiry of the cloudchain contract escrows that ``txs`` lock."""
    return {t.body["id"]: int(t.body["expires"]) for t in txs
            if t.type == "tx/escrow_lock" and t.market == msg.MARKET and t.body.get("arbiter") == CONTRACT}


def _funded(lock: Envelope | None, held: Any, payer: bytes, need: int) -> bool:
    """Whether ``payer`` funds a contract escrow of at least ``need``: locked in the block (``lock``) or held."""
    return (lock is not None and lock.sender == payer and lock.body.get("arbiter") == CONTRACT
            and lock.body["amount"] >= need) or \
           (held is not None and held.payer == payer and held.arbiter == CONTRACT and held.amount >= need)


TOLERATED = frozenset({"duplicate-task", "decided"})
"""Record refusals that do not invalidate a block: the book ignores such a record (a second quorum for a task a
first one decided in the same block; a task posted twice)."""


def verify_block(book: Book, parent: State, txs: Sequence[Envelope], proposer: bytes, height: int,
                 rules: Rules) -> Book:
    """Re-execute the contract on a block: its allocation, settlements and contract-escrow moves must be exactly
    what ``book`` (the parent's) derives, and every other cloudchain record must pass the market's rules, in
    block order. Returns the book after the block.

    Raises:
        InvalidBlock: ``market-contract``.
    """
    want = book.contract_work(parent, rules, _before_contract(txs, proposer, parent))
    got = contract_outputs(txs, proposer, parent)
    if codec.encode(want) != codec.encode(got):
        raise InvalidBlock("market-contract", f"the block's contract transactions differ from the re-executed "
                                              f"contract ({len(got)} carried, {len(want)} derived)")
    verify_signatures_together(parent, txs, rules)
    running = book
    for t in txs:
        if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] not in CONTRACT_RECORDS:
            try:
                running.admit(parent, t, rules)
            except Refuse as err:
                if err.reason not in TOLERATED:
                    raise InvalidBlock("market-contract", f"{t.body['kind']}: {err.reason}: {err.detail}") from err
            running = running.apply(parent, [t], proposer, height, rules)
    return book.apply(parent, txs, proposer, height, rules)


def _is_contract_output(t: Envelope, proposer: bytes, parent: State, locked: Mapping[bytes, int]) -> bool:
    if t.type == "tx/record" and t.market == msg.MARKET:
        return bool(t.body["kind"] in CONTRACT_RECORDS)
    if t.type in ESCROW_MOVES and t.sender == proposer:
        escrow = parent.escrows.get(t.body["id"])
        return (escrow is not None and escrow.arbiter == CONTRACT) or (escrow is None and t.body["id"] in locked)
    return False


def _before_contract(txs: Sequence[Envelope], proposer: bytes, parent: State) -> Sequence[Envelope]:
    """The block's transactions before its first contract transaction: the ones the contract's work may read (a
    record placed after the contract's transactions is acted on in the next block, as a proposer never builds
    it)."""
    locked = locked_in(txs)
    for i, t in enumerate(txs):
        if _is_contract_output(t, proposer, parent, locked):
            return txs[:i]
    return txs


def contract_outputs(txs: Sequence[Envelope], proposer: bytes, parent: State) -> list[tuple[str, dict[str, Any]]]:
    """The contract transactions a block carries: the proposer's ``alloc`` and ``settle`` records and every move of
    a cloudchain contract escrow, in block order, without their nonces."""
    out: list[tuple[str, dict[str, Any]]] = []
    locked = locked_in(txs)
    for t in txs:
        if _is_contract_output(t, proposer, parent, locked):
            if t.type == "tx/record":
                out.append(("record", {"kind": t.body["kind"], "data": t.body["data"]}))
            else:
                out.append((t.type[3:], {k: v for k, v in t.body.items() if k != "nonce"}))
    return out


def quorum_claims(data: dict[str, Any], rules: Rules, state: State,
                  prefix: str = "") -> list[tuple[list[bytes], bytes, bytes]]:
    """The BLS signatures a quorum (or ruling) record carries, as ``(keys, message, signature)`` claims: its t
    signers' aggregate first, then one per dissent row (an oracle that signed another verdict).

    Raises:
        Refuse: ``bad-quorum`` (a malformed record, too few distinct signers, an oracle without a BLS key).
    """
    try:
        verdict, result = data["verdict"], data["result"]
        signers = [int(i) for i in data["signers"]]
        rtt, done = list(data["rtt_ms"]), list(data["completion_ms"])
        dissent = list(data["dissent"])
        sig, task = data["sig"], data["task"]
    except (KeyError, TypeError, ValueError) as err:
        raise Refuse("bad-quorum", f"malformed quorum record: {err}") from err
    if verdict not in msg.VERDICTS or not isinstance(result, bytes) or not isinstance(sig, bytes) \
            or not isinstance(task, bytes):
        raise Refuse("bad-quorum", f"unknown verdict {verdict!r} or malformed task/result/signature")
    if len(set(signers)) != len(signers) or len(signers) < rules.quorum \
            or any(not 0 <= i < len(rules.oracles) for i in signers):
        raise Refuse("bad-quorum", f"{len(set(signers))} distinct oracles < quorum {rules.quorum}")
    if len(rtt) != len(signers) or len(done) != len(signers):
        raise Refuse("bad-quorum", "one measurement per signer")

    def key(i: int) -> bytes:
        pk = state.validators.get(rules.oracles[i])
        if pk is None:
            raise Refuse("bad-quorum", f"oracle {i} has no BLS key on the ledger")
        return pk

    claims = [([key(i) for i in signers], msg.verdict_message(rules.network_id, task, prefix + verdict, result), sig)]
    for d in dissent:
        if not (isinstance(d, list) and len(d) == 4):
            raise Refuse("bad-quorum", "dissent rows are [oracle, verdict, result, signature]")
        i, v, r, s = d
        if not isinstance(i, int) or not 0 <= i < len(rules.oracles) or i in signers or v == verdict \
                or not isinstance(v, str) or not isinstance(r, bytes) or not isinstance(s, bytes):
            raise Refuse("bad-quorum", "a dissent row must name another oracle and another verdict")
        claims.append(([key(i)], msg.verdict_message(rules.network_id, task, prefix + v, r), s))
    return claims


def check_quorum(data: dict[str, Any], entry: Entry, rules: Rules, state: State, prefix: str = "") -> None:
    """A quorum record: t distinct oracles whose aggregated BLS signature verifies the verdict on ``entry``,
    measurements for each signer, and dissent (oracles that signed another verdict) that verifies too.

    Raises:
        Refuse: ``bad-quorum``.
    """
    claims = quorum_claims(data, rules, state, prefix)
    if data["task"] != entry.key:
        raise Refuse("bad-quorum", "the record names another task")
    want = b"" if data["verdict"] == "missing" else entry.result  # a ruling names the settled result
    if data["result"] != want or (data["verdict"] != "missing" and not entry.result):
        raise Refuse("bad-quorum", "the verdict names another result than the provider posted")
    if not bls.fast_aggregate_verify(*claims[0]):
        raise Refuse("bad-quorum", "the aggregated BLS signature does not verify")
    if not all(bls.verify(keys[0], message, sig) for keys, message, sig in claims[1:]):
        raise Refuse("bad-quorum", "a dissenting attestation does not verify")


def verify_signatures_together(parent: State, txs: Sequence[Envelope], rules: Rules) -> None:
    """Check the BLS signatures of a block's quorum and ruling records in one batch (docs/adr/0190), so that each
    record's own check (:func:`check_quorum`) finds them remembered. A malformed record or a batch that fails
    changes nothing: the records' own checks find and name the bad one."""
    claims: list[tuple[list[bytes], bytes, bytes]] = []
    for t in txs:
        if t.type == "tx/record" and t.market == msg.MARKET and t.body["kind"] in (msg.QUORUM, msg.RULING) \
                and isinstance(t.body.get("data"), dict):
            with contextlib.suppress(Refuse):
                prefix = msg.RULING_PREFIX if t.body["kind"] == msg.RULING else ""
                claims += quorum_claims(t.body["data"], rules, parent, prefix)
    if len(claims) > 1:
        bls.verify_batch(claims)


def profile_of(sender: bytes, data: dict[str, Any]) -> Provider:
    """A provider's registered profile.

    Raises:
        Refuse: ``bad-profile``.
    """
    try:
        p = Provider(name=str(data["name"]), kind=str(data["kind"]), capacity=float(data["capacity"]),
                     price=float(data["price"]), reliability=float(data["reliability"]),
                     latency_ms=float(data["latency_ms"]), penalty=float(data["penalty"]),
                     read_mbps=float(data["read_mbps"]), write_mbps=float(data["write_mbps"]),
                     commit_s=float(data["commit_s"]))
    except (KeyError, TypeError, ValueError) as err:
        raise Refuse("bad-profile", f"malformed profile: {err}") from err
    nums = (p.capacity, p.price, p.latency_ms, p.penalty, p.read_mbps, p.write_mbps)
    if not all(math.isfinite(x) and x > 0 for x in nums) or not 0 < p.reliability <= 1 \
            or not math.isfinite(p.commit_s) or p.commit_s < 0 or p.kind not in ("enterprise", "community"):
        raise Refuse("bad-profile", "capacity, price, latency, penalty and bandwidths must be > 0, reliability in "
                                    "(0, 1], kind enterprise or community")
    return p


def profile_data(p: Provider) -> dict[str, Any]:
    """The record data registering ``p``."""
    return {"name": p.name, "kind": p.kind, "capacity": p.capacity, "price": p.price, "reliability": p.reliability,
            "latency_ms": p.latency_ms, "penalty": p.penalty, "read_mbps": p.read_mbps,
            "write_mbps": p.write_mbps, "commit_s": p.commit_s}


def task_data(task: Task, seed: int, dataset: str) -> dict[str, Any]:
    """The record data posting ``task``."""
    return {"id": task.id, "kind": task.kind, "units": task.units, "max_price": task.max_price,
            "value": task.value, "latency_ms": task.sla.latency_ms, "availability": task.sla.availability,
            "deadline_s": task.sla.deadline_s, "epsilon": task.epsilon, "delta": task.delta, "seed": seed,
            "dataset": dataset}


def task_of(data: dict[str, Any]) -> tuple[Task, int, str]:
    """``(task, job seed, dataset)`` from a task record.

    Raises:
        Refuse: ``bad-task``.
    """
    try:
        eps, delta = data["epsilon"], data["delta"]
        task = Task(id=str(data["id"]), kind=str(data["kind"]), units=float(data["units"]),
                    max_price=float(data["max_price"]), value=float(data["value"]),
                    sla=Sla(latency_ms=float(data["latency_ms"]), availability=float(data["availability"]),
                            deadline_s=float(data["deadline_s"])),
                    epsilon=None if eps is None else float(eps), delta=None if delta is None else float(delta))
        seed, dataset = int(data["seed"]), str(data["dataset"])
    except (KeyError, TypeError, ValueError) as err:
        raise Refuse("bad-task", f"malformed task: {err}") from err
    nums = (task.units, task.max_price, task.sla.latency_ms, task.sla.deadline_s)
    if not task.id or len(task.id) > 64 or task.kind not in KINDS or not 0 <= seed < 2**32 or len(dataset) > 32:
        raise Refuse("bad-task", "id 1..64 chars, kind training|inference|preprocessing, seed < 2^32")
    if not all(math.isfinite(x) and x > 0 for x in nums) or task.units > MAX_UNITS \
            or not 0 < task.sla.availability <= 1 or not math.isfinite(task.value) or task.value < 0:
        raise Refuse("bad-task", f"task {task.id!r}: units, price, latency and deadline must be > 0 (units ≤ "
                                 f"{MAX_UNITS:g}), availability in (0, 1]")
    if (task.epsilon is None) != (task.delta is None) or (task.epsilon is not None and not (
            task.epsilon > 0 and task.delta is not None and 0 < task.delta < 1)):
        raise Refuse("bad-task", f"task {task.id!r}: a private task gives epsilon > 0 and 0 < delta < 1")
    return task, seed, dataset


def privacy_cost(task: Task, rules: Rules) -> tuple[float, int]:
    """``(noise multiplier, steps)`` a private task's training spends (what the accountant composes)."""
    from bazaar.mechanisms.cloudchain.jobs import training_steps
    from bazaar.mechanisms.cloudchain.privacy import gaussian_sigma

    steps = training_steps(task.units)
    assert task.epsilon is not None and task.delta is not None
    sigma = gaussian_sigma(task.epsilon, task.delta, rules.clip, steps)
    return sigma / rules.clip, steps
