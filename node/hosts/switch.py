"""A user-space Ethernet switch with per-link delay, jitter and loss, for kernels without ``sch_netem``.

``python -m bazaar.node.hosts.switch DIR`` (started and stopped by ``net up/down --hosts netns`` when links are
shaped and ``tc netem`` is missing). For every node of ``DIR/hosts.json`` it creates a TAP interface ``eth0``
inside the node's namespace (the node's kernel TCP/IP stack runs over it as over any NIC) and switches the
frames between them: learning source MACs, flooding broadcast and unknown destinations, and holding each frame
for ``delay ± jitter`` (uniform) before delivery, dropping it with probability ``loss`` — once per one-way hop,
as ``tc netem`` on every node's egress would (docs/adr/0112-link-emulation.md). Frames between one pair of
nodes keep their order (a jittered frame never overtakes an earlier one), unlike netem's default.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import itertools
import json
import os
import random
import struct
import sys
from pathlib import Path
from typing import Any

import trio

from .relay import _setns

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
READY = "switch.ready"


def seconds(value: str) -> float:
    """tc's time syntax (``20ms``, ``500us``, ``1s``; empty = 0) in seconds."""
    if not value:
        return 0.0
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    raise ValueError(f"{value!r}: expected e.g. 20ms")


def open_tap(netns: str, name: str = "eth0") -> int:
    """Create TAP interface ``name`` inside the named namespace; returns its (non-blocking) file descriptor."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
            return fd
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


class Switch:
    """Frames in from every port, out after the link's delay (see the module docstring)."""

    def __init__(self, ports: list[int], delay: float, jitter: float, loss: float, seed: int | None = None) -> None:
        self.ports, self.delay, self.jitter, self.loss = ports, delay, jitter, loss
        self.macs: dict[bytes, int] = {}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self.last: dict[tuple[int, int], float] = {}
        self.seq = itertools.count()
        self.rng = random.Random(seed)
        self.wake = trio.Event()

    def _schedule(self, src: int, dst: int, frame: bytes, now: float) -> None:
        if self.loss and self.rng.random() < self.loss:
            return
        at = now + max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
        at = max(at, self.last.get((src, dst), 0.0))  # no overtaking between one pair
        self.last[(src, dst)] = at
        heapq.heappush(self.queue, (at, next(self.seq), dst, frame))

    def receive(self, src: int, frame: bytes) -> None:
        """One frame read from port ``src``."""
        if len(frame) < 14:
            return
        now = trio.current_time()
        self.macs[frame[6:12]] = src
        dst = self.macs.get(frame[0:6]) if not frame[0] & 1 else None  # group bit: broadcast / multicast
        targets = [dst] if dst is not None else [p for p in self.ports if p != src]
        for port in targets:
            if port != src:
                self._schedule(src, port, frame, now)
        self.wake.set()

    async def deliver(self) -> None:
        """Write each frame to its port when its time comes (runs until cancelled)."""
        while True:
            if not self.queue:
                await self.wake.wait()
                self.wake = trio.Event()
                continue
            at = self.queue[0][0]
            with trio.move_on_at(at):
                await self.wake.wait()
            self.wake = trio.Event()
            now = trio.current_time()
            while self.queue and self.queue[0][0] <= now:
                _, _, port, frame = heapq.heappop(self.queue)
                try:
                    os.write(port, frame)
                except OSError as err:  # a full or downed interface drops the frame, as a NIC would
                    if err.errno not in (errno.EAGAIN, errno.EIO, errno.ENETDOWN, errno.EINVAL):
                        raise

    async def read_port(self, fd: int) -> None:
        """Read frames from one port (runs until cancelled)."""
        while True:
            await trio.lowlevel.wait_readable(fd)
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError as err:
                    if err.errno in (errno.EIO, errno.ENETDOWN):  # interface not up yet
                        await trio.sleep(0.05)
                        break
                    raise
                self.receive(fd, frame)


async def run(root: Path) -> None:
    """Create the TAP ports of ``root/hosts.json`` and switch frames until cancelled."""
    record: dict[str, Any] = json.loads((root / "hosts.json").read_text())
    link = record["link"]
    ports = [open_tap(node["netns"]) for node in record["nodes"].values()]
    loss = float(link["loss"].rstrip("%")) / 100 if link.get("loss") else 0.0
    switch = Switch(ports, seconds(link.get("delay", "")), seconds(link.get("jitter", "")), loss)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(switch.deliver)
        for fd in ports:
            nursery.start_soon(switch.read_port, fd)
        (root / READY).write_text(str(os.getpid()))


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m bazaar.node.hosts.switch DIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bazaar.node.hosts.switch NET_DIR", file=sys.stderr)
        return 2
    try:
        trio.run(run, Path(args[0]))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
