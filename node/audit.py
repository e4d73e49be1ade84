"""``bazaar chain audit``: every settled trade re-verified from a node's stored chain alone (docs/testnets.md).

Two checks, offline, on a node's data directory:

* **conservation at every block** — each stored block is re-applied from genesis and the token books are checked
  after every block (Σ balances + Σ escrow + Σ stake = genesis + minted − burned, nothing negative), not only at
  the head as ``bazaar chain verify`` does;
* **the market's contract** — the node's role app is built on a read-only context over the stored chain and its
  ``@block_check`` contracts (the settlement contracts every validator re-executes: the markets re-derive each
  settlement from the signed bids and results recorded in the block, with their own solvers) are re-run on every
  stored block, with the ``@on_block`` observers fed in order so a contract sees the history it saw live. A
  contract that refuses a stored block is a trade that does not re-verify.

A market without contracts may give its spec an ``audit`` function, run on every block for every role (ai-bazaar
re-solves its equilibrium-mode leases). A role without either is reported as ``covered: false``: nothing in its
chain is a trade the chain alone can re-derive from its role's view.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bazaar.ledger.apply import apply
from bazaar.ledger.block import Block
from bazaar.ledger.errors import LedgerError
from bazaar.ledger.genesis import Genesis
from bazaar.ledger.state import State
from bazaar.ledger.store import CHAIN_DB, SqliteStore
from bazaar.protocol import Envelope, KeyPair, ProtocolError
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.keys import load_or_create_seed

from .config import NodeConfig, PeerEntry, load_node_config
from .logs import Events
from .markets.context import RequestFailed
from .params import ParamError


class _OfflineChain:
    """The chain view a role sees during an audit: the state and blocks replayed so far, nothing to submit."""

    def __init__(self, blocks: Sequence[Block], genesis_state: State) -> None:
        self._blocks = blocks
        self.current = genesis_state
        self.finalized = 0

    @property
    def height(self) -> int:
        return self.current.height

    @property
    def finalized_height(self) -> int:
        return self.finalized

    @property
    def state(self) -> State:
        return self.current

    def block(self, height: int) -> Block | None:
        return self._blocks[height - 1] if 1 <= height <= min(len(self._blocks), self.current.height) else None

    def sign_tx(self, kind: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        raise RequestFailed("unavailable", "an audit signs nothing")

    def forget_nonce(self, nonce: int) -> None:
        return None

    def add_tx(self, raw: bytes) -> Envelope | None:
        return None

    async def submit(self, raws: Sequence[bytes], *, seal: bool = False) -> None:
        raise RequestFailed("unavailable", "an audit submits nothing")

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        raise RequestFailed("unavailable", "an audit does not wait")


class _OfflineContext:
    """A read-only :class:`~.markets.context.RoleContext` for one node's role over its stored chain."""

    def __init__(self, config: NodeConfig, key: KeyPair, scenario: Any, settings: Any, chain: _OfflineChain,
                 scratch: Path, data_dir: Path) -> None:
        self.config = config
        self._key = key
        self._scenario = scenario
        self._settings = settings
        self._chain = chain
        self._scratch = scratch
        self._source = data_dir
        self._events = Events("audit")
        me = PeerEntry(config.name, config.role, key.public, "")
        book = {p.name: p for p in (*config.peers, me)}
        self._peers = [book[n] for n, _ in scenario.nodes if n in book]
        self._by_key = {p.key: p for p in self._peers}

    name = property(lambda self: self.config.name)
    role = property(lambda self: self.config.role)
    key = property(lambda self: self._key)
    scenario = property(lambda self: self._scenario)
    settings = property(lambda self: self._settings)
    chain = property(lambda self: self._chain)
    consensus = property(lambda self: None)
    events = property(lambda self: self._events)
    byzantine = property(lambda self: frozenset())  # the audit re-derives what the honest rules say

    @property
    def network_id(self) -> str:
        return str(self._chain.current.genesis.network_id)

    @property
    def data_dir(self) -> Path:
        """A scratch copy of nothing: roles may write there; the node's own folder is only read."""
        return self._scratch

    def deadline(self, name: str) -> float:
        return float(self._scenario.deadlines[name])

    def peers(self, role: str | None = None) -> list[PeerEntry]:
        return [p for p in self._peers if role is None or p.role == role]

    def name_of(self, key: bytes) -> str:
        entry = self._by_key.get(key)
        return entry.name if entry is not None else key.hex()[:12]

    def role_of(self, key: bytes) -> str | None:
        entry = self._by_key.get(key)
        return entry.role if entry is not None else None

    def connected(self) -> set[bytes]:
        return set()

    def now_ms(self) -> int:
        return now_ms()

    def seal(self, mtype: str, body: dict[str, Any], *, round: int = 0) -> Envelope:
        raise RequestFailed("unavailable", "an audit signs nothing")

    async def publish(self, mtype: str, body: dict[str, Any], *, round: int) -> Envelope:
        raise RequestFailed("unavailable", "an audit publishes nothing")

    async def ask(self, peer: bytes, mtype: str, body: dict[str, Any], *, round: int, timeout: float) -> Envelope:
        raise RequestFailed("unavailable", "an audit asks no peer")

    async def ask_envelope(self, peer: bytes, request: Envelope, *, timeout: float) -> Envelope:
        raise RequestFailed("unavailable", "an audit asks no peer")

    async def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def spawn(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        return None

    def load_state(self, name: str) -> Any:
        for folder in (self._scratch, self._source):
            try:
                return json.loads((folder / name).read_text())
            except (OSError, json.JSONDecodeError):
                continue
        return None

    def save_state(self, name: str, value: Any) -> None:
        (self._scratch / name).write_text(json.dumps(value))

    def set_protocol(self, protocol: str, handler: Callable[[bytes, bytes], Awaitable[bytes]]) -> None:
        return None

    async def request_raw(self, peer: bytes, protocol: str, data: bytes, *, timeout: float) -> bytes:
        raise RequestFailed("unavailable", "an audit asks no peer")


def _missing_content(err: BaseException) -> bool:
    """Whether a contract refused only for want of content-addressed data it had not fetched: the refusal's
    cause carries the missing content's ``hash`` (a live node fetches it from peers before the check)."""
    return isinstance(getattr(err.__cause__, "hash", None), bytes)


def _genesis(data_dir: Path) -> Genesis:
    path = data_dir / "genesis.json"
    try:
        return Genesis.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as err:
        raise ParamError("--data-dir", f"{data_dir} holds no genesis.json (is it a node's data directory?)") from err
    except (ValueError, KeyError, TypeError) as err:
        raise ParamError("--data-dir", f"{path} is not a valid genesis: {err}") from err


def _stored_blocks(data_dir: Path, genesis: Genesis) -> tuple[list[Block], int]:
    """Every stored block in height order, and the finalized height (highest stored certificate)."""
    if not (data_dir / CHAIN_DB).is_file():
        raise ParamError("--data-dir", f"{data_dir} holds no {CHAIN_DB} (is it a node's data directory?)")
    store = SqliteStore.in_dir(data_dir)
    try:
        blocks = [Block.decode(row.raw, genesis.network_id) for row in store.iter_blocks(1)]
        finalized = max((h for h in range(1, len(blocks) + 1) if store.get_certificate(h) is not None), default=0)
    finally:
        store.close()
    return blocks, finalized


def conservation(data_dir: Path) -> dict[str, Any]:
    """Re-apply every stored block from genesis and check the token books after each.

    Returns:
        ``{"ok", "blocks", "height", "first_bad", "error", "state"}``: ``first_bad`` is the first height whose
        block does not apply or leaves the books unbalanced (None when all hold); ``state`` is the final state
        (not JSON: callers drop it).
    """
    genesis = _genesis(data_dir)
    blocks, finalized = _stored_blocks(data_dir, genesis)
    state = State.from_genesis(genesis)
    out: dict[str, Any] = {"ok": state.conserved(), "blocks": 0, "height": 0, "finalized_height": finalized,
                           "first_bad": None if state.conserved() else 0, "error": None}
    for block in blocks:
        try:
            state = apply(state, block, genesis)
        except (LedgerError, ProtocolError) as err:
            out.update(ok=False, first_bad=state.height + 1, error=f"block {state.height + 1} does not apply: {err}")
            break
        out["blocks"] += 1
        out["height"] = state.height
        if not state.conserved():
            out.update(ok=False, first_bad=block.height,
                       error=f"tokens not conserved after block {block.height}: supply {state.supply.total}, "
                             f"held {state.held()}")
            break
    out["state"] = state
    return out


def audit_data_dir(data_dir: Path) -> dict[str, Any]:
    """``bazaar chain audit``: conservation at every block and the market contract re-run on every block.

    Returns:
        ``{"ok", "path", "node", "role", "market", "blocks", "conserved", "covered", "contracts", "checked",
        "unverifiable", "first_bad", "error", "open_escrows"}``: ``covered`` says whether the node's role
        re-executes a market contract; ``checked`` counts the blocks the contract accepted; ``unverifiable`` lists
        the heights whose contract needs data the chain holds only a hash of (a contract that fails for want of
        it — a cause carrying the missing content's ``hash`` — is not a mismatch); ``first_bad``/``error`` name
        the first block that fails either check; ``open_escrows`` are the escrows still locked at the head.

    Raises:
        ParamError: not a node's data directory (no ``node.toml``, ``genesis.json`` or chain database).
    """
    from .markets.registry import get_spec
    from .scenario import load_scenario
    from .wiring import load_app

    if not (data_dir / "node.toml").is_file():
        raise ParamError("--data-dir", f"{data_dir} holds no node.toml (is it a node's data directory?)")
    config = load_node_config(data_dir / "node.toml")
    books = conservation(data_dir)
    final_state = books.pop("state")
    scenario = load_scenario(config.scenario)
    spec = get_spec(scenario.market_name)
    report: dict[str, Any] = {
        "ok": books["ok"], "path": str(data_dir), "node": config.name, "role": config.role, "market": spec.name,
        "blocks": books["blocks"], "finalized_height": books["finalized_height"], "conserved": books["ok"],
        "covered": False, "contracts": [], "checked": 0, "unverifiable": [], "first_bad": books["first_bad"],
        "error": books["error"],
        "open_escrows": [
            {"id": eid.hex(), "amount": e.amount, "expires": e.expires, "market": e.market}
            for eid, e in sorted(final_state.escrows.items())],
    }
    app = load_app(spec.role(config.role).app)
    checks = app.of_kind("block_check")
    report["contracts"] = [h.name for h in checks] + (["market-audit"] if spec.audit is not None else [])
    if not report["contracts"] or not books["ok"]:
        return report
    report["covered"] = True
    genesis = _genesis(data_dir)
    blocks, finalized = _stored_blocks(data_dir, genesis)
    key = KeyPair(load_or_create_seed(data_dir / "node.key"))
    with tempfile.TemporaryDirectory(prefix="bazaar-audit-") as scratch:
        view = _OfflineChain(blocks, State.from_genesis(genesis))
        settings = spec.settings(scenario)
        ctx = _OfflineContext(config, key, scenario, settings, view, Path(scratch), data_dir)
        role = app.create(ctx) if checks else None  # type: ignore[arg-type]  # implements what roles read
        contracts = [getattr(role, h.name) for h in checks]
        observers = [getattr(role, h.name) for h in app.of_kind("on_block")] if checks else []
        for block in blocks:
            parent = view.current
            verified = True
            try:
                if spec.audit is not None:
                    spec.audit(settings, ctx.peers(), genesis.network_id, parent, block)
                for contract in contracts:
                    try:
                        contract(parent, block)
                    except LedgerError as err:
                        if not _missing_content(err):
                            raise
                        verified = False  # it needs data the chain holds only a hash of (fetched from peers live)
                        report["unverifiable"].append(block.height)
                state = apply(parent, block, genesis)
            except (LedgerError, ProtocolError) as err:
                report.update(ok=False, first_bad=block.height, error=f"block {block.height}: the market contract "
                                                                       f"refuses it: {err}")
                return report
            view.current = state
            view.finalized = min(block.height, finalized)
            for observe in observers:
                observe(block)
            report["checked"] += verified
    return report
