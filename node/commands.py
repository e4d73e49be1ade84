"""Network commands of the CLI: ``node``, ``net``, ``round``, ``chain``, ``demo``, ``testnet`` (README.md).

Exit codes: 0 success, 1 runtime failure (a node, the network or a chain check failed; ``net status``: a node
is down), 2 bad usage or parameters (a folder that holds no network included).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .params import ParamError


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def _err(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _cmd_node(args: argparse.Namespace) -> int:
    import trio

    from .config import load_node_config
    from .logs import Events, configure
    from .runtime import open_node
    from .scenario import load_scenario

    if not args.config:
        raise ParamError("--config", "a node needs its node.toml (written by `bazaar net up`, see README)")
    cfg = load_node_config(args.config, listen=args.listen, data_dir=args.data_dir, log_json=args.log_json or None)
    if args.role and args.role != cfg.role:
        raise ParamError("--role", f"the config says role {cfg.role!r}")
    scenario = load_scenario(cfg.scenario)
    if args.market and args.market != scenario.market_name:
        raise ParamError("--market", f"the scenario's market is {scenario.market_name!r}")
    if args.bootstrap:
        cfg = replace(cfg, peers=(*cfg.peers, *(_bootstrap_entry(a) for a in args.bootstrap)))
    configure(cfg.name, as_json=cfg.log_json)
    with contextlib.suppress(io.UnsupportedOperation, ValueError):  # stderr without a file (run in-process)
        faulthandler.enable()  # a crash below Python (a C extension) still leaves its stack in the node's log

    events = Events("node")

    async def run() -> None:
        async with open_node(cfg) as node:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:

                    async def on_signal() -> None:
                        async for _ in signals:
                            node.stop.set()
                            return

                    nursery.start_soon(on_signal)
                    await node.stop.wait()
                    events.info("node.stopping")
                    nursery.cancel_scope.cancel()

    t0 = time.monotonic()
    trio.run(run)
    events.info("node.stopped", seconds=round(time.monotonic() - t0, 2))
    return 0


def _bootstrap_entry(maddr: str) -> Any:
    """A dial-only address-book entry from ``/ip4/../tcp/../p2p/<peer id>`` (the key is inline in the id)."""
    from libp2p.peer.id import ID

    from bazaar.protocol.p2p import key_for_peer_id

    from .config import PeerEntry

    head, sep, peer_id = maddr.rpartition("/p2p/")
    try:
        key = key_for_peer_id(ID.from_base58(peer_id)) if sep and head else None
    except ValueError:
        key = None
    if key is None:
        raise ParamError("--bootstrap", f"{maddr!r} must end in /p2p/<Ed25519 peer id>")
    return PeerEntry(f"bootstrap-{peer_id[-8:]}", "bootstrap", key, head)


def _progress(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _cmd_net(args: argparse.Namespace) -> int:
    from . import launcher

    root = Path(args.dir)
    try:
        if args.action != "up":
            launcher.NetDir(root).load()  # NoNetwork: exit 2 before any action
        if args.action == "up":
            if not args.scenario:
                raise ParamError("--scenario", "missing (a shipped scenario name, or a TOML file)")
            info = launcher.net_up(args.scenario, root, log_json=args.log_json, progress=_progress,
                                   hosts=_hosts(args))
            _print_json({"dir": str(root), "nodes": len(info["nodes"]), "up_seconds": info["up_seconds"]})
        elif args.action == "down":
            _print_json({"stopped": launcher.net_down(root)})
        elif args.action == "status":
            status = launcher.net_status(root)
            if args.json:
                _print_json(status)
            else:
                for row in status["nodes"]:
                    print(f"{row['name']:14s} {row['role']:10s} pid={row['pid']:<7d} alive={row['alive']!s:5s} "
                          f"state={row['state']:8s} "
                          f"height={row['height']} finalized={row['finalized']} peers={row['peers']}")
            down = [row["name"] for row in status["nodes"] if not row["alive"]]
            if down:
                named = [f"{n} (stopped)" if row["state"] == "stopped" else n
                         for n, row in ((r["name"], r) for r in status["nodes"]) if n in down]
                print(f"{len(down)} of {len(status['nodes'])} nodes down: {', '.join(named)}", file=sys.stderr)
                return 1
        elif args.action in ("kill", "start", "pause", "resume"):
            if not args.node:
                raise ParamError("--node", "missing: which node")
            if args.action == "kill":
                _print_json({"killed": args.node, "pid": launcher.net_kill(root, args.node)})
            elif args.action == "pause":
                _print_json({"paused": args.node, "pid": launcher.net_pause(root, args.node)})
            elif args.action == "resume":
                _print_json({"resumed": args.node, "pid": launcher.net_resume(root, args.node)})
            else:
                _print_json({"started": args.node, "pid": launcher.net_start(root, args.node)["pid"]})
    except launcher.NoNetwork as err:
        return _err(str(err), 2)
    except launcher.LaunchError as err:
        return _err(str(err))
    return 0


def _hosts(args: argparse.Namespace) -> Any:
    """The launcher's hosts strategy of ``net up`` (``--hosts``, ``--link-*``; docs/deploy.md)."""
    from .hosts import Loopback
    from .hosts.netns import LinkShape, Netns

    shaped = args.link_delay or args.link_jitter or args.link_loss
    if args.hosts != "netns":
        if shaped:
            raise ParamError("--link-delay", "link shaping needs --hosts netns")
        return Loopback()
    try:
        return Netns(LinkShape(args.link_delay or "", args.link_jitter or "", args.link_loss or ""))
    except ValueError as err:
        raise ParamError("--link-delay", str(err)) from err


