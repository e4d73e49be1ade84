"""Market cloudchain: the contract on a real ledger (tests/ledger/helpers.Net) — admission of every record, the
proposer's allocation and settlement re-derived by every validator, the quorum's BLS aggregate, penalties from
the bond, conservation — and the in-memory network: rounds settle as the offline contract allocates, a slow
provider is penalised by the quorum while a lying oracle moves no money, a wrong result is caught, a silent
provider's requester is refunded, a requester cannot withhold a verified payment."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from bazaar.deploy import scenario_file
from bazaar.ledger import bls
from bazaar.ledger.amounts import UNIT
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.txs import decode_tx
from bazaar.mechanisms.cloudchain.contract import allocate
from bazaar.mechanisms.cloudchain.model import Provider, Sla, Task
from bazaar.node.markets.cloudchain.book import (
    CONTRACT,
    Book,
    Rules,
    bond_id,
    dispute_id,
    profile_data,
    task_data,
    task_escrow,
    task_key,
    verify_block,
)
from bazaar.node.markets.cloudchain.common import probe_window, results_complete, window_complete
from bazaar.node.markets.cloudchain.config import agent_names, market_config, provider_profiles, round_tasks
from bazaar.node.markets.context import Refuse
from bazaar.node.memnet import open_memory_network
from bazaar.node.runtime import Node
from bazaar.node.scenario import load_scenario
from bazaar.protocol import Envelope, seal
from bazaar.protocol.markets import cloudchain as msg
from tests.ledger.helpers import NID, Net

M = "cloudchain"


# ---------------------------------------------------------------------------------------------------- the contract
def _provider(name: str, price: float) -> Provider:
    return Provider(name=name, kind="enterprise", capacity=20.0, price=price, reliability=0.999, latency_ms=50.0,
                    penalty=0.1, read_mbps=100.0, write_mbps=50.0, commit_s=0.01)


TASK = Task(id="job-1", kind="training", units=5.0, max_price=0.02, value=0.05,
            sla=Sla(latency_ms=200.0, availability=0.9, deadline_s=5.0))


class Chain:
    """A ledger (Net) and the cloudchain book folded beside it, every block checked by the contract."""

    def __init__(self) -> None:
        self.net = Net("pos")
        self.rules = Rules(network_id=NID, oracles=tuple(v.public for v in self.net.validators),
                           leader=self.net.acct("dave"), quorum=2, oracle_fee=0.003, wrong_factor=3.0, max_faults=3,
                           task_expiry=20, dp_budget=8.0, dp_delta=1e-5, clip=1.0)
        self.book = Book()

    def label_of(self, account: bytes) -> str:
        return next(k for k, v in self.net.keys.items() if v.public == account)

    def proposer(self) -> str:
        key, _ = self.net.proposer_and_proof(self.net.state)
        return self.label_of(key.public)

    def work(self, txs: list[bytes] = ()) -> list[bytes]:  # type: ignore[assignment]
        """The contract's transactions signed by the next block's proposer, for a block that carries ``txs``."""
        who = self.proposer()
        return [self.net.tx(who, kind, market=M, **body) for kind, body in self.book.contract_work(
            self.net.state, self.rules, [decode_tx(raw, NID) for raw in txs])]

    def block(self, txs: list[bytes], *, contract: list[bytes] | None = None) -> None:
        """Commit a block of ``txs`` plus the contract's transactions, checked as a validator would."""
        parent = self.net.state
        carried = self.work(txs) if contract is None else contract
        block, _, rejected = self.net.build(txs + carried)
        assert not rejected, [(r[1].reason, str(r[1])) for r in rejected]
        envs = [decode_tx(raw, NID) for raw in block.txs]
        self.book = verify_block(self.book, parent, envs, block.header.proposer, block.header.height, self.rules)
        self.net.commit(txs + carried)

    def record(self, label: str, kind: str, data: dict[str, Any]) -> bytes:
        return self.net.tx(label, "record", market=M, kind=kind, data=data)

    def admit(self, raw: bytes) -> None:
        """Admission only: the transaction is never sent, so its nonce is free again."""
        self.net._nonces.clear()
        self.book.admit(self.net.state, decode_tx(raw, NID), self.rules)


def _registered() -> Chain:
    c = Chain()
    c.block([c.net.tx("alice", "transfer", to=c.net.acct(v), amount=300_000) for v in ("v0", "v1")])
    txs = []
    for v, price in (("v0", 0.01), ("v1", 0.012)):
        txs.append(c.net.tx(v, "escrow_lock", market=M, id=bond_id(c.net.acct(v)), payee=c.net.acct(v),
                            amount=200_000, expires=10**9, arbiter=CONTRACT))
        txs.append(c.record(v, msg.REGISTER, profile_data(_provider(v, price))))
    c.block(txs)
    assert set(c.book.providers) == {c.net.acct("v0"), c.net.acct("v1")}
    return c


def _post(c: Chain, task: Task = TASK, who: str = "bob", expires: int = 500) -> bytes:
    key = task_key(c.net.acct(who), task.id)
    c.block([c.net.tx(who, "escrow_lock", market=M, id=key, payee=c.net.acct(who),
                      amount=task_escrow(task, c.rules.oracle_fee), expires=expires, arbiter=CONTRACT),
             c.record(who, msg.TASK, task_data(task, 7, "main"))])
    return key


def _allocated() -> tuple[Chain, bytes]:
    c = _registered()
    key = _post(c)
    c.block([c.record("dave", msg.WINDOW, {"tasks": 1})])  # allocated in the window's own block
    assert c.book.tasks[key].state == "allocated"
    return c, key


