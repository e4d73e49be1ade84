"""Read-only chain explorer on the node's local HTTP endpoint.

``GET /blocks?limit=N`` (newest first), ``GET /block?height=H`` (with decoded transactions and the certificate's
signers), ``GET /account?key=HEX`` (balance, nonce, stake, escrows it pays or receives).
"""

from __future__ import annotations

from typing import Any

from bazaar.ledger.chain import Chain
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import ProtocolError

from .httpapi import HttpApi, HttpError

MAX_LIST = 200


def _int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise HttpError(400, f"{name} must be an integer") from err
    if not low <= value <= high:
        raise HttpError(400, f"{name} must lie in [{low}, {high}]")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {(k.hex() if isinstance(k, bytes) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def register(http: HttpApi, chain: Chain, network_id: str) -> None:
    """Add the explorer routes to ``http``."""

    async def blocks(request: dict[str, Any]) -> Any:
        limit = _int(request["query"], "limit", 20, 1, MAX_LIST)
        out = []
        for h in range(chain.height, max(0, chain.height - limit), -1):
            block = chain.block(h)
            if block is None:
                continue
            out.append({"height": h, "hash": block.hash.hex(), "proposer": block.header.proposer.hex(),
                        "txs": len(block.txs), "reward": block.header.reward, "final": h <= chain.finalized_height,
                        "timestamp_ms": block.header.timestamp_ms})
        return {"height": chain.height, "finalized": chain.finalized_height, "blocks": out}

    async def block(request: dict[str, Any]) -> Any:
        h = _int(request["query"], "height", chain.height, 1, max(chain.height, 1))
        found = chain.block(h)
        if found is None:
            raise HttpError(404, f"no block at height {h}")
        txs = []
        for raw in found.txs:
            try:
                env = decode_tx(raw, network_id)
            except ProtocolError as err:
                txs.append({"error": err.reason})
                continue
            txs.append({"id": env.digest.hex(), "type": env.type, "sender": env.sender.hex(), "market": env.market,
                        "round": env.round, "body": _plain(env.body)})
        cert = chain.certificate(h)
        return {"height": h, "hash": found.hash.hex(), "parent": found.header.parent.hex(),
                "proposer": found.header.proposer.hex(), "state_root": found.header.state_root.hex(),
                "consensus_rule": found.header.consensus.get("rule"), "txs": txs,
                "certificate": {"signers": [s.hex() for s in cert.signers]} if cert is not None else None}

    async def account(request: dict[str, Any]) -> Any:
        try:
            key = bytes.fromhex(request["query"].get("key", ""))
        except ValueError as err:
            raise HttpError(400, "key must be hex") from err
        if len(key) != 32:
            raise HttpError(400, "key must be a 32-byte account in hex")
        state = chain.state
        escrows = state.export().get("escrow", {})
        mine = {i: e for i, e in escrows.items() if key.hex() in (e.get("payer"), e.get("payee"))}
        return {"account": key.hex(), "balance": state.balance(key), "nonce": state.nonce(key),
                "stake": state.stake(key), "escrow": mine, "height": chain.height}

    http.route("GET", "/blocks", blocks)
    http.route("GET", "/block", block)
    http.route("GET", "/account", account)
