"""``bazaar net up|down|status|kill|start|pause|resume`` for people: progress, tables and where to look.

Under ``--json`` each action prints the document it always printed (``net up``: ``{"dir", "nodes",
"up_seconds"}``; ``net status``: ``{"nodes": [...]}``; ``net down``: ``{"stopped": [...]}``; ``net kill``:
``{"killed", "pid"}`` ...); without it, a table or one sentence. rich and psutil are imported here only, on the
command line's rendering path, never by node processes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .cli_process import process_state
from .output import note, print_json, show, table


def explorer_url(info: dict[str, Any]) -> str | None:
    """The explorer page of the network: the first node's HTTP address (``None`` before it was ready)."""
    first = next(iter(info.get("nodes", {}).values()), None)
    port = first.get("http_port") if isinstance(first, dict) else None
    return f"http://127.0.0.1:{port}/" if isinstance(port, int) else None


def _up(args: argparse.Namespace, root: Path) -> int:
    from . import launcher
    from .params import ParamError

    if not args.scenario:
        raise ParamError("--scenario", "missing (a shipped scenario name, or a TOML file)")
    if args.json:  # progress lines on stderr as before, the JSON document on stdout
        info = launcher.net_up(args.scenario, root, log_json=args.log_json, hosts=_hosts(args), progress=_stamp,
                               metrics=args.metrics)
        print_json({"dir": str(root), "nodes": len(info["nodes"]), "up_seconds": info["up_seconds"],
                    **({"prometheus": info["metrics"]} if args.metrics else {})})
        return 0
    info = _up_with_progress(args, root)
    url = explorer_url(info)
    lines = [
        f"network {info['name']} is up: {len(info['nodes'])} nodes in {info['up_seconds']} s",
        f"  folder    {root.resolve()}",
        f"  explorer  {url or '(not ready)'}",
        f"  status    bazaar net status --dir {root}",
        f"  rounds    bazaar round --dir {root} --rounds 3",
        f"  logs      bazaar net logs --dir {root} -f",
        *([f"  metrics   {info['metrics']} (a Prometheus scrape config)"] if args.metrics else []),
        f"  stop      bazaar net down --dir {root}",
    ]
    print("\n".join(lines))
    return 0


def _stamp(line: str) -> None:
    note(f"[{time.strftime('%H:%M:%S')}] {line}")