def _quorum(c: Chain, key: bytes, verdict: str, signers: list[int], result: bytes) -> dict[str, Any]:
    message = msg.verdict_message(NID, key, verdict, result)
    sigs = [bls.sign(c.net.bls_secret(f"v{i}"), message) for i in signers]
    return {"task": key, "verdict": verdict, "result": result, "signers": signers, "sig": bls.aggregate(sigs),
            "rtt_ms": [1.0] * len(signers), "completion_ms": [10.0] * len(signers), "dissent": []}


def test_registration_needs_stake_and_a_sane_profile() -> None:
    c = Chain()
    with pytest.raises(Refuse, match="stake") as err:
        c.admit(c.record("alice", msg.REGISTER, profile_data(_provider("alice", 0.01))))
    assert err.value.reason == "no-stake"
    bad = {**profile_data(_provider("v0", 0.01)), "capacity": -1.0}
    with pytest.raises(Refuse) as err:
        c.admit(c.record("v0", msg.REGISTER, bad))
    assert err.value.reason == "bad-profile"


def test_a_task_no_provider_can_serve_is_refused_with_its_reason() -> None:
    c = _registered()
    huge = Task(id="huge", kind="training", units=1e5, max_price=1.0, value=1.0, sla=TASK.sla)
    cheap = Task(id="cheap", kind="inference", units=1.0, max_price=0.001, value=1.0, sla=TASK.sla)
    fast = Task(id="fast", kind="inference", units=1.0, max_price=1.0, value=1.0,
                sla=Sla(latency_ms=1.0, availability=0.9, deadline_s=5.0))
    for task in (huge, cheap, fast):
        with pytest.raises(Refuse) as err:
            c.admit(c.record("bob", msg.TASK, task_data(task, 1, "main")))
        assert err.value.reason == "unservable" and task.id in err.value.detail
    with pytest.raises(Refuse) as err:
        c.admit(c.record("bob", msg.TASK, {**task_data(TASK, 1, "main"), "kind": "mining"}))
    assert err.value.reason == "bad-task"


def test_the_proposer_allocates_and_a_block_with_another_allocation_is_refused() -> None:
    c = _registered()
    key = _post(c)
    with pytest.raises(Refuse) as err:  # only the leader closes a window; only the contract allocates
        c.admit(c.record("bob", msg.WINDOW, {"tasks": 1}))
    assert err.value.reason == "not-authorised"
    window = c.record("dave", msg.WINDOW, {"tasks": 1})
    assert c.book.contract_work(c.net.state, c.rules) == []  # no window on chain: nothing to allocate
    work = c.book.contract_work(c.net.state, c.rules, [decode_tx(window, NID)])  # the window's own block
    assert [b["kind"] for k, b in work] == [msg.ALLOC]
    alloc = work[0][1]["data"]
    offline = allocate([TASK], [_provider("v0", 0.01), _provider("v1", 0.012)], [0.0, 0.0])
    assert [c.net.acct(f"v{i}") for i in offline.assignment] == alloc["providers"]
    who = c.proposer()
    forged = {**alloc, "providers": [c.net.acct("v1") if p == c.net.acct("v0") else c.net.acct("v0")
                                     for p in alloc["providers"]]}
    for contract in ([], [c.net.tx(who, "record", market=M, kind=msg.ALLOC, data=forged)]):
        parent = c.net.state
        block, _, _ = c.net.build([window, *contract])
        envs = [decode_tx(raw, NID) for raw in block.txs]
        with pytest.raises(InvalidBlock, match="contract"):
            verify_block(c.book, parent, envs, block.header.proposer, block.header.height, c.rules)
        c.net._nonces.clear()
    with pytest.raises(Refuse) as err:  # and nobody may submit the contract's records
        c.admit(c.net.tx("bob", "record", market=M, kind=msg.ALLOC, data=alloc))
    assert err.value.reason == "contract-only"
    c.block([window])  # allocated in the window's own block (docs/adr/0187)
    assert c.book.tasks[key].state == "allocated" and c.book.tasks[key].provider == c.net.acct("v0")


def test_a_large_window_is_allocated_over_several_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from bazaar.node.markets.cloudchain import book as book_mod

    monkeypatch.setattr(book_mod, "MAX_ALLOC_TASKS", 1)  # one task per block (150 in the shipped contract)
    c = _registered()
    second = Task(id="t-2", kind=TASK.kind, units=TASK.units, max_price=TASK.max_price, value=TASK.value,
                  sla=TASK.sla)
    keys = [_post(c), _post(c, second)]
    c.block([c.record("dave", msg.WINDOW, {"tasks": 2})])  # the first task (in task-id order), in the window's
    # own block; the window stays pending for the other
    assert [c.book.tasks[k].state for k in keys] == ["allocated", "open"] and c.book.windows
    c.block([])
    assert [c.book.tasks[k].state for k in keys] == ["allocated", "allocated"] and not c.book.windows


def test_a_window_that_expects_its_tasks_allocates_in_the_block_the_last_lands_in() -> None:
    c = _registered()
    second = replace(TASK, id="t-2")
    keys = [task_key(c.net.acct("bob"), t.id) for t in (TASK, second)]
    with pytest.raises(Refuse) as err:
        c.admit(c.record("dave", msg.WINDOW, {"tasks": 2, "expect": [b"short"]}))
    assert err.value.reason == "malformed"
    c.block([c.record("dave", msg.WINDOW, {"tasks": 2, "expect": keys})])  # at the day call, before any task
    assert c.book.windows and c.book.expect == frozenset(keys)
    _post(c)
    assert c.book.tasks[keys[0]].state == "open"  # one expected task still to land: no allocation
    _post(c, second)  # the allocation rides in the block of the last expected task (docs/adr/0187)
    assert [c.book.tasks[k].state for k in keys] == ["allocated", "allocated"]
    assert not c.book.windows and not c.book.expect


