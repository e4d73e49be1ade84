"""The transports' peer filter (``set_blocked``), which a testnet's ``disconnect``/``heal`` drives (docs/testnets.md):
run against both implementations. Blocked peers lose their connection and every request between them fails with
``PeerUnavailable``, both ways, while the rest of the mesh is untouched; an empty set heals."""

from __future__ import annotations

import pytest
import trio

from bazaar.protocol.transport import PeerUnavailable

from .conftest import Cluster, _wait_until

PROTO = "/test/filter/1"


async def _echo(peer: bytes, data: bytes) -> bytes:
    return data


async def test_blocked_peers_exchange_nothing_until_healed(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    ka, kb, kc = (k.public for k in cluster.keys)
    for node in cluster.nodes:
        node.set_handler(PROTO, _echo)
    a.set_blocked([kb])
    b.set_blocked([ka])
    await _wait_until(lambda: kb not in a.peers() and ka not in b.peers())
    for src, dst in ((a, kb), (b, ka)):
        with pytest.raises(PeerUnavailable):
            await src.request(dst, PROTO, b"x", timeout=5)
    assert sorted(a.blocked) == [kb] and sorted(b.blocked) == [ka]
    with trio.fail_after(10):  # the rest of the mesh still talks
        assert await a.request(kc, PROTO, b"a-c", timeout=5) == b"a-c"
        assert await b.request(kc, PROTO, b"b-c", timeout=5) == b"b-c"
    a.set_blocked([])
    b.set_blocked([])
    await _wait_until(lambda: kb in a.peers() and ka in b.peers())
    with trio.fail_after(10):
        assert await a.request(kb, PROTO, b"healed", timeout=5) == b"healed"
    assert a.blocked == [] and b.blocked == []
