"""CPU per gossip message for gossipsub protocol versions and mesh degrees, on this machine (docs/adr/0124).

    python benchmarks/bench_gossip.py [--nodes N] [--rate R] [--seconds S] [--variants all|NAME,...] [--json]

For each variant, N node processes (the project's own libp2p transport, protocol/p2p.py, on 127.0.0.1) join
one topic; once every mesh has formed, each publishes R/N messages a second (256-byte payloads carrying the
send time) for S seconds, then drains. Each process reports the CPU time it spent during the publishing
window (user + system, ``resource.getrusage``) and what it received. Printed per variant: network-wide CPU
milliseconds per published message, the idle CPU of the same network over the same window length (measured
first, so the per-message figure has the idle cost removed), delivery ratio, and latency p50/p99; and each
variant's CPU per message as a ratio to the first variant's in the same run. ``--json`` prints one JSON object.
Nothing is asserted: the machine is shared and noisy; compare the variants of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "1.1-d4": {"protocol": "/meshsub/1.1.0", "degree": 4, "degree_low": 3, "degree_high": 6},
    "1.2-d4": {"protocol": "/meshsub/1.2.0", "degree": 4, "degree_low": 3, "degree_high": 6},
    "1.1-d6": {"protocol": "/meshsub/1.1.0", "degree": 6, "degree_low": 4, "degree_high": 12},
    "1.0-d4": {"protocol": "/meshsub/1.0.0", "degree": 4, "degree_low": 3, "degree_high": 6},
}
TOPIC = "bench/gossip"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(index: int, ports: list[int], variant: str, start_at: float, seconds: float, rate: float,
          idle: bool) -> None:
    """One node: wait for the mesh, publish at ``rate`` msg/s from ``start_at`` for ``seconds``, report JSON."""
    import hashlib

    import trio

    from bazaar.protocol.keys import KeyPair
    from bazaar.protocol.p2p import open_libp2p_transport
    from bazaar.protocol.p2p_settings import GossipSettings

    def key(i: int) -> KeyPair:
        return KeyPair(hashlib.sha256(b"bench-gossip-%d" % i).digest())

    me = key(index)
    peers = [(key(i).public, f"/ip4/127.0.0.1/tcp/{p}") for i, p in enumerate(ports) if i != index]
    settings = GossipSettings(**VARIANTS[variant])

    async def run() -> dict[str, Any]:
        async with open_libp2p_transport(me, listen=f"/ip4/127.0.0.1/tcp/{ports[index]}", peers=peers,
                                         topics=[TOPIC], gossip=settings) as t:
            inbox = t.subscribe(TOPIC)
            received: list[float] = []
            with trio.move_on_after(max(1.0, start_at - time.time() - 0.5)):
                while len(t.mesh_peers(TOPIC)) < min(settings.degree_low, len(ports) - 1):
                    await trio.sleep(0.1)  # a benchmark warm-up, not a test: the mesh forms on heartbeats
            mesh = len(t.mesh_peers(TOPIC))
            await trio.sleep(max(0.0, start_at - time.time()))
            cpu0 = _cpu()
            sent = 0
            async with trio.open_nursery() as nursery:

                async def receive() -> None:
                    async for d in inbox:
                        received.append(time.time() - float(d.data[:20].decode()))

                nursery.start_soon(receive)
                if not idle:
                    period = len(ports) / rate
                    t_next = trio.current_time()
                    end = trio.current_time() + seconds
                    while trio.current_time() < end:
                        await t.publish(TOPIC, f"{time.time():<20.6f}".encode() + os.urandom(236))
                        sent += 1
                        t_next += period
                        await trio.sleep_until(t_next)
                else:
                    await trio.sleep(seconds)
                cpu1 = _cpu()
                await trio.sleep(2.0)  # drain what is in flight
                nursery.cancel_scope.cancel()
            return {"index": index, "sent": sent, "received": len(received), "latencies": received,
                    "cpu_s": cpu1 - cpu0, "mesh": mesh}

    print(json.dumps(trio.run(run)), flush=True)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_variant(variant: str, nodes: int, rate: float, seconds: float, idle: bool) -> dict[str, Any]:
    """Start ``nodes`` processes, run one window, collect their reports (only our children are waited for)."""
    ports = _free_ports(nodes)
    start_at = time.time() + 8.0 + 0.6 * nodes  # imports and mesh formation on a loaded 2-core machine
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(i), "--ports", ",".join(map(str, ports)),
                               "--variant", variant, "--start-at", repr(start_at), "--seconds", str(seconds),
                               "--rate", str(rate)] + (["--idle"] if idle else []),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(nodes)]
    reports, failed = [], []
    try:
        for i, p in enumerate(procs):
            try:
                out, err = p.communicate(timeout=max(5.0, start_at - time.time() + seconds + 60))
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            line = out.strip().splitlines()[-1] if out.strip() else ""
            if line:
                reports.append(json.loads(line))
            else:
                failed.append(f"node {i}: {(err or '').strip().splitlines()[-1:] or ['no output']}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    sent = sum(r["sent"] for r in reports)
    received = sum(r["received"] for r in reports)
    lat = sorted(x for r in reports for x in r["latencies"])
    return {"variant": variant, "reports": len(reports), "failed": failed, "sent": sent, "received": received,
            "delivery": received / (sent * (nodes - 1)) if sent else None,
            "cpu_s": sum(r["cpu_s"] for r in reports), "mesh_min": min((r["mesh"] for r in reports), default=0),
            "latency_p50_ms": 1000 * lat[len(lat) // 2] if lat else None,
            "latency_p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--rate", type=float, default=20.0, help="messages per second, network-wide")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--variants", default="1.1-d4,1.2-d4,1.1-d6")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, [int(p) for p in args.ports.split(",")], args.variant, args.start_at, args.seconds,
              args.rate, args.idle)
        return
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or args.nodes < 2 or args.rate <= 0 or args.seconds <= 0:
        print(f"error: unknown variant(s) {unknown} (known: {', '.join(VARIANTS)}) or a bad number", file=sys.stderr)
        sys.exit(2)
    idle = run_variant(names[0], args.nodes, args.rate, args.seconds, idle=True)
    rows = []
    for name in names:
        r = run_variant(name, args.nodes, args.rate, args.seconds, idle=False)
        busy = r["cpu_s"] - idle["cpu_s"]
        r["cpu_ms_per_msg"] = 1000 * busy / r["sent"] if r["sent"] else None
        rows.append(r)
    base = rows[0]["cpu_ms_per_msg"]
    for r in rows:
        r["ratio_to_first"] = r["cpu_ms_per_msg"] / base if base and r["cpu_ms_per_msg"] else None
    out = {"nodes": args.nodes, "rate_msgs_per_s": args.rate, "seconds": args.seconds,
           "idle_cpu_s": idle["cpu_s"], "load_avg_1m": round(os.getloadavg()[0], 2), "variants": rows}
    if args.json:
        for r in rows:
            r.pop("reports", None)
        print(json.dumps(out))
        return
    print(f"{args.nodes} processes, {args.rate:g} msg/s network-wide for {args.seconds:g} s, 256-byte payloads; "
          f"idle network CPU over the same window: {idle['cpu_s']:.2f} s (load average {out['load_avg_1m']})")
    print(f"{'variant':10s} {'sent':>6s} {'deliv':>6s} {'CPU s':>7s} {'ms CPU/msg':>11s} {'ratio':>6s} "
          f"{'p50 ms':>7s} {'p99 ms':>7s} {'mesh':>5s}")
    for r in rows:
        print(f"{r['variant']:10s} {r['sent']:6d} {r['delivery'] or 0:6.3f} {r['cpu_s']:7.2f} "
              f"{r['cpu_ms_per_msg'] or float('nan'):11.2f} {r['ratio_to_first'] or float('nan'):6.2f} "
              f"{r['latency_p50_ms'] or float('nan'):7.1f} {r['latency_p99_ms'] or float('nan'):7.1f} "
              f"{r['mesh_min']:5d}")


if __name__ == "__main__":
    main()