def test_a_window_shut_by_the_leader_allocates_what_landed_without_the_missing_task() -> None:
    c = _registered()
    key, missing = task_key(c.net.acct("bob"), TASK.id), task_key(c.net.acct("bob"), "never-posted")
    c.block([c.record("dave", msg.WINDOW, {"tasks": 2, "expect": [key, missing]})])
    _post(c)
    c.block([])
    assert c.book.tasks[key].state == "open"  # waits for the task that never lands ...
    c.block([c.record("dave", msg.WINDOW, {"tasks": 1})])  # ... until the leader shuts the window: allocated
    assert c.book.tasks[key].state == "allocated" and not c.book.expect


def test_a_quorum_pays_the_provider_and_the_oracles_and_refunds_the_rest() -> None:
    c, key = _allocated()
    entry = c.book.tasks[key]
    prov = c.label_of(entry.provider)
    model, meta = b"\x01" * 32, b"\x02" * 32
    with pytest.raises(Refuse) as err:  # only the assigned provider posts the result
        c.admit(c.record("v2", msg.RESULT, {"task": key, "model": model, "meta": meta, "sizes": [8, 8]}))
    assert err.value.reason == "not-assigned"
    with pytest.raises(Refuse) as err:
        c.admit(c.record(prov, msg.RESULT, {"task": key, "model": model, "meta": meta, "sizes": [msg.MAX_BLOB + 1, 8]}))
    assert err.value.reason == "oversize"
    c.block([c.record(prov, msg.RESULT, {"task": key, "model": model, "meta": meta, "sizes": [8, 8]})])
    for bad in (_quorum(c, key, "met", [0], model),                               # one oracle < t
                {**_quorum(c, key, "met", [0, 1], model), "verdict": "late"},      # sig of another verdict
                _quorum(c, key, "met", [0, 1], b"\x03" * 32),                      # another result
                {**_quorum(c, key, "met", [0, 1], model), "signers": [0, 2]}):     # signers that did not sign
        with pytest.raises(Refuse) as err:
            c.admit(c.record("carol", msg.QUORUM, bad))
        assert err.value.reason == "bad-quorum"
    with pytest.raises(Refuse) as err:
        c.admit(c.record("carol", msg.QUORUM, {**_quorum(c, key, "met", [0, 1], model), "task": b"\x09" * 32}))
    assert err.value.reason == "unknown-task"
    bob, provider = c.net.state.balance(c.net.acct("bob")), c.net.state.balance(entry.provider)
    quorum = _quorum(c, key, "met", [0, 1], model)
    lie = bls.sign(c.net.bls_secret("v2"), msg.verdict_message(NID, key, "late", model))
    quorum["dissent"] = [[2, "late", model, lie]]
    c.block([c.record("carol", msg.QUORUM, quorum)])  # settled in the quorum's own block (docs/adr/0186)
    assert key not in c.net.state.escrows and key not in c.book.tasks
    with pytest.raises(Refuse) as err:
        c.admit(c.record("carol", msg.QUORUM, quorum))
    assert err.value.reason == "unknown-task"
    paid = int(entry.price * TASK.units * UNIT)
    assert c.net.state.balance(entry.provider) >= provider + paid  # (+ its fee share and rewards if it proposed)
    fee = int(c.rules.oracle_fee * UNIT) // 2 * 2
    assert c.net.state.balance(c.net.acct("bob")) == bob + task_escrow(TASK, c.rules.oracle_fee) - paid - fee
    assert c.book.earned[entry.provider] == paid and c.book.faults == {c.rules.oracles[2]: 1}
    assert c.net.state.conserved()


def test_a_block_that_carries_a_quorum_without_its_settlement_is_refused() -> None:
    """docs/adr/0186: the contract settles a task in the block whose quorum record decides it, so a proposer that
    leaves the settlement for later proposes what every validator refuses."""
    c, key = _allocated()
    prov = c.label_of(c.book.tasks[key].provider)
    model = b"\x01" * 32
    c.block([c.record(prov, msg.RESULT, {"task": key, "model": model, "meta": model, "sizes": [8, 8]})])
    quorum = c.record("carol", msg.QUORUM, _quorum(c, key, "met", [0, 1], model))
    assert [b["kind"] for k, b in c.book.contract_work(c.net.state, c.rules) if k == "record"] == []
    with pytest.raises(InvalidBlock) as err:
        c.block([quorum], contract=c.work())  # the parent's work alone: no settlement
    assert err.value.reason == "market-contract"
    c.net._nonces.clear()
    c.block([quorum])
    assert key not in c.book.tasks and c.book.earned


