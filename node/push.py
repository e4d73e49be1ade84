"""One message sent straight to every peer (a certificate, a new block, a market message): one copy each and none
relayed, where gossip costs every node a receive per mesh peer and a relay (docs/adr/0181, 0192, 0194). The caller
gossips the message as well when :meth:`Pushed.short` says some node of the network may lack it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import trio

from bazaar.protocol.transport import PeerUnavailable, RemoteRejected, Transport


@dataclass(frozen=True)
class Pushed:
    """How one push to every peer went."""

    landed: int
    failed: int

    def short(self, network_size: int) -> bool:
        """Whether a node may lack the message: a push failed, or fewer peers were connected than the network
        has other nodes (``network_size`` 0: unknown, only failures count)."""
        return self.failed > 0 or self.landed + self.failed < network_size - 1


async def push_each(peers: Sequence[bytes], send: Callable[[bytes], Awaitable[object]], *,
                    first: Collection[bytes] = ()) -> Pushed:
    """Run ``send(peer)`` for every peer at once (those in ``first`` started before the others; e.g. the
    validators, whose votes finalize a block); a peer whose send fails (unavailable, refused, too slow) counts as
    failed."""
    chosen = sorted(peers, key=lambda k: k not in first)
    failed = 0

    async def one(peer: bytes) -> None:
        nonlocal failed
        try:
            await send(peer)
        except (PeerUnavailable, RemoteRejected, trio.TooSlowError):
            failed += 1

    async with trio.open_nursery() as nursery:
        for peer in chosen:
            nursery.start_soon(one, peer)
    return Pushed(len(chosen) - failed, failed)


async def push_to_peers(transport: Transport, own: bytes, protocol: str, raw: bytes, *, timeout: float,
                        peers: Sequence[bytes] | None = None, first: Collection[bytes] = (),
                        special: Mapping[bytes, bytes] | None = None) -> Pushed:
    """Send ``raw`` over ``protocol`` to ``peers`` (default: every connected peer), each request bounded by
    ``timeout``; a peer in ``special`` gets its own body instead (:func:`push_each`)."""
    chosen = [k for k in (transport.peers() if peers is None else peers) if k != own]

    async def send(peer: bytes) -> bytes:
        body = raw if special is None else special.get(peer, raw)
        return await transport.request(peer, protocol, body, timeout=timeout)

    return await push_each(chosen, send, first=first)
