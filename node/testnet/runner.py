"""``bazaar testnet run``: start a testnet's network, run its rounds, apply its perturbations, check its invariants.

The network is a local multi-process one (:mod:`bazaar.node.launcher`, 127.0.0.1). Perturbations are applied by
the PIDs the launcher recorded (``kill``: SIGKILL, ``pause``/``resume``: SIGSTOP/SIGCONT), by a restart with the
node's data directory (``restart``), and by the nodes' control routes (``disconnect``/``heal``: every live node's
transport peer filter; ``clock-skew``: the node's clock). The network is always stopped at the end — after an
error and after Ctrl-C too — and only processes this run started are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.ledger.genesis import Genesis

from .. import launcher
from ..markets.registry import get_spec
from ..params import ParamError
from ..rounds.driver import leader_of
from ..waiting import WaitTimeout, wait_until
from . import invariants as inv
from .plan import INVARIANTS, UNDO, Perturbation, Testnet

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class _Run:
    """What a run knows while it runs."""

    testnet: Testnet
    root: Path
    progress: Progress
    rng: random.Random
    killed: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    groups: list[list[str]] = field(default_factory=list)
    undo: dict[int, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    resync: list[tuple[str, float | None]] = field(default_factory=list)

    @property
    def net(self) -> launcher.NetDir:
        return launcher.NetDir(self.root)

    def info(self) -> dict[str, Any]:
        return self.net.load()

    def running(self, name: str) -> bool:
        v = self.info()["nodes"][name]
        return launcher.pid_state(v["pid"], v["config"]) == "running"

    def leader(self) -> str:
        spec = get_spec(self.testnet.scenario.market_name)
        return leader_of(self.info(), spec)[0]


def _select(run: _Run, p: Perturbation) -> list[str]:
    """Concrete node names for a perturbation's selectors (random picks among the running nodes)."""
    scenario = run.testnet.scenario
    spec = get_spec(scenario.market_name)
    names: list[str] = []
    live = [n for n, _ in scenario.nodes if n not in run.killed and n not in run.paused]
    for sel in p.nodes:
        if sel == "leader":
            candidates = [run.leader()]
        elif sel == "random":
            candidates = live
        elif sel == "random-validator":
            candidates = [n for n in live if spec.role(scenario.role_of(n)).validates]
        elif sel == "random-follower":
            candidates = [n for n in live if n != run.leader()]
        else:
            names.append(sel)
            continue
        candidates = [n for n in candidates if n not in names]
        if sel.startswith("random"):
            names += run.rng.sample(candidates, min(p.count, len(candidates)))
        else:
            names += candidates
    return names


def _others_finalized(run: _Run, name: str) -> int:
    """The highest finalized height the other running honest nodes report."""
    best = 0
    for other, v in run.info()["nodes"].items():
        if other == name or other in run.testnet.byzantine or not run.running(other):
            continue
        st = launcher.node_status(v, timeout=3.0)
        if st is not None:
            best = max(best, int(st["finalized"]))
    return best


def _restart(run: _Run, name: str) -> str:
    target = _others_finalized(run, name)
    t0 = time.monotonic()
    for attempt in (1, 2):
        try:
            launcher.net_start(run.root, name)
            break
        except launcher.LaunchError as err:
            if attempt == 2:
                run.resync.append((name, None))  # a node that cannot come back never resyncs
                raise
            run.progress(f"restart of {name} failed ({err}); once more")
            v = run.info()["nodes"][name]
            if launcher.pid_alive(v["pid"], v["config"]):  # half started: stop it before the second try
                launcher.net_kill(run.root, name)
    run.killed.discard(name)
    if run.groups:
        launcher.net_partition(run.root, run.groups)  # the restarted node starts without its filter
    node = run.info()["nodes"][name]

    def caught_up() -> bool:
        st = launcher.node_status(node, timeout=3.0)
        return st is not None and int(st["finalized"]) >= target

    try:
        wait_until(caught_up, timeout=run.testnet.resync_timeout_s, interval=0.1, what=f"{name} to resync")
        seconds: float | None = round(time.monotonic() - t0, 2)
    except WaitTimeout:
        seconds = None
    run.resync.append((name, seconds))
    return f"resynced to height {target} in {seconds} s" if seconds is not None else f"not at height {target} in time"