def test_a_block_s_quorum_signatures_are_checked_in_one_batch_and_a_bad_one_is_still_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/adr/0190: a validator checks every BLS signature of a block's quorum records together; when the batch
    fails, the records' own checks name the bad one and the block is refused."""
    c = _registered()
    keys = [_post(c), _post(c, replace(TASK, id="job-2"))]
    c.block([c.record("dave", msg.WINDOW, {"tasks": 2})])
    c.block([])  # the allocation
    model = b"\x01" * 32
    c.block([c.record(c.label_of(c.book.tasks[k].provider), msg.RESULT,
                      {"task": k, "model": model, "meta": model, "sizes": [8, 8]}) for k in keys])
    quorums = []
    for k in keys:
        q = _quorum(c, k, "met", [0, 1], model)
        lie = bls.sign(c.net.bls_secret("v2"), msg.verdict_message(NID, k, "late", model))
        q["dissent"] = [[2, "late", model, lie]]
        quorums.append(q)
    batches: list[int] = []
    real = bls.FAST.batch_verify

    def counted(claims: Any, scalars: Any) -> bool:
        batches.append(len(claims))
        return real(claims, scalars)

    monkeypatch.setattr(bls.FAST, "batch_verify", counted)
    bls._VERIFIED.clear()
    forged = [quorums[0], {**quorums[1], "dissent": [[2, "late", model, quorums[0]["dissent"][0][3]]]}]
    with pytest.raises(InvalidBlock) as err:
        c.block([c.record("carol", msg.QUORUM, q) for q in forged])
    assert "a dissenting attestation does not verify" in str(err.value) and batches == [4]
    c.net._nonces.clear()
    c.block([c.record("carol", msg.QUORUM, q) for q in quorums])
    # every claim but the new dissent passed its own check above and was remembered: that one is checked alone
    assert batches == [4] and not set(keys) & set(c.book.tasks)


def test_the_day_s_probe_window_closes_at_the_call_plus_the_bound_for_every_oracle() -> None:
    """docs/adr/0191: an oracle that heard the call 80 ms after the leader stamped it waits 80 ms less."""
    assert probe_window(2000.0, 10_000, 10_000) == 2.0
    assert probe_window(2000.0, 10_000, 10_080) == pytest.approx(1.92)
    assert probe_window(2000.0, 10_000, 9_000) == 2.0  # a clock behind the leader's: never beyond the bound
    assert probe_window(2000.0, 10_000, 60_000) == 1.0  # far ahead: never under half the bound


def test_the_results_batch_is_complete_once_every_allocated_task_s_result_is_heard() -> None:
    """docs/adr/0185: the proposer of the results' block seals once every allocated task's result is in its
    mempool; a task with its result on chain is not waited for, and nothing allocated means nothing to seal."""
    c = _registered()
    assert not results_complete(c.book, set())
    first = _post(c)
    second = _post(c, replace(TASK, id="job-2"))
    c.block([c.record("dave", msg.WINDOW, {"tasks": 2})])
    c.block([])  # the allocation
    assert {c.book.tasks[k].state for k in (first, second)} == {"allocated"}
    assert not results_complete(c.book, {first})
    assert results_complete(c.book, {first, second})
    e = c.book.tasks[first]
    model = b"\x01" * 32
    c.block([c.record(c.label_of(e.provider), msg.RESULT, {"task": first, "model": model, "meta": model,
                                                           "sizes": [8, 8]})])
    assert results_complete(c.book, {second})  # the first result is on chain already
    assert window_complete(c.book, frozenset({first, second}), set())  # both tasks are on chain
    assert not window_complete(c.book, frozenset({first, b"\x07" * 32}), set())
    assert window_complete(c.book, frozenset({first, b"\x07" * 32}), {b"\x07" * 32})


@pytest.mark.parametrize(("verdict", "factor"), [("late", 1.0), ("missing", 1.0), ("wrong", 3.0)])
def test_a_violation_refunds_the_requester_and_takes_the_penalty_from_the_bond(verdict: str, factor: float) -> None:
    c, key = _allocated()
    entry = c.book.tasks[key]
    model = b"\x01" * 32
    if verdict != "missing":
        c.block([c.record(c.label_of(entry.provider), msg.RESULT,
                          {"task": key, "model": model, "meta": model, "sizes": [8, 8]})])
    bob = c.net.state.balance(c.net.acct("bob"))
    bond = c.net.state.escrows[bond_id(entry.provider)].amount
    c.block([c.record("carol", msg.QUORUM, _quorum(c, key, verdict, [1, 2], b"" if verdict == "missing" else model))])
    penalty = min(int(0.1 * factor * UNIT), bond)  # never more than the bond holds
    fee = int(c.rules.oracle_fee * UNIT) // 2 * 2
    left = c.net.state.escrows.get(bond_id(entry.provider))
    assert (left.amount if left else 0) == bond - penalty
    assert c.net.state.balance(c.net.acct("bob")) == bob + task_escrow(TASK, c.rules.oracle_fee) - fee + penalty
    assert c.book.penalties[entry.provider] == penalty and not c.book.earned
    assert c.net.state.conserved()


def test_an_allocated_task_no_quorum_decides_is_refunded_by_the_contract_at_expiry() -> None:
    c, key = _allocated()
    bob = c.net.state.balance(c.net.acct("bob"))
    for _ in range(c.rules.task_expiry + 1):
        c.block([c.net.tx("alice", "transfer", to=c.net.acct("carol"), amount=1)])
        if key not in c.net.state.escrows:
            break
    assert key not in c.net.state.escrows and key not in c.book.tasks
    assert c.net.state.balance(c.net.acct("bob")) == bob + task_escrow(TASK, c.rules.oracle_fee)