def _cmd_round(args: argparse.Namespace) -> int:
    from . import launcher
    from .rounds.driver import run_rounds

    if args.rounds < 1:
        raise ParamError("--rounds", "must be at least 1")
    try:
        for summary in run_rounds(Path(args.dir), args.rounds, progress=_progress if args.progress else None):
            if args.json:
                _print_json(summary)
            else:
                print(round_line(Path(args.dir), summary), flush=True)
    except launcher.NoNetwork as err:
        return _err(str(err), 2)
    except launcher.LaunchError as err:
        return _err(str(err))
    return 0


def round_line(root: Path, summary: dict[str, Any]) -> str:
    """One line for people: the market's progress line for the round."""
    from . import launcher
    from .markets.registry import get_spec
    from .rounds.driver import progress_line
    from .scenario import load_scenario

    spec = get_spec(load_scenario(launcher.NetDir(root).load()["scenario"]).market_name)
    return progress_line(spec, summary)


def _cmd_chain(args: argparse.Namespace) -> int:
    from bazaar.ledger.errors import LedgerError

    from .chaintools import audit_data_dir, export_data_dir, verify_data_dir

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise ParamError("--data-dir", f"{data_dir} is not a directory")
    try:
        if args.action == "audit":
            report = audit_data_dir(data_dir)
            if args.json:
                _print_json(report)
            else:
                print(audit_line(report))
            return 0 if report["ok"] else 1
        if args.action == "verify":
            report = verify_data_dir(data_dir)
            _print_json(report)
            return 0 if report["ok"] else 1
        exported = export_data_dir(data_dir)
        if args.action == "show" and not args.json:
            for b in exported["blocks"]:
                print(f"#{b['height']:<5d} {b['hash'][:16]} proposer={b['proposer'][:16]} txs={len(b['txs'])}")
            print(f"supply: {exported['supply']}")
        else:
            _print_json(exported)
    except LedgerError as err:  # e.g. a truncated database: under --json (and verify, always JSON) a JSON error
        if args.json or args.action in ("verify", "audit"):
            _print_json({"ok": False, "path": str(data_dir), "reason": err.reason, "error": str(err)})
        return _err(f"{type(err).__name__}: {err}")
    return 0


def audit_line(report: dict[str, Any]) -> str:
    """``bazaar chain audit`` for people: one line."""
    if report["covered"]:
        contract = (f"contract {', '.join(report['contracts'])} re-verified {report['checked']} blocks"
                    + (f" ({len(report['unverifiable'])} need off-chain data)" if report["unverifiable"] else ""))
    else:
        contract = f"no market contract for role {report['role']}"
    verdict = "ok" if report["ok"] else f"FAILED at block {report['first_bad']}: {report['error']}"
    return (f"{report['node']} ({report['market']}): {report['blocks']} blocks, tokens conserved at every block: "
            f"{report['conserved']}; {contract}; {verdict}")


def _cmd_testnet(args: argparse.Namespace) -> int:
    from bazaar.deploy import shipped_names

    from .testnet import load_testnet
    from .testnet.runner import report_lines

    if args.action == "list":
        for name in shipped_names("testnet"):
            tn = load_testnet(name)
            print(f"{name:24s} {tn.scenario.name:20s} {tn.rounds:4d} rounds  {tn.description}")
        return 0
    if args.action == "check":
        from .testnet.runner import recheck

        if not args.root:
            raise ParamError("--root", "missing: the folder of a finished run")
        result = recheck(Path(args.root))
    else:
        if not args.testnet:
            raise ParamError("testnet", "missing: a shipped testnet name or a TOML file (bazaar testnet list)")
        ran = _run_testnet(args)
        if ran is None:
            return 1
        result = ran
    if args.json:
        _print_json(result)
    else:
        print("\n".join(report_lines(result)))
    return 0 if all(result["invariants"].values()) else 1


