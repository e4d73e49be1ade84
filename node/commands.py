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
import os
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

    if cfg.nice:
        os.nice(cfg.nice)  # a leaf of a sparse one-machine network yields CPU to the hubs (docs/adr/0198)
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
    from .cli_net import cmd_net

    return cmd_net(args)


def _cmd_round(args: argparse.Namespace) -> int:
    from . import launcher
    from .rounds.driver import run_rounds

    if args.rounds < 1:
        raise ParamError("--rounds", "must be at least 1")
    try:
        scripted = _scripted_rounds(Path(args.dir))
        for summary in run_rounds(Path(args.dir), args.rounds, progress=_progress if args.progress else None):
            _past_phases(summary, scripted)
            if args.json:
                _print_json(summary)
            else:
                print(round_line(Path(args.dir), summary), flush=True)
    except launcher.NoNetwork as err:
        return _err(str(err), 2)
    except launcher.LaunchError as err:
        return _err(str(err))
    return 0


def _scripted_rounds(root: Path) -> tuple[int, str]:
    """How many rounds the network's scenario scripts, and its last phase's name (NoNetwork when none)."""
    from . import launcher
    from .scenario import load_scenario

    scenario = load_scenario(launcher.NetDir(root).load()["scenario"])
    return scenario.total_rounds, scenario.phases[-1].name


def _past_phases(summary: dict[str, Any], scripted: tuple[int, str]) -> None:
    """Say on stderr when a round runs past the scenario's phases (it repeats the last phase)."""
    total, last = scripted
    number = summary.get("round")
    if isinstance(number, int) and number > total:
        print(f"note: round {number} is past the scenario's {total} scripted rounds: it repeats the last phase "
              f"({last!r})", file=sys.stderr, flush=True)


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
            if args.json:
                _print_json(report)
            else:
                from .cli_chain import verify_line

                print(verify_line(data_dir, report))
            return 0 if report["ok"] else 1
        exported = export_data_dir(data_dir)
        if args.action == "show" and not args.json:
            from .cli_chain import show_chain

            show_chain(data_dir, exported)
        else:
            _print_json(exported)
    except LedgerError as err:  # e.g. a truncated database: under --json a JSON error, and always one line
        if args.json or args.action == "export":
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
        listed = [(name, load_testnet(name)) for name in shipped_names("testnet")]
        if args.json:
            _print_json([{"name": name, "scenario": tn.scenario.name, "rounds": tn.rounds,
                          "description": tn.description} for name, tn in listed])
        for name, tn in [] if args.json else listed:
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

    out = Path(args.out) if args.out else Path(f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        if not args.json:
            return run_demo(out, scenarios=args.scenario, markets=args.market, progress=_progress)
        with contextlib.redirect_stdout(sys.stderr):  # the tables for people go to stderr
            code = run_demo(out, scenarios=args.scenario, markets=args.market, progress=_progress)
    except launcher.LaunchError as err:
        return _err(str(err))
    try:
        _print_json(json.loads((out / "summary.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        return _err(f"no readable summary in {out}: {err}")
    return code


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
    net.add_argument("action", choices=("up", "down", "status", "logs", "kill", "start", "pause", "resume"),
                     help="up: start every node (progress, then where to look); down: stop them; status: one row "
                          "per node (exit 1 if a node is down); logs: every node's log merged by time (-f "
                          "follows); kill / start / pause / resume: one node (--node; SIGKILL, restart, "
                          "SIGSTOP, SIGCONT)")
    net.add_argument("--scenario", help="shipped scenario name or TOML file (for up)")
    net.add_argument("--dir", required=True, help="the network folder")
    net.add_argument("--node", help="node name (kill / start / pause / resume); logs: only these nodes (N,M,...)")
    net.add_argument("--json", action="store_true",
                     help="machine output: one JSON document (logs: one JSON object per line)")
    net.add_argument("--log-json", action="store_true", help="up: nodes log JSON lines")
    net.add_argument("--metrics", action="store_true",
                     help="up: also write prometheus.yml into the folder: a Prometheus scrape config of every "
                          "node's GET /metrics")
    from .cli_logs import add_arguments

    add_arguments(net)
    net.add_argument("--hosts", choices=("loopback", "netns"), default="loopback",
                     help="up: where nodes run: loopback (default) or netns (a Linux network namespace each, "
                          "joined by veth pairs to a bridge; needs root; docs/deploy.md)")
    net.add_argument("--link-delay", help="up --hosts netns: one-way delay per link (tc netem), e.g. 20ms")
    net.add_argument("--link-jitter", help="up --hosts netns: delay jitter per link, e.g. 5ms")
    net.add_argument("--link-loss", help="up --hosts netns: packet loss per link, e.g. 0.1%%")
    net.set_defaults(func=_cmd_net)

    rnd = sub.add_parser("round", help="run scripted market rounds on a running network (a line per round; "
                                       "--json: one JSON object per round)")
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
    chain.add_argument("--json", action="store_true",
                       help="machine output: one JSON document (export prints JSON either way)")
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
    demo.add_argument("--market", action="append",
                      help="run this market's default scenario alone (repeatable; see `bazaar demo --help`)")
    demo.add_argument("--json", action="store_true",
                      help="print the run's summary.json on stdout as one JSON document (tables go to stderr)")
    demo.set_defaults(func=_cmd_demo)