def test_a_task_whose_escrow_expires_before_its_settlement_is_never_allocated() -> None:
    """The ledger refunds an escrow at expires + 1 on its own (docs/ledger.md §End of block): the contract leaves
    unserved, and refunds at once, a task whose escrow would expire before the task's settlement deadline, so no
    provider works for a payment that is gone; a task whose escrow already returned is dropped at the window."""
    c = _registered()
    short = _post(c, expires=c.net.state.height + c.rules.task_expiry)  # one block short of the deadline
    gone = _post(c, replace(TASK, id="job-2"), expires=c.net.state.height + 1)
    ok = _post(c, replace(TASK, id="job-3"))
    c.block([])
    c.block([])  # the ledger refunded ``gone`` by itself
    assert gone not in c.net.state.escrows and c.book.tasks[gone].state == "open"
    bob = c.net.state.balance(c.net.acct("bob"))
    c.block([c.record("dave", msg.WINDOW, {"tasks": 3})])
    c.block([])  # the allocation: only ``ok`` is served
    assert c.book.tasks[ok].state == "allocated" and short not in c.book.tasks and gone not in c.book.tasks
    assert short not in c.net.state.escrows and c.net.state.conserved()
    assert c.net.state.balance(c.net.acct("bob")) >= bob + task_escrow(TASK, c.rules.oracle_fee)


def test_tasks_posted_with_their_window_are_allocated_or_refunded_in_that_very_block() -> None:
    """docs/adr/0187: the contract reads the block's own task records and escrow locks, so a window whose tasks
    land with it allocates in that block — and a task whose escrow, locked in that block, would expire before its
    settlement is left unserved and refunded in it too."""
    c = _registered()
    bob = c.net.state.balance(c.net.acct("bob"))
    short_task = replace(TASK, id="job-short")
    keys = [task_key(c.net.acct("bob"), t.id) for t in (TASK, short_task)]
    txs = []
    for task, key, expires in ((TASK, keys[0], 500), (short_task, keys[1], c.net.state.height + c.rules.task_expiry)):
        txs += [c.net.tx("bob", "escrow_lock", market=M, id=key, payee=c.net.acct("bob"),
                         amount=task_escrow(task, c.rules.oracle_fee), expires=expires, arbiter=CONTRACT),
                c.record("bob", msg.TASK, task_data(task, 7, "main"))]
    txs.append(c.record("dave", msg.WINDOW, {"tasks": 2, "expect": keys}))
    work = c.book.contract_work(c.net.state, c.rules, [decode_tx(raw, NID) for raw in txs])
    assert work[0][1]["kind"] == msg.ALLOC and work[0][1]["data"]["rounds"] == [0]  # the window's own round
    c.block(txs)
    assert c.book.tasks[keys[0]].state == "allocated" and keys[1] not in c.book.tasks
    assert keys[1] not in c.net.state.escrows and keys[0] in c.net.state.escrows
    assert c.net.state.balance(c.net.acct("bob")) == bob - task_escrow(TASK, c.rules.oracle_fee)
    assert not c.book.windows and c.net.state.conserved()


def test_a_requester_cannot_take_back_an_allocated_task_escrow() -> None:
    from bazaar.ledger.errors import InvalidTx
    from bazaar.ledger.execute import check_tx

    c, key = _allocated()
    for kind in ("escrow_refund", "escrow_release"):
        with pytest.raises(InvalidTx) as err:
            check_tx(c.net.state, decode_tx(c.net.tx("bob", kind, market=M, id=key), NID))
        assert err.value.reason in ("not-expired", "not-authorised")
        c.net._nonces.clear()


def test_the_privacy_budget_refuses_a_task_that_would_exceed_it() -> None:
    c = _registered()
    private = Task(id="dp-0", kind="training", units=5.0, max_price=0.02, value=0.05, sla=TASK.sla,
                   epsilon=6.0, delta=1e-5)
    _post(c, private)
    c.block([c.record("dave", msg.WINDOW, {"tasks": 1})])
    c.block([])
    again = Task(id="dp-1", kind="training", units=5.0, max_price=0.02, value=0.05, sla=TASK.sla,
                 epsilon=6.0, delta=1e-5)
    with pytest.raises(Refuse) as err:
        c.admit(c.record("bob", msg.TASK, task_data(again, 2, "main")))
    assert err.value.reason == "budget-spent" and "dp-1" in err.value.detail
    c.admit(c.record("bob", msg.TASK, task_data(again, 2, "other")))  # another dataset has its own budget
    c.admit(c.record("carol", msg.TASK, task_data(again, 2, "main")))  # so has another requester


# ---------------------------------------------------------------------------------------------------- the network
def _scenario(tmp_path: Path, extra: str) -> Path:
    text = scenario_file("cloudchain-small").read_text().replace("[mechanism]\n", "[mechanism]\n" + extra)
    text = text.replace("probes = 3", "probes = 1")  # fewer messages (a slow provider costs one latency bound)
    path = tmp_path / "cloudchain-test.toml"
    path.write_text(text)
    return path


async def _rounds(nodes: dict[str, Node], n: int) -> list[dict[str, Any]]:
    leader = next(node for node in nodes.values() if node.engine is not None)
    out = []
    for _ in range(n):
        with trio.fail_after(90):
            out.append(await leader.engine.play())
    return out


def _offline(scenario: str | Path, round_no: int) -> dict[str, str | None]:
    sc = load_scenario(scenario)
    cfg = market_config(sc)
    provs = provider_profiles(cfg, sc.names("provider"))
    plan = sorted(round_tasks(cfg, round_no, agent_names(cfg, sc.names("requester"))), key=lambda p: p[1].id)
    alloc = allocate([t for _, t, _ in plan], provs)
    return {t.id: (provs[i].name if i >= 0 else None) for (_, t, _), i in zip(plan, alloc.assignment, strict=True)}