def _apply_one(run: _Run, action: str, name: str, skew_ms: int) -> str:
    if action == "kill":
        if name in run.killed:
            return "already down"
        if name in run.paused:
            launcher.net_resume(run.root, name)
            run.paused.discard(name)
        launcher.net_kill(run.root, name)
        run.killed.add(name)
        return "SIGKILL"
    if action == "restart":
        if name not in run.killed:
            return "not down"
        return _restart(run, name)
    if action == "pause":
        if name in run.killed or name in run.paused:
            return "not running"
        launcher.net_pause(run.root, name)
        run.paused.add(name)
        return "SIGSTOP"
    if action == "resume":
        if name not in run.paused:
            return "not paused"
        launcher.net_resume(run.root, name)
        run.paused.discard(name)
        if run.groups:
            launcher.net_partition(run.root, run.groups)
        return "SIGCONT"
    if action == "clock-skew":
        if name in run.killed or name in run.paused:
            return "not running"
        return f"clock skew {launcher.net_clock(run.root, name, skew_ms)} ms"
    raise ValueError(action)


def _apply(run: _Run, round_no: int, stage: str, p: Perturbation | None, action: str, nodes: list[str],
           skew_ms: int = 0, note: str = "") -> None:
    """Apply one perturbation to ``nodes`` and record it; a perturbation that fails is recorded, not fatal."""
    entry: dict[str, Any] = {"round": round_no, "at": stage, "action": action, "nodes": nodes, "ok": True}
    details = [note] if note else []
    try:
        if action == "disconnect":
            run.groups = [nodes]
            launcher.net_partition(run.root, run.groups)
            details.append(f"{', '.join(nodes)} cut from the rest")
        elif action == "heal":
            run.groups = []
            launcher.net_partition(run.root, [])
            details.append("partition healed")
        else:
            for name in nodes:
                details.append(f"{name}: {_apply_one(run, action, name, skew_ms)}")
    except (launcher.LaunchError, ParamError) as err:
        entry["ok"] = False
        details.append(str(err))
    entry["detail"] = "; ".join(details)
    run.applied.append(entry)
    run.progress(f"round {round_no} {stage}: {action} {', '.join(nodes) or '-'}: {entry['detail']}")
    if p is not None and p.for_rounds and entry["ok"]:
        run.undo.setdefault(round_no + p.for_rounds, []).append((UNDO[action], tuple(nodes)))


def _due(run: _Run, round_no: int, stage: str, note: str = "") -> None:
    if stage == "start":
        for action, nodes in run.undo.pop(round_no, []):
            _apply(run, round_no, stage, None, action, list(nodes))
    for p in run.testnet.perturbations:
        if round_no in p.rounds() and p.at == stage:
            _apply(run, round_no, stage, p, p.action, _select(run, p), p.skew_ms, note)


def _post_round(port: int, timeout: float, token: str | None) -> dict[str, Any]:
    import trio

    from ..httpapi import http_json

    async def go() -> Any:
        return await http_json(port, "POST", "/round", {}, timeout=timeout, token=token)

    return dict(trio.run(go))


def _wait_stage(run: _Run, leader: dict[str, Any], round_no: int, stage: str, until: Future[Any],
                timeout: float) -> bool:
    """Wait until the leader reports the round at ``stage`` (or the round ends first)."""

    def reached() -> bool:
        if until.done():
            return True
        st = launcher.node_status(leader, timeout=2.0) or {}
        rounds = st.get("rounds", {})
        return bool(rounds.get("round", 0) >= round_no and rounds.get("stage") == stage)

    try:
        wait_until(reached, timeout=timeout, interval=0.05, what=f"round {round_no} to reach {stage}")
    except WaitTimeout:
        return False
    return not until.done()


