"""Read-only chain explorer on the node's local HTTP endpoint (docs/explorer.md).

JSON routes: ``GET /blocks?limit=N`` (newest first, proposer and certificate signers by name), ``GET
/block?height=H`` (with decoded transactions and the certificate's signers), ``GET /account?key=HEX`` (balance,
nonce, stake, escrows it pays or receives), ``GET /accounts`` (every account by name, amounts in tokens, open
escrows, supply), ``GET /rounds`` (the market's rounds with its report columns), ``GET /events`` (server-sent
``head`` events as blocks land and become final). ``GET /`` serves the page (``node/web/``) that shows them all
and follows ``/events``. Amounts keep their micro-token integers under their old names; ``*_tokens`` fields
carry tokens. Nothing here writes.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import trio

from bazaar.ledger.amounts import UNIT
from bazaar.ledger.chain import Chain
from bazaar.ledger.txs import decode_tx
from bazaar.protocol import ProtocolError

from .httpapi import HttpApi, HttpError, Reply, Stream

if TYPE_CHECKING:
    from .runtime import Node

MAX_LIST = 200
ROUND_SCAN = 500
"""Blocks (newest first) scanned for the rounds of the market seen on chain."""
MAX_ROUNDS = 500
"""Round summaries a leader keeps for the page (newest)."""
STREAM_LIFETIME = 300.0
"""Seconds one ``/events`` stream lasts; the browser's EventSource reconnects (``retry``)."""
KEEPALIVE = 15.0
"""Seconds between comment lines on an idle ``/events`` stream (a closed page is noticed then)."""
STATIC = {"/": ("explorer.html", "text/html; charset=utf-8"),
          "/web/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
          "/web/explorer.css": ("explorer.css", "text/css; charset=utf-8")}


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


def tokens(units: int) -> float:
    """Micro-tokens as tokens (for display)."""
    return units / UNIT


def static_file(name: str) -> bytes:
    """A file of the page (``node/web/NAME``, shipped as package data)."""
    return resources.files("bazaar.node").joinpath("web", name).read_bytes()