def _run_testnet(args: argparse.Namespace) -> dict[str, Any] | None:
    from . import launcher
    from .testnet import load_testnet, run_testnet

    if args.rounds is not None and args.rounds < 1:
        raise ParamError("--rounds", "must be at least 1")
    testnet = load_testnet(args.testnet)
    try:
        return run_testnet(testnet, Path(args.root) if args.root else None, rounds=args.rounds,
                           progress=_progress if not args.quiet else (lambda _: None))
    except launcher.LaunchError as err:
        _err(str(err))
        return None


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import launcher
    from .demo import run_demo

    try:
        return run_demo(Path(args.out) if args.out else None, scenarios=args.scenario, progress=_progress)
    except launcher.LaunchError as err:
        return _err(str(err))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the network sub-commands to the top-level parser."""
    node = sub.add_parser("node", help="run one participant (normally started by `bazaar net up`)")
    node.add_argument("--role", help="the node's role (must match the config; see the market's roles)")
    node.add_argument("--market", help="market name (must match the scenario)")
    node.add_argument("--config", help="the node's node.toml")
    node.add_argument("--listen", help="libp2p listen multiaddr, e.g. /ip4/127.0.0.1/tcp/0")
    node.add_argument("--bootstrap", nargs="*", metavar="MULTIADDR",
                      help="extra peers to dial: /ip4/127.0.0.1/tcp/PORT/p2p/PEER_ID (the address book is node.toml)")
    node.add_argument("--data-dir", dest="data_dir", help="override the data directory")
    node.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    node.set_defaults(func=_cmd_node)

    net = sub.add_parser("net", help="a local multi-process network")
    net.add_argument("action", choices=("up", "down", "status", "kill", "start", "pause", "resume"),
                     help="up: start every node; down: stop them; status: one row per node (exit 1 if a "
                          "node is down); kill / start / pause / resume: one node (--node; SIGKILL, restart, "
                          "SIGSTOP, SIGCONT)")
    net.add_argument("--scenario", help="shipped scenario name or TOML file (for up)")
    net.add_argument("--dir", required=True, help="the network folder")
    net.add_argument("--node", help="node name (for kill / start / pause / resume)")
    net.add_argument("--json", action="store_true", help="JSON output (status)")
    net.add_argument("--log-json", action="store_true", help="nodes log JSON lines")
    net.add_argument("--hosts", choices=("loopback", "netns"), default="loopback",
                     help="up: where nodes run: loopback (default) or netns (a Linux network namespace each, "
                          "joined by veth pairs to a bridge; needs root; docs/deploy.md)")
    net.add_argument("--link-delay", help="up --hosts netns: one-way delay per link (tc netem), e.g. 20ms")
    net.add_argument("--link-jitter", help="up --hosts netns: delay jitter per link, e.g. 5ms")
    net.add_argument("--link-loss", help="up --hosts netns: packet loss per link, e.g. 0.1%%")
    net.set_defaults(func=_cmd_net)

    rnd = sub.add_parser("round", help="run scripted market rounds on a running network (one JSON line each)")
    rnd.add_argument("--dir", required=True, help="the network folder")
    rnd.add_argument("--rounds", type=int, default=1, help="how many rounds to run (default 1)")
    rnd.add_argument("--scenario", help="(the network's own scenario is used)")
    rnd.add_argument("--progress", action="store_true", help="progress lines on stderr")
    rnd.add_argument("--json", action="store_true", help="one JSON object per round (default: a line for people)")
    rnd.set_defaults(func=_cmd_round)

    chain = sub.add_parser("chain", help="inspect or verify a node's chain offline")
    chain.add_argument("action", choices=("verify", "audit", "show", "export"),
                       help="verify: re-check every hash, signature and state root; audit: tokens conserved at "
                            "every block and the market's settlement contract re-run on every block (exit 1 if a "
                            "trade does not re-verify); show: one line per block; export: the finalized chain and "
                            "state as JSON")
    chain.add_argument("--data-dir", dest="data_dir", required=True, help="the node's data folder (NET/nodes/NAME)")
    chain.add_argument("--json", action="store_true", help="JSON output (show, audit)")
    chain.set_defaults(func=_cmd_chain)

    tn = sub.add_parser("testnet", help="run a testnet: a network with perturbations, invariants checked at the end",
                        epilog="exit codes: 0 every invariant held, 1 an invariant failed (or the network did not "
                               "start), 2 bad usage or testnet file")
    tn.add_argument("action", choices=("run", "check", "list"),
                    help="run: one testnet; check: re-check the invariants of a finished run (--root); list: the "
                         "shipped testnets")
    tn.add_argument("testnet", nargs="?", help="shipped testnet name or TOML file (docs/testnets.md)")
    tn.add_argument("--json", action="store_true", help="print one JSON object (default: a table for people)")
    tn.add_argument("--root", help="network folder, new or empty (default: a fresh temporary folder, kept)")
    tn.add_argument("--rounds", type=int, help="run this many rounds instead of the file's")
    tn.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    tn.set_defaults(func=_cmd_testnet)

    demo = sub.add_parser("demo", help="the main job: a local network running every scripted round")
    demo.add_argument("--out", help="run folder (default runs/demo-<time>)")
    demo.add_argument("--scenario", action="append",
                      help="scenario to run (repeatable; default: every registered market's default scenario)")
    demo.set_defaults(func=_cmd_demo)