def _up_with_progress(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """``net_up`` with a live progress bar on a terminal (one line per milestone otherwise)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import launcher
    from .output import console

    err = console(stderr=True)
    if not err.is_terminal:
        last: dict[str, Any] = {}

        def plain(ev: dict[str, Any]) -> None:
            kind = ev["event"]
            if kind == "starting" and ev["done"] == 0:
                _stamp(f"starting {ev['total']} nodes")
            elif kind == "ready":
                _stamp(f"node {ev['node']} ready ({ev['done']}/{ev['total']})")
            elif kind == "connecting" and last.get("connecting") != ev["done"]:
                last["connecting"] = ev["done"]
                _stamp(f"connecting: {ev['done']} of {ev['total']} nodes have peers")
            elif kind == "connected":
                _stamp(f"connected: {ev['total']} of {ev['total']} nodes have peers")

        return launcher.net_up(args.scenario, root, log_json=args.log_json, hosts=_hosts(args), on_progress=plain,
                                 metrics=args.metrics)

    with Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def task(name: str, total: int) -> Any:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            return tasks[name]

        def live(ev: dict[str, Any]) -> None:
            kind, total = ev["event"], ev["total"]
            if kind == "starting":
                bar.update(task("spawned", total), completed=ev["done"] + 1,
                           description=f"spawned {ev['node']}")
            elif kind == "ready":
                bar.update(task("ready", total), completed=ev["done"], description=f"ready: {ev['node']}")
            else:
                bar.update(task("connected", total), completed=ev["done"],
                           description="connected" if kind == "connected" else "connecting (nodes with peers)")

        return launcher.net_up(args.scenario, root, log_json=args.log_json, hosts=_hosts(args), on_progress=live,
                               metrics=args.metrics)


def _status(args: argparse.Namespace, root: Path) -> int:
    from . import launcher

    status = launcher.net_status(root)
    rows = status["nodes"]
    if args.json:
        print_json(status)
    else:
        info = launcher.NetDir(root).load()
        top = max((r["finalized"] for r in rows if isinstance(r.get("finalized"), int)), default=None)
        body = []
        for r in rows:
            state, rss = process_state(r["pid"], info["nodes"][r["name"]]["config"])
            alive = "yes" if r["alive"] and state == "running" else "stopped" if state == "stopped" else "no"
            body.append((r["name"], r["role"], r["pid"], alive, r["height"],
                         r["finalized"], r["peers"], _sync(r, top), r.get("rss_mb") or rss))
        url = explorer_url(info)
        show(table(f"network {info.get('name', root.name)} ({root})",
                   ("node", "role", "pid", "alive", "height", "finalized", "peers", "sync", "RSS MB"),
                   body, right=("pid", "height", "finalized", "peers", "RSS MB")))
        print(f"explorer: {url or '-'}\nlogs:     bazaar net logs --dir {root} -f")
    down = [r for r in rows if not r["alive"]]
    if down:
        named = [f"{r['name']} (stopped)" if r["state"] == "stopped" else r["name"] for r in down]
        print(f"{len(down)} of {len(rows)} nodes down: {', '.join(named)}", file=sys.stderr)
        return 1
    return 0


def _sync(row: dict[str, Any], top: int | None) -> str:
    """``synced``, ``syncing (N behind)`` against the highest finalized height of the network, or ``-``."""
    if not row["alive"] or not isinstance(row.get("finalized"), int):
        return "-"
    if row.get("synced") is False:
        return "syncing"
    behind = (top or 0) - row["finalized"]
    return f"syncing ({behind} behind)" if behind > 0 else "synced"


def _one_node(args: argparse.Namespace, root: Path) -> int:
    from . import launcher
    from .params import ParamError

    if not args.node:
        raise ParamError("--node", "missing: which node")
    verbs = {"kill": ("killed", "SIGKILL sent", launcher.net_kill),
             "pause": ("paused", "SIGSTOP sent", launcher.net_pause),
             "resume": ("resumed", "SIGCONT sent", launcher.net_resume)}
    if args.action == "start":
        pid = launcher.net_start(root, args.node)["pid"]
        doc, text = {"started": args.node, "pid": pid}, f"started {args.node} (pid {pid}); it resyncs its chain"
    else:
        key, what, act = verbs[args.action]
        pid = act(root, args.node)
        doc, text = {key: args.node, "pid": pid}, f"{key} {args.node} (pid {pid}, {what})"
    if args.json:
        print_json(doc)
    else:
        print(text)
    return 0


def cmd_net(args: argparse.Namespace) -> int:
    """``bazaar net ACTION``: the network actions (``logs`` is :mod:`bazaar.node.cli_logs`)."""
    from . import launcher

    root = Path(args.dir)
    try:
        if args.action != "up":
            launcher.NetDir(root).load()  # NoNetwork: exit 2 before any action
        if args.action == "up":
            return _up(args, root)
        if args.action == "logs":
            from .cli_logs import cmd_logs

            return cmd_logs(args, root)
        if args.action == "down":
            stopped = launcher.net_down(root)
            if args.json:
                print_json({"stopped": stopped})
            else:
                print(f"stopped {len(stopped)} nodes: {', '.join(stopped)}" if stopped
                      else f"no node of {root} was running")
            return 0
        if args.action == "status":
            return _status(args, root)
        return _one_node(args, root)
    except launcher.NoNetwork as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except launcher.LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _hosts(args: argparse.Namespace) -> Any:
    """``--hosts`` and ``--link-*`` of ``net up`` as the launcher's hosts strategy (docs/deploy.md)."""
    from .hosts.netns import hosts_for

    return hosts_for(getattr(args, "hosts", "loopback"), getattr(args, "link_delay", None),
                     getattr(args, "link_jitter", None), getattr(args, "link_loss", None))
