"""What only the in-memory transport offers: partitions, seeded loss, virtual-time latency, overflow."""

from __future__ import annotations

import pytest
import trio

from bazaar.protocol.keys import KeyPair
from bazaar.protocol.memory import MemoryNetwork
from bazaar.protocol.transport import PeerUnavailable

KEYS = [KeyPair.from_label(f"mem-{i}") for i in range(4)]


async def echo(peer: bytes, request: bytes) -> bytes:
    return request


def drain(channel: trio.MemoryReceiveChannel) -> list[bytes]:  # type: ignore[type-arg]
    out = []
    while True:
        try:
            out.append(channel.receive_nowait().data)
        except trio.WouldBlock:
            return out


async def test_partition_and_heal() -> None:
    net = MemoryNetwork()
    async with net.join(KEYS[0]) as a, net.join(KEYS[1]) as b, net.join(KEYS[2]) as c:
        inbox_b, inbox_c = b.subscribe("t"), c.subscribe("t")
        b.set_handler("/p", echo)
        net.partition([a.local_key], [b.local_key, c.local_key])
        assert a.peers() == [] and set(b.peers()) == {c.local_key}
        await a.publish("t", b"1")
        assert drain(inbox_b) == [] and drain(inbox_c) == []
        with pytest.raises(PeerUnavailable):
            await a.request(b.local_key, "/p", b"x", timeout=1)
        net.heal()
        await a.publish("t", b"2")
        assert drain(inbox_b) == [b"2"] and drain(inbox_c) == [b"2"]
        assert await a.request(b.local_key, "/p", b"x", timeout=1) == b"x"
        net.disconnect(a.local_key, c.local_key)
        await a.publish("t", b"3")
        assert drain(inbox_b) == [b"3"] and drain(inbox_c) == []
        net.reconnect(a.local_key, c.local_key)
        assert net.connected(a.local_key, c.local_key)


async def lossy_run(seed: int) -> tuple[int, list[bytes], list[bytes]]:
    net = MemoryNetwork(seed=seed, drop_rate=0.3)
    async with net.join(KEYS[0]) as a, net.join(KEYS[1]) as b, net.join(KEYS[2]) as c:
        inbox_b, inbox_c = b.subscribe("t"), c.subscribe("t")
        for i in range(200):
            await a.publish("t", str(i).encode())
        return net.lost, drain(inbox_b), drain(inbox_c)


async def test_seeded_loss_is_reproducible() -> None:
    first, again, other = await lossy_run(1), await lossy_run(1), await lossy_run(2)
    assert first == again
    assert first != other
    lost, got_b, got_c = first
    assert lost + len(got_b) + len(got_c) == 400
    assert 60 < lost < 180  # 30 % of 400 = 120; a binomial tail this far out is < 1e-9


async def test_latency_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork(latency=0.25)
    async with net.join(KEYS[0]) as a, net.join(KEYS[1]) as b:
        inbox = b.subscribe("t")
        b.set_handler("/p", echo)
        start = trio.current_time()
        await a.publish("t", b"x")
        with trio.fail_after(5):
            await inbox.receive()
        assert trio.current_time() - start == pytest.approx(0.25)
        start = trio.current_time()
        assert await a.request(b.local_key, "/p", b"y", timeout=5) == b"y"
        assert trio.current_time() - start == pytest.approx(0.5)


async def test_slow_consumer_drops_and_counts() -> None:
    net = MemoryNetwork(queue_size=5)
    async with net.join(KEYS[0]) as a, net.join(KEYS[1]) as b:
        inbox = b.subscribe("t")
        for i in range(8):
            await a.publish("t", bytes([i]))
        assert drain(inbox) == [bytes([i]) for i in range(5)]
        assert b.stats["gossip_dropped"] == 3 and b.stats["gossip_in"] == 5


async def test_join_twice_and_parameters() -> None:
    net = MemoryNetwork()
    async with net.join(KEYS[0]):
        with pytest.raises(ValueError):
            async with net.join(KEYS[0]):
                pass
        assert net.members() == [KEYS[0].public]
    assert net.members() == []
    with pytest.raises(ValueError):
        MemoryNetwork(drop_rate=1.5)


async def test_leaving_closes_subscriptions() -> None:
    net = MemoryNetwork()
    async with net.join(KEYS[0]) as a:
        inbox = a.subscribe("t")
    with pytest.raises(trio.EndOfChannel):
        await inbox.receive()
    with pytest.raises(trio.ClosedResourceError):
        a.subscribe("u")
