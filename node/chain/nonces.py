"""Nonces of our own transactions: above the state's and above every transaction of ours still in flight."""

from __future__ import annotations

from bazaar.ledger.chain import Chain

from ..logs import Events

STALE_BLOCKS = 3
"""An in-flight nonce that has not landed within this many blocks is given up (its transaction was lost)."""
_events = Events("chain")


class OwnNonces:
    """Hands out the next nonce of our account and forgets those that will never land."""

    def __init__(self, chain: Chain, account: bytes) -> None:
        self.chain = chain
        self.account = account
        self._inflight: dict[int, int] = {}

    def next(self) -> int:
        """Next transaction nonce for our own account: above the state's and above every transaction of ours
        still in flight. In-flight nonces that have not landed within ``STALE_BLOCKS`` blocks (the transaction
        was lost, e.g. its round never settled) are given up, so a lost transaction never blocks later ones."""
        base = self.chain.state.nonce(self.account)
        self._inflight = {n: h for n, h in self._inflight.items() if n > base}
        if self._inflight and self.chain.height - min(self._inflight.values()) > STALE_BLOCKS:
            _events.warning("tx.nonces_reset", lost=sorted(self._inflight))
            self._inflight.clear()
        nonce = max([base, *self._inflight]) + 1
        self._inflight[nonce] = self.chain.height
        return nonce

    @property
    def in_flight(self) -> dict[int, int]:
        """Our nonces handed out and not yet below the state's: nonce -> chain height when it was handed out."""
        return dict(self._inflight)

    def forget(self, nonce: int) -> None:
        """Our transaction with ``nonce`` will never be sent: reuse the nonce if nothing later was signed."""
        if self._inflight and nonce == max(self._inflight):
            del self._inflight[nonce]