async def test_rounds_settle_as_the_offline_contract_allocates(tmp_path: Path) -> None:
    async with open_memory_network("cloudchain-small", tmp_path / "net") as nodes:
        for s in await _rounds(nodes, 2):
            assert s["final"] and not s["left_out"], s
            assert s["outcome"]["allocation"] == _offline("cloudchain-small", s["round"])
            verdicts = s["outcome"]["verdicts"]
            assert set(verdicts) <= {"met", "unserved", "unservable"} and verdicts["met"]
            assert s["metrics"]["paid"] > 0
        leader = next(node for node in nodes.values() if node.engine is not None)
        done = [t for t in leader.app.settled.values() if t.get("completion_ms")]  # type: ignore[union-attr]
        # every signer read the completion from the chain's timestamps, not its own clock (docs/adr/0165)
        assert done and all(len(set(t["completion_ms"])) == 1 for t in done), done
        # a round's verdicts go on chain from one aggregator (docs/adr/0174), in one batch per group of tasks decided
        # within half a second of each other (docs/adr/0195): at most a few blocks
        quorum_blocks: dict[int, set[tuple[int, bytes]]] = {}
        for h in range(1, leader.chain.height + 1):
            block = leader.chain.block(h)
            assert block is not None
            for t in (decode_tx(raw, leader.network_id) for raw in block.txs):
                if t.type == "tx/record" and t.body["kind"] == msg.QUORUM:
                    rnd = leader.app.settled[t.body["data"]["task"]]["round"]  # type: ignore[union-attr]
                    quorum_blocks.setdefault(rnd, set()).add((h, t.sender))
        assert quorum_blocks and all(len({sender for _, sender in v}) == 1 for v in quorum_blocks.values()), \
            quorum_blocks
        for node in nodes.values():
            st = node.chain.state
            assert st.conserved() and not [k for k, e in st.escrows.items() if e.ref == b"cloudchain/task"]
            # attestations travel among the oracles alone (docs/adr/0188): no other node receives or relays one
            heard = node.router.received[msg.MSG_ATTEST]
            assert (heard > 0) if node.role == "oracle" else (heard == 0), (node.name, heard)


async def test_an_oracle_takes_another_s_verdicts_in_one_message_and_refuses_a_message_with_a_bad_signature(
        tmp_path: Path) -> None:
    """docs/adr/0188: the verdicts an oracle reaches at once travel in one ``cloudchain/attest``."""
    async with open_memory_network("cloudchain-small", tmp_path / "net") as nodes:
        (s,) = await _rounds(nodes, 1)
        assert s["final"], s
        me, them = nodes["oracle-1"], nodes["oracle-2"]
        role: Any = me.app
        secret = bls.bls_keygen(them.key.seed)
        settled = next(iter(role.settled))  # decided already: refused as stale
        ahead = [bytes([i]) * 32 for i in (1, 2)]  # not allocated on our chain yet: kept for when they are

        def verdict(key: bytes, sig: bytes | None = None) -> dict[str, Any]:
            good = bls.sign(secret, msg.verdict_message(me.network_id, key, "met", b""))
            return {"task": key, "verdict": "met", "result": b"", "rtt_ms": 1.0, "completion_ms": 2.0,
                    "sig": sig or good}

        def batch(items: list[dict[str, Any]], seq: int) -> Envelope:
            return seal(them.key, me.network_id, msg.MSG_ATTEST, {"items": items}, seq=seq, market=msg.MARKET,
                        round=2)

        idx = role.oracles.index(them.key.public)
        forged = verdict(ahead[1], sig=bls.sign(secret, b"something else"))
        with pytest.raises(Refuse) as err:
            await role.on_attest(batch([verdict(ahead[0]), forged], 1))
        assert err.value.reason == "bad-attestation" and not set(ahead) & set(role.early)  # nothing taken
        with pytest.raises(Refuse) as err:
            await role.on_attest(batch([verdict(settled), *(verdict(k) for k in ahead)], 2))
        assert err.value.reason == "unknown-task" and "1 of 3" in err.value.detail
        assert all(role.early[k][idx]["task"] == k for k in ahead)  # the fresh ones were taken all the same


async def test_a_window_is_complete_once_every_task_it_names_is_heard_and_only_while_it_is_pending(
        tmp_path: Path) -> None:
    """docs/adr/0185: a proposer seals the tasks' block as soon as the leader's window and every task it names are
    in its mempool, instead of waiting out its quiet window."""
    async with open_memory_network("cloudchain-small", tmp_path / "net") as nodes:
        (s,) = await _rounds(nodes, 1)
        assert s["final"], s
        leader = next(n for n in nodes.values() if n.engine is not None)
        role: Any = leader.app
        state = leader.chain.state
        assert role.window_complete(state) is None  # round 1's window is on chain: nothing is waited for
        requester = next(n for n in nodes.values() if n.role == "requester")
        agent_name, task, seed = round_tasks(role.cfg, 2, agent_names(role.cfg, [requester.name]))[0]
        agent = requester.app.by_name[agent_name]  # type: ignore[union-attr]
        key = task_key(agent.public, task.id)
        landed = next(iter(role.settled))  # a task of round 1, settled on chain
        window = leader.chain.sign_tx("record", {"kind": msg.WINDOW, "data": {"tasks": 2, "expect": [landed, key]}},
                                      round=2)
        role.admit(state, window)
        assert role.window_complete(state) is False  # the new task is not heard yet: a proposer holds on
        posted = requester.app._sign(agent, "record", {"kind": msg.TASK,  # type: ignore[union-attr]
                                                       "data": task_data(task, seed, "main")}, 2)
        role.admit(state, posted)
        assert role.window_complete(state) is True
        # a window that does not name its tasks (the leader shut it) never completes a batch
        role.admit(state, leader.chain.sign_tx("record", {"kind": msg.WINDOW, "data": {"tasks": 1}}, round=2))
        assert role.window_complete(state)  # the naming window is still the one pending
        other = nodes["oracle-1"].chain.sign_tx("record", {"kind": msg.WINDOW, "data": {"tasks": 1, "expect": []}},
                                                round=2)
        with pytest.raises(Refuse):
            role.admit(state, other)  # only the leader opens a window


