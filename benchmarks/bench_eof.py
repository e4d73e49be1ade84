"""CPU a node spends reading a connection its peer closed (docs/adr/0201).

    python benchmarks/bench_eof.py [--closes N] [--json]

Opens ``N`` loopback TCP connections whose far end closes at once and reads a 2-byte frame length from each
through py-libp2p's TCP stream, as the noise layer does when a peer disconnects, with three readers:

- the library's ``read_exactly`` with its default of 100 retries;
- the same with 100 000 retries, the setting Bazaar used until ADR 0201 (a frame of over 101 pieces failed);
- :func:`bazaar.protocol.p2p_reads.read_until_eof`, which stops at the first empty read.

Prints CPU milliseconds per closed connection and each as a ratio to the first (measured in the same run);
``--json`` prints one object: ``closes``, ``library_ms``, ``library_100k_ms``, ``read_until_eof_ms`` and the
two ratios. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.io.exceptions import IncompleteReadError
from libp2p.io.trio import TrioTCPStream
from libp2p.io.utils import read_exactly

from bazaar.protocol.p2p_reads import read_until_eof

Reader = Callable[[TrioTCPStream, int], Awaitable[bytes]]


async def _cpu_per_close(read: Reader, closes: int) -> float:
    """CPU milliseconds ``read`` spends, per connection, noticing that the peer closed it."""
    async def close_at_once(stream: trio.SocketStream) -> None:
        await stream.aclose()

    spent = 0.0
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, close_at_once, 0)
        port = listeners[0].socket.getsockname()[1]
        for _ in range(closes):
            stream = TrioTCPStream(await trio.open_tcp_stream("127.0.0.1", port))
            t0 = time.process_time()
            with contextlib.suppress(IncompleteReadError):
                await read(stream, 2)
            spent += time.process_time() - t0
            await stream.close()
        nursery.cancel_scope.cancel()
    return 1000 * spent / closes


def measure(closes: int) -> dict[str, Any]:
    """The three readers' CPU per closed connection."""
    async def library_100k(stream: TrioTCPStream, n: int) -> bytes:
        return await read_exactly(stream, n, 100_000)

    base = trio.run(_cpu_per_close, read_exactly, closes)
    old = trio.run(_cpu_per_close, library_100k, max(1, closes // 10))
    ours = trio.run(_cpu_per_close, read_until_eof, closes)
    return {"closes": closes, "library_ms": round(base, 4), "library_100k_ms": round(old, 3),
            "read_until_eof_ms": round(ours, 4), "library_100k_ratio": round(old / base, 1) if base else None,
            "read_until_eof_ratio": round(ours / base, 2) if base else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--closes", type=int, default=50, help="closed connections read per reader")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.closes < 1:
        raise SystemExit("bench_eof: --closes must be at least 1")
    out = measure(args.closes)
    if args.json:
        print(json.dumps(out))
        return
    print(f"CPU per connection closed by the peer ({out['closes']} closes; 100 000 retries: "
          f"{max(1, out['closes'] // 10)})")
    print(f"  library read_exactly (100 retries)      {out['library_ms']:9.3f} ms   1.0x")
    print(f"  library read_exactly (100 000 retries)  {out['library_100k_ms']:9.3f} ms   "
          f"{out['library_100k_ratio']}x")
    print(f"  read_until_eof                          {out['read_until_eof_ms']:9.3f} ms   "
          f"{out['read_until_eof_ratio']}x")


if __name__ == "__main__":
    main()