def _play_round(run: _Run, round_no: int, asker: ThreadPoolExecutor) -> dict[str, Any]:
    scenario = run.testnet.scenario
    timeout = run.testnet.round_timeout_s or sum(scenario.deadlines.values()) + 60
    _due(run, round_no, "start")
    leader = run.leader()
    row: dict[str, Any] = {"round": round_no, "ran": False, "final": False, "height": None, "error": None}
    if leader in run.killed or leader in run.paused:
        row["error"] = f"the leader {leader} is down"
        for p in run.testnet.perturbations:
            if round_no in p.rounds() and p.at == "settle":  # recorded, not applied: the round never settled
                run.applied.append({"round": round_no, "at": "settle", "action": p.action, "nodes": list(p.nodes),
                                    "ok": False, "detail": "skipped: the round did not run"})
    else:
        node = run.info()["nodes"][leader]
        t0 = time.monotonic()
        future = asker.submit(_post_round, node["http_port"], timeout, run.net.control_token())
        row["ran"] = True
        settle_due = any(round_no in p.rounds() and p.at == "settle" for p in run.testnet.perturbations)
        seen = settle_due and _wait_stage(run, node, round_no, "settle", future, timeout)
        if seen:
            _due(run, round_no, "settle")
        try:
            summary = future.result(timeout=timeout + 10)
            row.update(final=bool(summary.get("final")), height=summary.get("height"),
                       leader_round=summary.get("round"), left_out=summary.get("left_out", []))
        except Exception as err:  # the leader died, was paused or refused: the round did not settle
            row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
        row["seconds"] = round(time.monotonic() - t0, 2)
        if settle_due and not seen:  # the round passed its settle stage between two looks: apply it now, say so
            _due(run, round_no, "settle", "late: the round ended before its settle stage was seen")
    left_out = f", left out {', '.join(row['left_out'])}" if row.get("left_out") else ""
    run.progress(f"round {round_no}: " + (f"height {row['height']}, final {row['final']}{left_out}" if row["ran"]
                                          else f"not run ({row['error']})"))
    _due(run, round_no, "end")
    return row


def _end_perturbations(run: _Run) -> None:
    """Undo what would stop the network from converging: resume paused nodes, heal the partition."""
    last = run.testnet.rounds + 1
    for name in sorted(run.paused):
        _apply(run, last, "end", None, "resume", [name])
    if run.groups:
        _apply(run, last, "end", None, "heal", [])


def _converge(run: _Run) -> dict[str, dict[str, Any]]:
    """Wait (up to ``settle_timeout_s``) for the running honest nodes to agree on the finalized head; returns
    their last statuses."""
    honest = [n for n in run.testnet.honest if n not in run.killed]
    last: dict[str, dict[str, Any]] = {}

    def agreed() -> bool:
        info = run.info()
        last.clear()
        for name in honest:
            v = info["nodes"][name]
            if launcher.pid_state(v["pid"], v["config"]) != "running":
                continue
            st = launcher.node_status(v, timeout=3.0)
            if st is not None:
                last[name] = st
        heads = {(s["finalized"], s.get("finalized_hash")) for s in last.values()}
        return len(heads) == 1 and len(last) == len([n for n in honest if run.running(n)])

    with contextlib.suppress(WaitTimeout):  # the invariant reports the disagreement
        wait_until(agreed, timeout=run.testnet.settle_timeout_s, interval=0.25, what="one finalized head")
    return dict(last)


RUN_FILE = "testnet-run.json"
"""What a run records in its folder (the testnet, the live nodes' last statuses, who was killed, the restarts), so
``bazaar testnet check`` can re-check the invariants later from the stopped nodes' data directories."""