class Explorer:
    """The explorer's views of one node's chain, with names from the node's address book."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.summaries: deque[dict[str, Any]] = deque(maxlen=MAX_ROUNDS)
        """Round summaries this node led (its round engine's observer fills it)."""
        self.reported = 0
        self._block_rounds: dict[int, tuple[bytes, dict[int, int]]] = {}
        """height -> (block hash, transactions per round of our market) for :meth:`chain_rounds`."""
        """Round summaries received so far (a change the page follows like a new block)."""

    @property
    def chain(self) -> Chain:
        """The node's chain."""
        return self.node.chain.chain

    def name(self, key: bytes) -> str | None:
        """The scenario name of an account, or None when it is no node of the address book."""
        name = self.node.name_of(key)
        return None if name == key.hex()[:12] else name

    def observe_round(self, summary: Mapping[str, Any]) -> None:
        """Round engine observer: keep the summary for ``/rounds`` and wake the ``/events`` streams."""
        self.summaries.append(dict(summary))
        self.reported += 1
        self.node.chain.changes.notify()

    # ------------------------------------------------------------------ views
    def head(self) -> dict[str, Any]:
        """Height, finalized height, head hash and round reports so far (one ``/events`` event)."""
        chain = self.chain
        head = chain.head
        return {"height": chain.height, "finalized": chain.finalized_height,
                "head": head.hash.hex() if head is not None else None, "reported": self.reported}

    def blocks(self, limit: int) -> dict[str, Any]:
        """The newest ``limit`` blocks."""
        chain, out = self.chain, []
        for h in range(chain.height, max(0, chain.height - limit), -1):
            block = chain.block(h)
            if block is None:
                continue
            cert = chain.certificate(h)
            out.append({"height": h, "hash": block.hash.hex(), "proposer": block.header.proposer.hex(),
                        "proposer_name": self.name(block.header.proposer),
                        "txs": len(block.txs), "reward": block.header.reward, "final": h <= chain.finalized_height,
                        "timestamp_ms": block.header.timestamp_ms,
                        "signers": None if cert is None else [self.name(s) or s.hex()[:12] for s in cert.signers]})
        return {"height": chain.height, "finalized": chain.finalized_height, "blocks": out}

    def block(self, h: int) -> dict[str, Any]:
        """One block with its decoded transactions and certificate."""
        chain = self.chain
        found = chain.block(h)
        if found is None:
            raise HttpError(404, f"no block at height {h}")
        txs = []
        for raw in found.txs:
            try:
                env = decode_tx(raw, self.node.network_id)
            except ProtocolError as err:
                txs.append({"error": err.reason})
                continue
            txs.append({"id": env.digest.hex(), "type": env.type, "sender": env.sender.hex(),
                        "sender_name": self.name(env.sender), "market": env.market, "round": env.round,
                        "body": _plain(env.body)})
        cert = chain.certificate(h)
        return {"height": h, "hash": found.hash.hex(), "parent": found.header.parent.hex(),
                "proposer": found.header.proposer.hex(), "proposer_name": self.name(found.header.proposer),
                "state_root": found.header.state_root.hex(), "timestamp_ms": found.header.timestamp_ms,
                "final": h <= chain.finalized_height, "consensus_rule": found.header.consensus.get("rule"), "txs": txs,
                "certificate": None if cert is None else {
                    "signers": [s.hex() for s in cert.signers],
                    "signer_names": [self.name(s) or s.hex()[:12] for s in cert.signers]}}

    def accounts(self) -> dict[str, Any]:
        """Every account with a balance, stake or address-book entry, by name, amounts in tokens; open escrows."""
        state = self.chain.state
        book = {p.key: p for p in self.node.peers()}
        keys = sorted(set(state.balances) | set(state.stakes) | set(book),
                      key=lambda k: (k not in book, self.name(k) or "", k))
        accounts = [{"key": k.hex(), "name": self.name(k), "role": book[k].role if k in book else None,
                     "balance_tokens": tokens(state.balance(k)), "stake_tokens": tokens(state.stake(k)),
                     "unbonding_tokens": tokens(state.unbonding_of(k)), "nonce": state.nonce(k),
                     "slashed": state.is_slashed(k)} for k in keys]
        escrows = [{"id": i.hex(), "payer": e.payer.hex(), "payer_name": self.name(e.payer), "payee": e.payee.hex(),
                    "payee_name": self.name(e.payee), "amount_tokens": tokens(e.amount), "expires": e.expires,
                    "market": e.market, "ref": e.ref.hex()} for i, e in sorted(state.escrows.items())]
        supply = state.supply
        return {"height": state.height, "accounts": accounts, "escrows": escrows,
                "supply_tokens": {"genesis": tokens(supply.genesis), "minted": tokens(supply.minted),
                                  "burned": tokens(supply.burned), "total": tokens(supply.total)}}

    def _rounds_in(self, h: int) -> dict[int, int] | None:
        """Transactions per round of our market in block ``h`` (cached: a final block never changes, another is
        re-read only when its hash changed), or None when we hold no block there."""
        cached = self._block_rounds.get(h)
        if cached is not None and h <= self.chain.finalized_height:
            return cached[1]
        block = self.chain.block(h)
        if block is None:
            return None
        if cached is not None and cached[0] == block.hash:
            return cached[1]
        counts: dict[int, int] = {}
        for raw in block.txs:
            try:
                env = decode_tx(raw, self.node.network_id)
            except ProtocolError:
                continue
            if env.market == self.node.market and env.round > 0:
                counts[env.round] = counts.get(env.round, 0) + 1
        self._block_rounds[h] = (block.hash, counts)
        return counts

    def chain_rounds(self) -> dict[int, dict[str, Any]]:
        """The market's rounds seen in the newest ``ROUND_SCAN`` blocks: heights and transaction counts."""
        low = max(1, self.chain.height - ROUND_SCAN + 1)
        for h in [h for h in self._block_rounds if h < low or h > self.chain.height]:
            del self._block_rounds[h]
        rounds: dict[int, dict[str, Any]] = {}
        for h in range(low, self.chain.height + 1):
            for number, count in (self._rounds_in(h) or {}).items():
                row = rounds.setdefault(number, {"round": number, "heights": [], "txs": 0})
                row["txs"] += count
                row["heights"].append(h)
        return rounds

    def rounds(self) -> dict[str, Any]:
        """The market's rounds, newest first, each with the report's cells (``bazaar round``'s columns)."""
        report = self.node.spec.report
        seen = self.chain_rounds()
        summaries = {int(s["round"]): s for s in self.summaries if isinstance(s.get("round"), int)}
        out = []
        for number in sorted(set(seen) | set(summaries), reverse=True):
            summary = summaries.get(number)
            row = seen.get(number, {"round": number, "heights": [], "txs": 0})
            height = summary.get("height") if summary else (max(row["heights"]) if row["heights"] else None)
            phase = self.node.scenario.phase_of(number)
            out.append({
                "round": number, "phase": summary.get("phase") if summary else phase.name,
                "height": height,
                "final": bool(summary.get("final")) if summary else (
                    height is not None and height <= self.chain.finalized_height),
                "latency_ms": summary.get("latency_ms") if summary else None,
                "heights": row["heights"], "txs": row["txs"], "reported": summary is not None,
                "cells": [c.render(summary).strip() if summary else "-" for c in report.columns],
                "left_out": summary.get("left_out") if summary else None,
            })
        leaders = [self.node.scenario.names(r)[0] for r in self.node.spec.leader_roles if self.node.scenario.names(r)]
        return {"market": self.node.market, "title": report.title, "leader": leaders[0] if leaders else None,
                "leads": self.node.engine is not None,
                "columns": [{"header": c.header, "path": c.path} for c in report.columns], "rounds": out}

    def overview(self) -> dict[str, Any]:
        """Who this node is and where its chain stands."""
        node = self.node
        return {"name": node.name, "role": node.role, "market": node.market, "network": node.network_id,
                "consensus": node.genesis.consensus, "peers": len(node.transport.peers()),
                "synced": node.chain.synced, "mempool": len(node.chain.mempool), **self.head()}

    def _moved(self, last: dict[str, Any]) -> bool:
        return self.head() != last

    async def events(self) -> AsyncIterator[bytes]:
        """Server-sent events: ``head`` at once and on every change of height, finality or head, for
        ``STREAM_LIFETIME`` seconds; a comment line every ``KEEPALIVE`` idle seconds."""
        deadline = trio.current_time() + STREAM_LIFETIME
        last = self.head()
        yield f"retry: 1000\nevent: head\ndata: {json.dumps(last)}\n\n".encode()
        while (left := deadline - trio.current_time()) > 0:
            try:
                await self.node.chain.wait_for(functools.partial(self._moved, last), timeout=min(KEEPALIVE, left))
            except trio.TooSlowError:
                yield b": keep-alive\n\n"
                continue
            last = self.head()
            yield f"event: head\ndata: {json.dumps(last)}\n\n".encode()


def register(http: HttpApi, node: Node) -> Explorer:
    """Add the explorer's routes and page to ``http``; returns the explorer (its round observer to attach)."""
    ex = Explorer(node)

    async def blocks(request: dict[str, Any]) -> Any:
        return ex.blocks(_int(request["query"], "limit", 20, 1, MAX_LIST))

    async def block(request: dict[str, Any]) -> Any:
        return ex.block(_int(request["query"], "height", ex.chain.height, 1, max(ex.chain.height, 1)))

    async def account(request: dict[str, Any]) -> Any:
        try:
            key = bytes.fromhex(request["query"].get("key", ""))
        except ValueError as err:
            raise HttpError(400, "key must be hex") from err
        if len(key) != 32:
            raise HttpError(400, "key must be a 32-byte account in hex")
        state = ex.chain.state
        escrows = state.export().get("escrow", {})
        mine = {i: e for i, e in escrows.items() if key.hex() in (e.get("payer"), e.get("payee"))}
        return {"account": key.hex(), "name": ex.name(key), "balance": state.balance(key), "nonce": state.nonce(key),
                "stake": state.stake(key), "balance_tokens": tokens(state.balance(key)),
                "stake_tokens": tokens(state.stake(key)), "escrow": mine, "height": ex.chain.height}

    async def accounts(_: dict[str, Any]) -> Any:
        return ex.accounts()

    async def rounds(_: dict[str, Any]) -> Any:
        return ex.rounds()

    async def overview(_: dict[str, Any]) -> Any:
        return ex.overview()

    async def events(_: dict[str, Any]) -> Stream:
        return Stream(ex.events)

    def page(name: str, ctype: str) -> Any:
        async def serve(_: dict[str, Any]) -> Reply:
            return Reply(static_file(name), ctype)
        return serve

    http.route("GET", "/blocks", blocks)
    http.route("GET", "/block", block)
    http.route("GET", "/account", account)
    http.route("GET", "/accounts", accounts)
    http.route("GET", "/rounds", rounds)
    http.route("GET", "/overview", overview)
    http.route("GET", "/events", events)
    for path, (name, ctype) in STATIC.items():
        http.route("GET", path, page(name, ctype))
    return ex
