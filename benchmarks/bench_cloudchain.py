"""Figures of the cloudchain market's network pieces, each beside its baseline measured in the same run:

* a t-of-m BLS quorum (aggregate t signatures + one aggregate verify) against m individual Ed25519 verifies;
* a blob fetched over a libp2p stream (the provider's blob protocol) against the same bytes over raw loopback
  TCP (trio sockets), both in one process on 127.0.0.1.

    python benchmarks/bench_cloudchain.py [--quick] [--json]

The mechanism's figures (the contract against the exact MILP, Jain by group size, the privacy overhead) come
from ``benchmarks/bench_cloudchain_contract.py``; round latency and RSS per process come from
``benchmarks/bench_network.py --scenario cloudchain``. Nothing is asserted: this machine is shared and noisy;
read the ratios of one run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from typing import Any

import trio

from bazaar.ledger import bls
from bazaar.protocol import KeyPair, codec
from bazaar.protocol.keys import verify


def quorum_vs_ed25519(m: int, t: int, reps: int) -> dict[str, Any]:
    """t-of-m: aggregate t BLS signatures of one verdict and verify the aggregate, against m Ed25519 verifies."""
    msg = b"bazaar/cloudchain/verdict/v1|bench|" + os.urandom(32) + b"|met|" + os.urandom(32)
    secrets = [bls.bls_keygen(os.urandom(32)) for _ in range(m)]
    pks = [bls.sk_to_pk(s) for s in secrets]
    sigs = [bls.sign(s, msg) for s in secrets]
    keys = [KeyPair(os.urandom(32)) for _ in range(m)]
    eds = [(k.public, k.sign(msg)) for k in keys]
    t0 = time.perf_counter()
    for _ in range(reps):
        agg = bls.aggregate(sigs[:t])
        assert bls.fast_aggregate_verify(pks[:t], msg, agg)
    bls_s = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        for pub, sig in eds:
            verify(pub, msg, sig)
    ed_s = (time.perf_counter() - t0) / reps
    return {"m": m, "t": t, "bls_aggregate_verify_ms": 1000 * bls_s, "ed25519_m_verifies_ms": 1000 * ed_s,
            "ratio": bls_s / ed_s, "bls_bytes": 96, "ed25519_bytes": 64 * m}


async def _blob_fetch(size: int, reps: int) -> dict[str, Any]:
    from bazaar.protocol.p2p import open_libp2p_transport

    blob = os.urandom(size)
    a, b = KeyPair(os.urandom(32)), KeyPair(os.urandom(32))
    proto = "/bazaar/bench-blob/1"

    async def serve(peer: bytes, request: bytes) -> bytes:
        return codec.encode({"data": blob})

    async with open_libp2p_transport(a) as server:
        server.set_handler(proto, serve)
        async with open_libp2p_transport(b, peers=[(a.public, server.listen_addrs[0])]) as client:
            with trio.fail_after(30):
                while a.public not in client.peers():
                    await trio.sleep(0.05)
            await client.request(a.public, proto, b"{}", timeout=30)  # warm the stream protocol
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                raw = await client.request(a.public, proto, b"{}", timeout=30)
                times.append(time.perf_counter() - t0)
                assert len(codec.decode(raw, max_size=size + 64)["data"]) == size
    p2p = statistics.median(times)

    async def handler(stream: trio.SocketStream) -> None:
        await stream.receive_some(16)
        await stream.send_all(blob)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        tcp_times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"get")
            got = bytearray()
            while len(got) < size:
                chunk = await stream.receive_some(1 << 20)
                if not chunk:
                    break
                got += chunk
            await stream.aclose()
            tcp_times.append(time.perf_counter() - t0)
        nursery.cancel_scope.cancel()
    tcp = statistics.median(tcp_times)
    return {"bytes": size, "libp2p_s": p2p, "tcp_s": tcp, "libp2p_mb_s": size / p2p / 1e6,
            "tcp_mb_s": size / tcp / 1e6, "ratio": (size / p2p) / (size / tcp)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller instance and fewer repetitions")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    out: dict[str, Any] = {
        "quorum": [quorum_vs_ed25519(m, m // 2 + 1, 5 if args.quick else 30) for m in (3, 5, 7, 15)],
        "blob": [trio.run(_blob_fetch, size, 3 if args.quick else 10) for size in (64 << 10, 1 << 20, 4 << 20)],
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"{'m':>3} {'t':>3} {'BLS agg+verify ms':>18} {'m x Ed25519 ms':>15} {'ratio':>7}")
    for q in out["quorum"]:
        print(f"{q['m']:>3} {q['t']:>3} {q['bls_aggregate_verify_ms']:>18.3f} {q['ed25519_m_verifies_ms']:>15.3f} "
              f"{q['ratio']:>7.2f}")
    print(f"{'blob bytes':>10} {'libp2p MB/s':>12} {'TCP MB/s':>10} {'ratio':>7}")
    for b in out["blob"]:
        print(f"{b['bytes']:>10} {b['libp2p_mb_s']:>12.1f} {b['tcp_mb_s']:>10.1f} {b['ratio']:>7.3f}")


if __name__ == "__main__":
    main()
