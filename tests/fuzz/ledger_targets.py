"""In-process fuzz targets without a network: the router's checks, ``decode_tx``, the ChainService submit path
(mempool admission), ``Block.decode`` and ``Chain.import_block`` over a small ``pos`` chain.

:class:`LedgerTargets` holds the chain and the keys; ``cases()`` is the hypothesis strategy of its inputs and
``feed(case, tally)`` pushes one input through every target that takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio
from hypothesis import strategies as st

from bazaar.ledger import bls
from bazaar.ledger.block import Block, Header, merkle_root, sign_header
from bazaar.ledger.chain import Chain
from bazaar.ledger.consensus import pos_consensus, pos_proposer
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.store import MemoryStore
from bazaar.ledger.txs import SCHEMAS, decode_tx, make_tx
from bazaar.node.chain.service import ChainService
from bazaar.node.router import Router
from bazaar.protocol import codec
from bazaar.protocol.envelope import now_ms, seal
from bazaar.protocol.keys import KeyPair
from bazaar.protocol.messages import REGISTRY, registered_types
from bazaar.protocol.transport import PeerUnavailable
from tests.ledger.helpers import NID, Net

from .oracle import Tally
from .strategies import Pool, bodies, msgpack_values, mutations

MAX_FUZZ_HEIGHT = 40
"""The chain is rebuilt from its first blocks when fuzzed-but-valid blocks have grown it this far."""


class _NoTransport:
    """What a ChainService needs of a transport: no peers; a sync request is answered with :attr:`answer`
    (a hostile peer's bytes) when one is set."""

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}
        self.answer: bytes | None = None

    def set_handler(self, protocol: str, handler: Any) -> None:
        """Nothing serves."""

    def peers(self) -> list[bytes]:
        """No peers."""
        return []

    async def request(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        """The hostile answer once, then nobody answers."""
        answer, self.answer = self.answer, None
        if answer is None:
            raise PeerUnavailable("no transport in the in-process fuzzer")
        return answer


async def _no_publish(mtype: str, body: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Case:
    """One fuzz input: ``kind`` says which targets take it; ``data`` is bytes (a mutation) or a recipe that
    :meth:`LedgerTargets.realise` turns into bytes against the chain as it is when the input runs (strategies
    must not depend on mutable state, so heights, nonces and parents are chosen as "modes", not values)."""

    kind: str  # "envelope" | "tx" | "block" | "sync"
    data: Any
    how: str


class LedgerTargets:
    """A small ``pos`` network, its chain, a ChainService over it, and the router of a bystander."""

    def __init__(self, *, seed_blocks: int = 3) -> None:
        self.net = Net("pos")
        self.users = [self.net.keys[u] for u in ("alice", "bob", "carol", "dave")]
        self.validators = list(self.net.validators)
        self.seed_blocks: list[Block] = []
        sample_txs: list[bytes] = []
        for i in range(seed_blocks):
            txs = [self.net.tx("alice", "transfer", to=self.net.acct("bob"), amount=10 + i),
                   self.net.tx("bob", "escrow_lock", id=bytes([i]) * 32, payee=self.net.acct("carol"), amount=5,
                               expires=100)]
            sample_txs += txs
            block, _ = self.net.commit(txs)
            self.seed_blocks.append(block)
        self.sample_txs = sample_txs
        self.pool = Pool(keys=[k.public for k in self.users + self.validators],
                         blobs=[*sample_txs[:4], self.seed_blocks[0].signed_header(), self.seed_blocks[-1].encode()])
        self.router = Router(NID, local_key=bytes(32))
        self._fresh = 1 << 40
        self._peer = 0
        self._reset_chain()
        self.wires = sample_txs + [self._message_wire(t) for t in ("chain/txs", "chain/attest")]
        self.wires.append(self.seed_blocks[-1].encode())

    def _reset_chain(self) -> None:
        self.chain = Chain(MemoryStore(), self.net.genesis)
        for block in self.seed_blocks:
            self.chain.import_block(block)
        secret = bls.bls_keygen(self.validators[0].seed)
        self.service = ChainService(self.chain, key=self.validators[0], bls_secret=secret,
                                    transport=_NoTransport(),  # type: ignore[arg-type]
                                    publish=_no_publish, network_id=NID)
        self._proof_cache: dict[tuple[int, bytes], dict[str, Any]] = {}

    def _message_wire(self, mtype: str) -> bytes:
        body = {"txs": self.sample_txs[:2]} if mtype == "chain/txs" else {
            "height": 1, "hash": self.seed_blocks[0].hash, "sig": b"\x01" * 96}
        return seal(self.users[0], NID, mtype, body, seq=now_ms()).wire

    # ------------------------------------------------------------------ strategies
    def cases(self) -> st.SearchStrategy[Case]:
        """Every input kind: structural envelopes of every registered type, structural transactions and blocks,
        and byte mutations of valid envelopes and blocks."""
        return st.one_of(
            self._envelopes(), self._envelopes(), self._txs(), self._txs(), self._blocks(),
            mutations(self.wires).map(lambda b: Case("envelope", b, "mutation")),
            mutations([b.encode() for b in self.seed_blocks]).map(lambda b: Case("block", b, "mutation")),
            self._sync_answers(),
        )

    def _sync_answers(self) -> st.SearchStrategy[Case]:
        """A peer's answers to our sync request: fuzzed blocks and certificates, lying heights, junk shapes."""
        @st.composite
        def build(draw: st.DrawFn) -> Case:
            shape = draw(st.sampled_from(["answer", "answer", "junk"]))
            if shape == "junk":
                return Case("sync", ("junk", draw(msgpack_values())), "structural")
            blocks = draw(st.lists(st.one_of(self._blocks().map(lambda c: ("recipe", c.data)),
                                             st.integers(0, len(self.seed_blocks) - 1).map(lambda i: ("seed", i)),
                                             st.binary(max_size=40).map(lambda b: ("raw", b))), max_size=3))
            certs = draw(st.lists(st.one_of(st.just(b""), st.binary(max_size=64), msgpack_values()), max_size=4))
            claim = draw(st.one_of(st.integers(0, 10), st.integers(0, 2**64 - 1), msgpack_values()))
            return Case("sync", ("answer", blocks, certs, claim), "structural")

        return build()

    def _envelopes(self) -> st.SearchStrategy[Case]:
        @st.composite
        def build(draw: st.DrawFn) -> Case:
            mtype = draw(st.sampled_from(registered_types()))
            body = draw(bodies(REGISTRY.schema(mtype), self.pool))
            return Case("envelope", (mtype, body, draw(st.integers(0, 7)), draw(_headers()), False), "structural")

        return build()

    def _txs(self) -> st.SearchStrategy[Case]:
        @st.composite
        def build(draw: st.DrawFn) -> Case:
            kind = draw(st.sampled_from(sorted(SCHEMAS)))
            body = draw(bodies(SCHEMAS[kind], self.pool))
            header = draw(_headers())
            if isinstance(body, dict) and isinstance(body.get("nonce"), int) and 0 <= body["nonce"] < 2**63:
                header["seq"] = body["nonce"]
            return Case("tx", ("tx/" + kind, body, draw(st.integers(0, 7)), header, draw(st.booleans())),
                        "structural")

        return build()

    def _blocks(self) -> st.SearchStrategy[Case]:
        @st.composite
        def build(draw: st.DrawFn) -> Case:
            recipe = {
                "height": draw(st.one_of(st.sampled_from(["next", "next", "head"]), st.integers(0, 2**63 - 1))),
                "key": draw(st.one_of(st.just("proposer"), st.integers(0, 7))),
                "txs": draw(st.lists(st.one_of(self._txs().map(lambda c: c.data), st.integers(0, 5),
                                               st.binary(max_size=40)), max_size=4)),
                "honest": draw(st.booleans()),
                "consensus": draw(st.one_of(st.just("valid"),
                                            st.dictionaries(st.text(max_size=8), msgpack_values(), max_size=3))),
                "parent": draw(st.one_of(st.just("head"), st.binary(min_size=32, max_size=32))),
                "ts": draw(st.one_of(st.just("next"), st.integers(0, 2**64 - 1))),
                "tx_root": draw(st.one_of(st.just("right"), st.binary(min_size=32, max_size=32))),
                "state_root": draw(st.binary(min_size=32, max_size=32)),
                "reward": draw(st.one_of(st.just("right"), st.integers(0, 2**64 - 1))),
                "sig": draw(st.one_of(st.just("right"), st.binary(min_size=64, max_size=64))),
            }
            return Case("block", recipe, "honest" if recipe["honest"] else "structural")

        return build()

    # ------------------------------------------------------------------ recipes -> bytes
    def _keys(self) -> list[KeyPair]:
        return self.users + self.validators

    def _seal(self, recipe: tuple[str, Any, int, dict[str, Any], bool]) -> bytes:
        mtype, body, key_index, header, next_nonce = recipe
        key = self._keys()[key_index % len(self._keys())]
        header = dict(header)
        if header["seq"] == "fresh":
            self._fresh += 1
            header["seq"] = self._fresh
        if header["ts"] == "now":
            header["ts"] = now_ms()
        if next_nonce and isinstance(body, dict):  # the right nonce: on to the stateful checks
            body = {**body, "nonce": self.chain.state.next_nonce(key.public)}
            header["seq"] = body["nonce"]
        return _seal_any(key, header.pop("network", NID), mtype, body, **header).wire

    def realise(self, case: Case) -> bytes:
        """The bytes of ``case`` against the chain as it is now."""
        if case.how == "mutation":
            return bytes(case.data)
        if case.kind in ("envelope", "tx"):
            return self._seal(case.data)
        if case.kind == "sync":
            if case.data[0] == "junk":
                return codec.encode(case.data[1])
            _, blocks, certs, claim = case.data
            raws = [self.realise(Case("block", b, "structural")) if tag == "recipe"
                    else self.seed_blocks[b].encode() if tag == "seed" else b for tag, b in blocks]
            return codec.encode({"blocks": raws, "certs": certs, "height": len(raws), "finalized": claim})
        r = case.data
        state = self.chain.state
        head = self.chain.head
        txs = [self._seal(t) if isinstance(t, tuple) else self.sample_txs[t] if isinstance(t, int) else t
               for t in r["txs"]]
        proposer = self.net.by_account[pos_proposer(state)]
        key = proposer if r["key"] == "proposer" else self._keys()[r["key"] % len(self._keys())]
        if r["honest"]:
            block = self._honest(txs, proposer)
            if block is not None:
                return block.encode()
        height = {"next": state.height + 1, "head": state.height}.get(str(r["height"]), r["height"])
        header = Header(
            height=height,
            parent=self.chain.head_hash if r["parent"] == "head" else r["parent"],
            timestamp_ms=(head.header.timestamp_ms if head else 1000) + 1000 if r["ts"] == "next" else r["ts"],
            proposer=key.public,
            tx_root=merkle_root(txs) if r["tx_root"] == "right" else r["tx_root"],
            state_root=r["state_root"],
            reward=self.net.genesis.block_reward if r["reward"] == "right" else r["reward"],
            consensus=self._proof(height, key) if r["consensus"] == "valid" else r["consensus"],
        )
        signature = sign_header(key, NID, header) if r["sig"] == "right" else r["sig"]
        return Block(header, tuple(txs), signature).encode()

    def _proof(self, height: int, key: KeyPair) -> dict[str, Any]:
        if not 0 < height < 2**62:
            return {"rule": "pos"}
        if len(self._proof_cache) > 256:
            self._proof_cache.clear()
        slot = (height, key.public)
        if slot not in self._proof_cache:
            self._proof_cache[slot] = pos_consensus(bls.bls_keygen(key.seed), NID, height)
        return self._proof_cache[slot]

    def _honest(self, txs: list[bytes], key: KeyPair) -> Block | None:
        from bazaar.ledger.apply import build_block

        state = self.chain.state
        ts = (self.chain.head.header.timestamp_ms if self.chain.head else 1000) + 1000
        try:
            block, _, _ = build_block(state, self.net.genesis, key, txs, timestamp_ms=ts,
                                      consensus=pos_consensus(bls.bls_keygen(key.seed), NID, state.height + 1))
        except InvalidBlock:
            return None
        return block

    # ------------------------------------------------------------------ targets
    def feed(self, case: Case, tally: Tally) -> None:
        """Push one input through every target that takes its kind."""
        try:
            data = self.realise(case)
        except (TypeError, ValueError, OverflowError):  # our own encoder cannot sign it: a peer cannot send it
            tally.skipped += 1
            return
        if case.kind == "sync":
            tally.run("chain.sync_from", self._sync_from, data)
            return
        if case.kind == "block":
            block = tally.run("ledger.block_decode", Block.decode, data, NID)
            if block is not None:
                tally.run("ledger.import_block", self.chain.import_block, block)
                if self.chain.height >= MAX_FUZZ_HEIGHT:
                    self._reset_chain()
            tally.run("router.verify", self.router.verify, data)
            return
        if case.kind == "envelope" and case.how == "structural":
            tally.run("chain.gossip", self._gossip, data)  # the router's checks first, then the handler
            return
        tally.run("router.verify", self.router.verify, data)
        if case.kind == "tx" or case.how == "mutation":
            tally.run("ledger.decode_tx", decode_tx, data, NID)
            tally.run("chain.submit", self._submit, data)

    def _submit(self, raw: bytes) -> None:
        """The ChainService submit path; a refusal is raised with the reason the service logged."""
        decode_tx(raw, NID)  # the service's first step, for the refusal's reason
        if self.service.add_tx(raw) is None:
            from bazaar.protocol.errors import ProtocolError

            raise ProtocolError("not admitted", reason=self.service.mempool.last_refusal or "admission")
        if len(self.service.mempool) > 500:
            self.service.mempool.prune(self.chain.state)

    def _sync_from(self, answer: bytes) -> None:
        """Our chain sync reading a hostile peer's answer (then its import of what decodes)."""
        self._peer += 1
        self.service.transport.answer = answer  # type: ignore[attr-defined]
        trio.run(self.service.sync.sync_from, self._peer.to_bytes(32, "big"))
        if self.chain.height >= MAX_FUZZ_HEIGHT:
            self._reset_chain()

    def _gossip(self, raw: bytes) -> None:
        """The router's checks, then the chain service's gossip handler for the type (txs, block, attestation,
        certificate), as the node runs them."""
        env = self.router.verify(raw)
        handler = {"chain/txs": self.service.on_txs, "chain/block": self.service.on_block,
                   "chain/attest": self.service.on_attestation, "chain/cert": self.service.on_certificate}.get(env.type)
        if handler is not None:
            trio.run(handler, env)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, Any]:
    """Envelope header fields: mostly right, sometimes another network, market, round or a stale clock."""
    out: dict[str, Any] = {"seq": draw(st.one_of(st.just("fresh"), st.just("fresh"), st.integers(0, 2**63 - 1))),
                           "market": "", "round": 0, "ts": "now"}
    if draw(st.integers(0, 9)) == 0:
        out["network"] = draw(st.sampled_from(["other-net", "x"]))
    if draw(st.booleans()):
        out["market"] = draw(st.sampled_from(["ai-bazaar", "tbcim", "hierarchical", "collab", "cloudchain", "zz"]))
        out["round"] = draw(st.integers(0, 2**63 - 1))
    if draw(st.integers(0, 9)) == 0:
        out["ts"] = draw(st.integers(0, 2**63 - 1))
    return out


def _seal_any(key: KeyPair, network: str, mtype: str, body: Any, *, seq: int, market: str, round: int,
              ts: int) -> Any:
    """``seal`` for any body, the non-map ones included (a peer can sign whatever it likes)."""
    return seal(key, network, mtype, body, seq=seq, market=market, round=round, ts=ts)


def tx_wire(key: KeyPair, kind: str, body: dict[str, Any]) -> bytes:
    """A valid signed transaction (for tests that need one)."""
    return make_tx(key, NID, kind, body).wire


__all__ = ["Case", "LedgerTargets", "codec"]
