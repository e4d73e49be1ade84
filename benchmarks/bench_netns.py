"""Round latency across network namespaces (``net up --hosts netns``) against loopback, in the same run.

Run ``python benchmarks/bench_netns.py [--rounds N] [--scenario NAME] [--json]`` as root. Three networks of the
same scenario run side by side, their rounds taken in turn (so the shared machine's load falls on all alike):
loopback (the baseline), namespaces with plain veth links (0 ms), and namespaces with ``--link-delay 20ms
--link-jitter 5ms`` per link (tc netem, or the user-space switch where the kernel has no sch_netem: ``links``
says which). Each reports the median and max of ``latency_all_ms`` (from the leader's ``POST /round`` to the
round's block final on every node) over N rounds, the ratio of its median to loopback's, and for namespaces the
median TCP connect time between two nodes (one round trip: about twice the per-link delay). A layout this
machine cannot run (no root) is reported with its reason instead of a figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bazaar.node import launcher
from bazaar.node.hosts import Hosts, Loopback
from bazaar.node.hosts.netns import LinkShape, Netns, available
from bazaar.node.rounds.driver import run_rounds

_CONNECT_RTT = """
import socket, statistics, sys, time
rtts = []
for _ in range(20):
    t = time.perf_counter()
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    rtts.append((time.perf_counter() - t) * 1000)
print(round(statistics.median(rtts[1:]), 2))
"""


def _connect_rtt_ms(info: dict[str, Any]) -> float | None:
    """Median TCP connect time from the first node's namespace to the second node's libp2p port."""
    hosts = info.get("hosts") or {}
    if hosts.get("kind") != "netns":
        return None
    first, second = list(hosts["nodes"].values())[:2]
    done = subprocess.run(["ip", "netns", "exec", first["netns"], sys.executable, "-c", _CONNECT_RTT, second["ip"],
                           "4001"], capture_output=True, text=True, timeout=60, check=True)
    return float(done.stdout.strip())


def _figures(info: dict[str, Any], rtt: float | None, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    lat = [s["latency_all_ms"] for s in summaries if s.get("latency_all_ms") is not None]
    return {"nodes": len(info["nodes"]), "up_s": info["up_seconds"], "rounds": len(summaries),
            "final_everywhere": sum(bool(s["final_everywhere"]) for s in summaries),
            "median_ms": round(statistics.median(lat), 1) if lat else None, "max_ms": max(lat) if lat else None,
            "links": (info.get("hosts") or {}).get("links", "loopback"), "connect_rtt_ms": rtt}


def _measure_interleaved(scenario: str, layouts: dict[str, Hosts], rounds: int, tmp: Path) -> dict[str, Any]:
    """Every layout's network up at once, rounds taken in turn (round 1 of each, then round 2, ...), so that
    the shared machine's changing load falls on every layout alike."""
    roots = {name: tmp / f"net{i}" for i, name in enumerate(layouts)}
    infos: dict[str, dict[str, Any]] = {}
    summaries: dict[str, list[dict[str, Any]]] = {name: [] for name in layouts}
    try:
        for name, hosts in layouts.items():
            infos[name] = launcher.net_up(scenario, roots[name], hosts=hosts, timeout=180)
        rtts = {name: _connect_rtt_ms(info) for name, info in infos.items()}
        for _ in range(rounds):
            for name in layouts:
                summaries[name] += run_rounds(roots[name], 1)
    finally:
        for root in roots.values():
            launcher.net_down(root)
    return {name: _figures(infos[name], rtts[name], summaries[name]) for name in layouts}


def main() -> int:
    """Print the figures (one JSON object with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="rounds per layout (default 5)")
    ap.add_argument("--scenario", default="ai-bazaar-small", help="shipped scenario (default ai-bazaar-small)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    layouts: list[tuple[str, Hosts | None, str | None]] = [
        ("loopback", Loopback(), None),
        ("netns 0ms", Netns(), available()),
        ("netns 20ms+-5ms", Netns(LinkShape("20ms", "5ms")), available()),
    ]
    out: dict[str, Any] = {"scenario": args.scenario, "rounds": args.rounds, "layouts": {}}
    runnable = {name: hosts for name, hosts, reason in layouts if reason is None and hosts is not None}
    with tempfile.TemporaryDirectory(prefix="bench-netns-") as tmp:
        measured = _measure_interleaved(args.scenario, runnable, args.rounds, Path(tmp))
    for name, _, reason in layouts:
        out["layouts"][name] = measured.get(name, {"skipped": reason})
    base = out["layouts"]["loopback"].get("median_ms")
    for fig in out["layouts"].values():
        if fig.get("median_ms") and base:
            fig["vs_loopback"] = round(fig["median_ms"] / base, 2)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"round latency, {args.scenario}, {args.rounds} rounds per layout (latency_all_ms: POST /round to final "
          "on every node)")
    for name, fig in out["layouts"].items():
        if "skipped" in fig:
            print(f"  {name:18s} not run: {fig['skipped']}")
        else:
            print(f"  {name:18s} median {fig['median_ms']} ms, max {fig['max_ms']} ms, x{fig.get('vs_loopback')} "
                  f"of loopback ({fig['final_everywhere']}/{fig['rounds']} final everywhere, {fig['nodes']} nodes, "
                  f"up in {fig['up_s']} s; links {fig['links']}, TCP connect {fig['connect_rtt_ms']} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