@pytest.mark.parametrize("probe_from", ["day", "allocation"])  # when the probes start (docs/adr/0184, 0186)
async def test_a_slow_provider_is_penalised_and_a_lying_oracle_moves_no_money(tmp_path: Path, probe_from: str) -> None:
    path = _scenario(tmp_path, f'slow = ["provider-0"]\nlying_oracles = ["oracle-2"]\nprobe_from = "{probe_from}"\n')
    async with open_memory_network(path, tmp_path / "net") as nodes:
        (s,) = await _rounds(nodes, 1)
        assert s["final"], s
        out = s["outcome"]
        slow = [t for t, p in out["allocation"].items() if p == "provider-0"]
        assert slow and all(out["quorum"][t]["verdict"] == "late" for t in slow)
        assert out["penalties"]["provider-0"] > 0
        assert "provider-0" not in out["payments"]
        for t, q in out["quorum"].items():
            assert q["signers"] == ["oracle-0", "oracle-1"] and q["dissent"] == ["oracle-2"], (t, q)
        leader = next(n for n in nodes.values() if n.engine is not None)
        book = leader.app.book  # type: ignore[union-attr]
        liar = leader.app.oracles[2]  # type: ignore[union-attr]
        assert book.faults[liar] == len(out["quorum"])
        # every oracle waited out the SLA's 2 s latency bound for the slow provider, and says so (docs/adr/0164):
        # from the day's call, so the oracles that heard the call after the leader waited that much less (ADR 0191)
        waits = {n.name: n.app.status()["sla_wait_s"].get(str(s["round"]), 0.0)  # type: ignore[union-attr]
                 for n in nodes.values() if n.role == "oracle"}
        if probe_from == "allocation":
            assert all(w >= 2.0 for w in waits.values()), waits
        else:  # the leader stamped the call just before its own probes: it waited nearly the whole bound
            assert waits["oracle-0"] >= 1.9 and all(w >= 1.0 for w in waits.values()), waits
        # ... and GET /status says it under the generic name every market uses (docs/adr/0184); no one else waited
        for n in nodes.values():
            st = n.status()
            assert st["deadline_wait_s"] == (st["app"]["sla_wait_s"] if n.role == "oracle" else {}), (n.name, st)


async def test_a_wrong_result_is_caught_and_a_silent_provider_refunds_its_requester(tmp_path: Path) -> None:
    path = _scenario(tmp_path, 'wrong = ["provider-0"]\nfail = ["provider-1"]\n')
    async with open_memory_network(path, tmp_path / "net") as nodes:
        (s,) = await _rounds(nodes, 1)
        out = s["outcome"]
        verdicts = {p: {out["quorum"][t]["verdict"] for t, q in out["allocation"].items() if q == p}
                    for p in set(out["allocation"].values()) if p}
        assert verdicts.get("provider-0", {"wrong"}) == {"wrong"} and verdicts.get("provider-1", {"missing"}) == {
            "missing"}, out
        assert set(out["payments"]) <= {"provider-2"}
        for node in nodes.values():
            assert node.chain.state.conserved()


# ---------------------------------------------------------------------------------------------------- disputes
def _settled(verdict: str) -> tuple[Chain, bytes]:
    """A task settled with ``verdict`` (signed by oracles 0 and 1), its requester bob bonded."""
    c, key = _allocated()
    c.block([c.net.tx("bob", "escrow_lock", market=M, id=bond_id(c.net.acct("bob")), payee=c.net.acct("bob"),
                      amount=200_000, expires=10**9, arbiter=CONTRACT)])
    entry = c.book.tasks[key]
    model = b"\x01" * 32
    c.block([c.record(c.label_of(entry.provider), msg.RESULT,
                      {"task": key, "model": model, "meta": model, "sizes": [8, 8]})])
    c.block([c.record("carol", msg.QUORUM, _quorum(c, key, verdict, [0, 1], b"" if verdict == "missing" else model))])
    c.block([])
    assert key in c.book.closed and key not in c.book.tasks
    return c, key


def _ruling(c: Chain, key: bytes, verdict: str, signers: list[int]) -> dict[str, Any]:
    result = b"" if verdict == "missing" else c.book.closed[key].result
    message = msg.verdict_message(NID, key, msg.RULING_PREFIX + verdict, result)
    sigs = [bls.sign(c.net.bls_secret(f"v{i}"), message) for i in signers]
    return {"task": key, "verdict": verdict, "result": result, "signers": signers, "sig": bls.aggregate(sigs),
            "rtt_ms": [1.0] * len(signers), "completion_ms": [10.0] * len(signers), "dissent": []}


def _dispute(c: Chain, key: bytes, who: str, claim: str) -> None:
    c.rules = replace(c.rules, dispute_deposit=50_000)
    c.block([c.net.tx(who, "escrow_lock", market=M, id=dispute_id(key, c.net.acct(who)), payee=c.net.acct(who),
                      amount=50_000, expires=10**9, arbiter=CONTRACT),
             c.record(who, msg.DISPUTE, {"task": key, "claim": claim})])
    assert c.book.disputes[key].claim == claim


