"""Start many node processes from one parent that has imported the node code once (docs/adr/0120).

``bazaar net up`` used to start every node as ``python -m bazaar.node.cli node --config ...``: each process
imported py-libp2p, trio, numpy and the market's apps itself, ≈ 1.5 s of CPU apiece, so 9 nodes on 2 cores
spent most of their start-up importing the same modules side by side (and 50 nodes, half a minute). Here one
parent process imports all of that once, then ``fork``s one child per node; a child is at once where a fresh
process would be after its imports, and runs the very same entry as the spawned command (``bazaar.node.cli``'s
``main(["node", "--config", CONFIG])``) in its own session, with its output in its ``node.log``.

Run by the launcher as ``python -m bazaar.node.forkserver --market M CONFIG...`` (each node's output goes to
``node.log`` beside its config); it prints one JSON line
``{"config": ..., "pid": ...}`` per child and exits, leaving the children running (they are reparented, and
only ever signalled by the PID the launcher recorded, after checking that its command line names that config:
a child's command line is this parent's, which lists every config). The parent starts no thread and no trio
loop before forking, so each child starts clean.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence

_PRELOAD = ("bazaar.node.runtime", "bazaar.node.commands", "bazaar.protocol.p2p")


def preload(market: str | None) -> None:
    """Import what every node process needs, and the role apps of ``market`` (all of them, if None)."""
    for name in _PRELOAD:
        importlib.import_module(name)
    from .markets.registry import get_spec, market_names

    for m in [market] if market else market_names():
        spec = get_spec(m)
        for role in spec.roles:
            importlib.import_module(role.app.partition(":")[0])


def _child(config: str, log_path: str) -> int:
    """In the forked child: a new session, stdio on the node's log, then the node command."""
    os.setsid()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    # Signal dispositions are the interpreter's own, inherited unchanged: SIGPIPE stays ignored (a write to a
    # connection the peer reset must raise, not kill the node silently), SIGINT raises KeyboardInterrupt.
    from .cli import main

    return main(["node", "--config", config])


def spawn(configs: Sequence[tuple[str, str]]) -> list[int]:
    """Fork one node per ``(config path, log path)``; returns their PIDs in order (parent side)."""
    pids = []
    for config, log_path in configs:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns into the parent's code
            code = 1
            try:
                code = _child(config, log_path)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # the child's last words go to its log, then it exits
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        pids.append(pid)
    return pids


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bazaar.node.forkserver [--market M] CONFIG ...`` (the launcher's helper; each node logs to
    ``node.log`` beside its ``node.toml``)."""
    parser = argparse.ArgumentParser(prog="python -m bazaar.node.forkserver")
    parser.add_argument("--market", help="the market whose role apps to pre-import (default: every market)")
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="a node's node.toml")
    args = parser.parse_args(argv)
    pairs = [(c, os.path.join(os.path.dirname(os.path.abspath(c)), "node.log")) for c in args.configs]
    preload(args.market)
    for (config, _), pid in zip(pairs, spawn(pairs), strict=True):
        print(json.dumps({"config": config, "pid": pid}), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
