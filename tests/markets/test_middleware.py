"""The runtime's middleware, run once for every market: a direct request is refused with a coded reason when
it is signed by another key than the stream's peer, of a type the role does not serve, from a role that may
not send it, or of another market; each refusal is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bazaar.node.memnet import open_memory_network
from bazaar.protocol import seal
from bazaar.protocol.chainmsg import market_protocol
from bazaar.protocol.markets import hierarchical as msg
from bazaar.protocol.transport import RemoteRejected

BID = {"demand": 1.0, "bid": 1.0, "block_size": 1.0, "reach": [0], "escrow": b"x"}


async def test_requests_are_refused_by_the_middleware_with_reasons(tmp_path: Path) -> None:
    async with open_memory_network("hierarchical-small", tmp_path / "net") as nodes:
        mesp, miner, other_miner, other_mesp = nodes["mesp-0"], nodes["miner-0"], nodes["miner-1"], nodes["mesp-1"]
        proto = market_protocol("hierarchical")

        async def refused(sender_node, env) -> str:  # type: ignore[no-untyped-def]
            with pytest.raises(RemoteRejected) as err:
                await sender_node.transport.request(mesp.key.public, proto, env.wire, timeout=5)
            return err.value.reason

        cases = [
            (miner, seal(other_miner.key, miner.network_id, msg.MSG_BID, BID, seq=1, market="hierarchical",
                         round=1), "wrong-sender"),
            (miner, seal(miner.key, miner.network_id, msg.MSG_LOWER, {"served": {}, "surplus": 0.0}, seq=2,
                         market="hierarchical", round=1), "unexpected-type"),
            (other_mesp, seal(other_mesp.key, miner.network_id, msg.MSG_BID, BID, seq=3, market="hierarchical",
                              round=1), "not-authorised"),
            (miner, seal(miner.key, miner.network_id, msg.MSG_BID, BID, seq=4, market="ai-bazaar", round=1),
             "wrong-market"),
            (miner, seal(miner.key, miner.network_id, msg.MSG_BID, BID, seq=5, market="hierarchical", round=1),
             "wrong-round"),
        ]
        for sender, env, reason in cases:
            assert await refused(sender, env) == reason
            assert mesp.router.rejected[reason] >= 1, reason