def test_an_upheld_provider_dispute_is_paid_from_the_requesters_bond() -> None:
    c, key = _settled("late")
    done = c.book.closed[key]
    prov = c.label_of(done.provider)
    with pytest.raises(Refuse) as err:  # only the parties, only another verdict
        c.admit(c.record("carol", msg.DISPUTE, {"task": key, "claim": "met"}))
    assert err.value.reason == "not-authorised"
    with pytest.raises(Refuse) as err:
        c.admit(c.record(prov, msg.DISPUTE, {"task": key, "claim": "late"}))
    assert err.value.reason == "bad-dispute"
    _dispute(c, key, prov, "met")
    with pytest.raises(Refuse) as err:  # a ruling is a quorum of the oracles over "ruling:<verdict>" messages
        c.admit(c.record("carol", msg.RULING, {**_ruling(c, key, "met", [0, 1]), "verdict": "late"}))
    assert err.value.reason == "bad-quorum"
    provider, bond = c.net.state.balance(done.provider), c.net.state.escrows[bond_id(c.net.acct("bob"))].amount
    c.block([c.record("carol", msg.RULING, _ruling(c, key, "met", [1, 2]))])
    c.block([])  # the resettlement
    owed = int(done.price * done.task.units * UNIT) + done.penalty  # the payment it missed, the penalty it paid
    assert c.net.state.escrows[bond_id(c.net.acct("bob"))].amount == bond - owed
    assert c.net.state.balance(done.provider) >= provider + owed + 50_000  # and its deposit back
    assert key not in c.book.disputes and key not in c.book.closed
    assert c.book.faults[c.rules.oracles[0]] == 1 and c.book.faults[c.rules.oracles[1]] == 1  # signed the error
    assert c.net.state.conserved()


def test_a_rejected_requester_dispute_hands_its_deposit_to_the_provider() -> None:
    c, key = _settled("met")
    done = c.book.closed[key]
    _dispute(c, key, "bob", "wrong")
    provider = c.net.state.balance(done.provider)
    c.block([c.record("carol", msg.RULING, _ruling(c, key, "met", [0, 2]))])
    c.block([])
    assert dispute_id(key, c.net.acct("bob")) not in c.net.state.escrows
    assert c.net.state.balance(done.provider) >= provider + 50_000
    assert not c.book.faults and c.net.state.conserved()


def test_the_dispute_window_closes() -> None:
    c, key = _settled("late")
    for _ in range(c.rules.dispute_blocks + 1):
        c.block([c.net.tx("alice", "transfer", to=c.net.acct("carol"), amount=1)])
    assert key not in c.book.closed
    with pytest.raises(Refuse) as err:
        c.admit(c.record(c.label_of(c.net.acct("v0")), msg.DISPUTE, {"task": key, "claim": "met"}))
    assert err.value.reason == "bad-dispute"


async def test_a_slow_provider_that_contests_its_penalties_loses_its_deposits(tmp_path: Path) -> None:
    path = _scenario(tmp_path, 'slow = ["provider-0"]\ncontest = ["provider-0"]\n')
    async with open_memory_network(path, tmp_path / "net") as nodes:
        (s,) = await _rounds(nodes, 1)
        late = [t for t, q in s["outcome"]["quorum"].items() if q["verdict"] == "late"]
        assert late, s["outcome"]
        leader = next(n for n in nodes.values() if n.engine is not None)
        book = lambda: leader.app.book  # type: ignore[union-attr]  # noqa: E731
        await leader.chain.wait_for(lambda: not book().disputes and not any(
            e.provider and e.verdict == "late" for e in book().closed.values()), timeout=60)
        provider = nodes["provider-0"]
        assert provider.app.disputed == len(late)  # type: ignore[union-attr]
        for node in nodes.values():  # a node may import the block that settles the last dispute after the leader
            await node.chain.wait_for(lambda n=node: not [
                e for e in n.chain.state.escrows.values() if e.ref == b"cloudchain/dispute"], timeout=60)
            assert node.chain.state.conserved()


async def test_the_blob_protocol_answers_a_provider_s_results_at_once_within_its_bounds() -> None:
    from types import SimpleNamespace

    from bazaar.node.markets.cloudchain.common import MAX_BLOB_BATCH, MAX_BLOBS_PER_REQUEST, BlobStore
    from bazaar.protocol import codec
    from bazaar.protocol.transport import RejectRequest

    store = BlobStore(SimpleNamespace(set_protocol=lambda *_: None))  # type: ignore[arg-type]
    small = [store.put(bytes([i]) * (i + 1)) for i in range(MAX_BLOBS_PER_REQUEST)]
    answer = codec.decode(await store.serve(b"", codec.encode({"hashes": small})))
    assert answer == {"data": [bytes([i]) * (i + 1) for i in range(MAX_BLOBS_PER_REQUEST)]}
    with pytest.raises(RejectRequest) as err:  # one more hash than a request may name
        await store.serve(b"", codec.encode({"hashes": [*small, small[0]]}))
    assert err.value.reason == "malformed"
    big = [store.put(bytes([i]) * msg.MAX_BLOB) for i in range(MAX_BLOB_BATCH // msg.MAX_BLOB + 1)]
    with pytest.raises(RejectRequest) as err:  # more bytes than one answer may carry
        await store.serve(b"", codec.encode({"hashes": big}))
    assert err.value.reason == "oversize"