def check_invariants(testnet: Testnet, root: Path, statuses: dict[str, dict[str, Any]], crashed: list[str],
                     resync: list[tuple[str, float | None]]) -> dict[str, Any]:
    """Check the testnet's invariants on a stopped network folder (the live part — ``statuses``, ``crashed`` —
    was collected while the nodes ran).

    Returns:
        ``{"invariants": {name: held}, "problems": {name: [why]}, "tokens_lost", "audit"}``.
    """
    from ..audit import audit_data_dir, conservation

    net = launcher.NetDir(root)
    info = net.load()
    honest = testnet.honest
    dirs = {n: net.node_dir(n) for n in honest}
    ev = inv.Evidence(statuses=statuses, crashed=crashed, byzantine=dict(testnet.byzantine),
                      keys={n: v.get("key") or "" for n, v in info["nodes"].items()}, resync=list(resync),
                      data_dirs=dirs)
    problems: dict[str, list[str]] = {}
    for name, d in dirs.items():
        try:
            ev.audits[name] = audit_data_dir(d)
        except (ParamError, OSError, ValueError) as err:
            problems.setdefault("tokens-conserved", []).append(f"{name}: cannot audit: {err}")
        try:
            ev.logs[name] = (d / "node.log").read_text(errors="replace")
        except OSError:
            ev.logs[name] = ""
    for name in testnet.byzantine:  # no log: the behaviour counts as exercised (its evidence is still required)
        with contextlib.suppress(OSError):
            ev.byzantine_logs[name] = (net.node_dir(name) / "node.log").read_text(errors="replace")
    genesis = Genesis.from_dict(json.loads(net.genesis.read_text()))
    chains = {}
    for name, d in dirs.items():
        try:
            chains[name] = inv.finalized_hashes(d, genesis)
        except Exception as err:  # a damaged database: the audit above reports it too
            problems.setdefault("no-fork", []).append(f"{name}: cannot read: {err!r}")
    reference = max(chains, key=lambda n: len(chains[n]), default=None)
    if reference is not None:
        try:
            ev.final_state = conservation(dirs[reference])["state"]
        except (ParamError, OSError, ValueError):
            ev.final_state = None
    held: dict[str, bool] = {}
    tokens_lost = 0
    for name in testnet.checks:
        if name == "same-finalized-head":
            ok, why = inv.same_finalized_head(ev)
        elif name == "no-fork":
            ok, why = inv.no_fork(chains)
        elif name == "tokens-conserved":
            ok, why = inv.tokens_conserved(ev)
        elif name == "trades-reverify":
            ok, why = inv.trades_reverify(ev)
        elif name == "no-honest-crash":
            ok, why = inv.no_honest_crash(ev)
        elif name == "escrows-closed":
            ok, why, tokens_lost = inv.escrows_closed(ev)
        elif name == "byzantine-evidence":
            ok, why = inv.byzantine_evidence(ev)
        else:
            ok, why = inv.restarts_resync(ev)
        why = problems.get(name, []) + why
        held[name] = ok and not problems.get(name)
        if why:
            problems[name] = why
    markets = {a["market"] for a in ev.audits.values()}
    uncovered = sorted(markets - {a["market"] for a in ev.audits.values() if a["covered"]})
    return {"invariants": held, "problems": problems, "tokens_lost": tokens_lost, "unexercised": ev.unexercised,
            "audit": {"covered": sorted(n for n, a in ev.audits.items() if a["covered"]),
                      "uncovered_markets": uncovered,
                      "checked_blocks": sum(a["checked"] for a in ev.audits.values()),
                      "unverifiable_blocks": sum(len(a["unverifiable"]) for a in ev.audits.values())}}


