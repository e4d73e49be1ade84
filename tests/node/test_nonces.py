"""Our own transaction nonces: never reused while in flight, never blocked by a transaction that was lost."""

from __future__ import annotations

from pathlib import Path

import trio

from bazaar.node.chain.nonces import STALE_BLOCKS

from .harness import memory_net, small_scenario


async def test_in_flight_nonces_survive_imports_and_lost_ones_are_given_up(tmp_path: Path) -> None:
    async with memory_net(small_scenario(tmp_path), tmp_path / "net") as nodes:
        consumer = nodes["consumer-0"].chain
        a = consumer.next_nonce()
        b = consumer.next_nonce()
        assert (a, b) == (1, 2)
        consumer.forget_nonce(a)  # not the latest: b is still in flight, a stays taken
        assert consumer.next_nonce() == 3
        consumer.forget_nonce(3)  # the latest: reusable
        assert consumer.next_nonce() == 3
        for _ in range(16):  # blocks land without any of those transactions (a round under load may bring none)
            with trio.fail_after(30):
                await nodes["cpp"].engine.play()
            # past STALE_BLOCKS the lost nonces are given up, and the consumer's own round transactions take
            # them again (how many rounds that takes depends on which of its transactions a loaded round carries)
            if consumer.chain.height > STALE_BLOCKS + 1 and consumer.chain.state.nonce(consumer.key.public) >= 3:
                break
        assert consumer.chain.height > STALE_BLOCKS + 1, "too few blocks reached the consumer in 16 rounds"
        base = consumer.chain.state.nonce(consumer.key.public)
        assert base >= 3  # nonces 1-3 were given up and taken again by the consumer's own round transactions
        # what is still in flight beside the nonce just taken is recent: the consumer's last round may have a
        # transaction not in a block yet (a lost one is given up after STALE_BLOCKS blocks)
        nonce, height = consumer.next_nonce(), consumer.chain.height
        others = {n: h for n, h in consumer.nonces.in_flight.items() if n != nonce}
        assert all(height - h <= STALE_BLOCKS for h in others.values()), others
        assert nonce == max([base, *others]) + 1