def recheck(root: Path) -> dict[str, Any]:
    """``bazaar testnet check``: re-check the invariants of a finished run's folder (e.g. after inspecting or
    altering a node's database); returns the run's result with the new verdicts.

    Raises:
        ParamError: the folder holds no finished testnet run.
    """
    from .plan import load_testnet

    try:
        saved = json.loads((root / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ParamError("--root", f"{root} holds no finished testnet run ({RUN_FILE}): {err}") from err
    testnet = load_testnet(saved["source"])
    result = dict(saved["result"])
    checked = check_invariants(testnet, root, saved["statuses"], result["honest_crashed"],
                               [(n, s) for n, s in saved["resync"]])
    result.update(invariants=checked["invariants"], problems=checked["problems"],
                  tokens_lost=checked["tokens_lost"], unexercised=checked["unexercised"], audit=checked["audit"])
    return result


def run_testnet(testnet: Testnet, root: Path | None = None, *, rounds: int | None = None,
                progress: Progress = _quiet) -> dict[str, Any]:
    """Run a testnet and check its invariants.

    Args:
        testnet: the loaded testnet.
        root: the network folder (must be new or empty; default a fresh temporary folder, kept for inspection).
        rounds: run this many rounds instead of the file's (perturbations after it are not applied).
        progress: receives one line per round and per perturbation.

    Returns:
        ``{"testnet", "scenario", "dir", "rounds", "settled", "perturbations", "invariants", "problems",
        "tokens_lost", "honest_crashed", "resync_s", "audit", "seconds"}`` (docs/testnets.md).

    Raises:
        ParamError: ``root`` is not empty.
        LaunchError: the network did not start.
    """
    if root is None:
        root = Path(tempfile.mkdtemp(prefix=f"bazaar-testnet-{testnet.name}-"))
    elif root.exists() and any(root.iterdir()):
        raise ParamError("--root", f"{root} is not empty (a testnet starts a fresh network)")
    if rounds is not None:
        testnet = Testnet(**{**testnet.__dict__, "rounds": rounds})
    run = _Run(testnet, root, progress, random.Random(testnet.seed))
    t0 = time.monotonic()
    rows: list[dict[str, Any]] = []
    started = False
    asker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="testnet-round")
    try:
        launcher.net_up(testnet.scenario.source, root, progress=progress, byzantine=testnet.byzantine,
                        clock_skew_ms=testnet.clock_skew_ms)
        started = True
        for round_no in range(1, testnet.rounds + 1):
            rows.append(_play_round(run, round_no, asker))
        _end_perturbations(run)
        statuses = _converge(run)
        info = run.info()
        crashed = [n for n in testnet.honest if n not in run.killed
                   and not launcher.pid_alive(info["nodes"][n]["pid"], info["nodes"][n]["config"])]
    finally:
        if started:
            for name in sorted(run.paused):  # a stopped process would ignore SIGTERM
                launcher.net_resume(root, name)
        launcher.net_down(root)
        asker.shutdown(wait=False, cancel_futures=True)
    checked = check_invariants(testnet, root, statuses, crashed, run.resync)
    result = {
        "testnet": testnet.name, "scenario": testnet.scenario.name, "dir": str(root),
        "rounds": sum(1 for r in rows if r["ran"]), "settled": sum(1 for r in rows if r["final"]),
        "perturbations": run.applied, "invariants": checked["invariants"], "problems": checked["problems"],
        "tokens_lost": checked["tokens_lost"], "unexercised": checked["unexercised"], "honest_crashed": crashed,
        "resync_s": [s for _, s in run.resync if s is not None], "audit": checked["audit"],
        "round_rows": rows, "seconds": round(time.monotonic() - t0, 1),
    }
    (root / RUN_FILE).write_text(json.dumps({"source": str(testnet.source), "statuses": statuses,
                                             "resync": run.resync, "result": result}, default=str))
    return result


def report_lines(result: dict[str, Any]) -> list[str]:
    """The run for people: a header and the invariants as a table."""
    lines = [f"testnet {result['testnet']} ({result['scenario']}): {result['rounds']} rounds run, {result['settled']} "
             f"settled, {len(result['perturbations'])} perturbations, {result['seconds']} s, folder {result['dir']}",
             f"{'invariant':22s} held   detail"]
    for name in INVARIANTS:
        if name not in result["invariants"]:
            continue
        why = result["problems"].get(name, [])
        lines.append(f"{name:22s} {'yes' if result['invariants'][name] else 'NO':6s} {'; '.join(why)[:200]}")
    resync = result["resync_s"]
    lines.append(f"tokens lost: {result['tokens_lost']} µ; honest nodes crashed: {result['honest_crashed'] or 'none'}; "
                 f"resync after restart: {resync or '-'} s")
    return lines
