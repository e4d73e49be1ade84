"""Store conformance (memory and SQLite), kill -9 durability, chain reload and corruption detection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bazaar.ledger.block import Block
from bazaar.ledger.chain import Chain, verify_data_dir
from bazaar.ledger.errors import StoreCorrupt, UnknownParent
from bazaar.ledger.store import CHAIN_DB, MemoryStore, SqliteStore, Store, StoreError

from .helpers import NID, Net


def make_blocks(n: int) -> tuple[Net, list[Block]]:
    net = Net(stakes=[1, 1, 1])
    blocks = []
    for i in range(n):
        block, _ = net.commit([net.tx("alice", "transfer", to=net.acct("bob"), amount=i + 1)])
        blocks.append(block)
    return net, blocks


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "c.sqlite3")
    yield s
    s.close()


def test_store_conformance(store: Store) -> None:
    _, blocks = make_blocks(3)
    assert store.head_height() == 0 and store.finalized_height() == 0 and store.get_block(1) is None
    store.append(blocks[0], b"\x01" * 32)
    store.append(blocks[1], b"\x02" * 32, cert=b"cert-2")
    with pytest.raises(StoreError):
        store.append(blocks[1], b"\x02" * 32)  # not head + 1
    with pytest.raises(StoreError):
        store.set_certificate(5, b"x")
    store.append(blocks[2], b"\x03" * 32)
    row = store.get_block(2)
    assert row is not None and row.hash == blocks[1].hash and row.raw == blocks[1].encode()
    assert row.state_root == b"\x02" * 32
    assert (
        store.head_height() == 3 and store.finalized_height() == 2 and store.get_certificate(2) == b"cert-2"
    )
    store.set_certificate(3, b"cert-3")
    assert store.finalized_height() == 3
    assert [r.height for r in store.iter_blocks(2)] == [2, 3]
    assert [r.height for r in store.iter_blocks(1, 2)] == [1, 2]
    assert list(store.iter_blocks(4)) == []
    store.put_meta("k", b"v")
    assert store.get_meta("k") == b"v" and store.get_meta("nope") is None


def test_chain_reload_reverifies_and_sync_helpers(tmp_path: Path) -> None:
    net, blocks = make_blocks(4)
    store = SqliteStore.in_dir(tmp_path)
    chain = Chain(store, net.genesis)
    for block in blocks:
        chain.import_block(block)
    with pytest.raises(UnknownParent):
        chain.import_block(_future(net, chain))
    assert [b.height for b in chain.blocks_after(1, 2)] == [2, 3]
    store.close()
    reopened = Chain(SqliteStore.in_dir(tmp_path), net.genesis)
    assert reopened.height == 4 and reopened.state.root() == net.state.root()
    report = verify_data_dir(tmp_path)
    assert report["ok"] and report["height"] == 4 and report["conserved"]
    reopened.store.close()


def _future(net: Net, chain: Chain) -> Block:
    """A valid-looking block two heights ahead (its parent is unknown)."""
    _block, state, _ = net.build([], state=chain.state)
    block2, _, _ = net.build([], state=state)
    return block2


def test_corrupted_block_row_names_the_height(tmp_path: Path) -> None:
    net, blocks = make_blocks(5)
    store = SqliteStore.in_dir(tmp_path)
    chain = Chain(store, net.genesis)
    for block in blocks:
        chain.import_block(block)
    store.close()
    path = tmp_path / CHAIN_DB
    data = bytearray(path.read_bytes())
    target = blocks[2].encode()
    at = data.find(target)
    assert at >= 0, "block 3 must sit in the main file after the WAL checkpoint on close"
    data[at + len(target) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt) as info:
        Chain(SqliteStore(path), net.genesis)
    assert info.value.height == 3
    report = verify_data_dir(tmp_path)
    assert not report["ok"] and report["height"] == 3


WRITER = textwrap.dedent(
    """
    import sys
    from bazaar.ledger.block import Block
    from bazaar.ledger.store import SqliteStore
    path, blob = sys.argv[1], open(sys.argv[2], "rb").read()
    from bazaar.protocol import codec
    raws = codec.decode(blob)
    store = SqliteStore(path)
    print("ready", flush=True)
    for raw in raws[store.head_height():]:
        block = Block.decode(raw, sys.argv[3])
        store.append(block, b"\\x00" * 32, cert=b"c" * 2000)
    print("done", flush=True)
    """
)


def test_kill_minus_nine_never_leaves_a_torn_tail(tmp_path: Path) -> None:
    from bazaar.protocol import codec

    _net, blocks = make_blocks(25)
    blob = tmp_path / "blocks.bin"
    blob.write_bytes(codec.encode([b.encode() for b in blocks]))
    db = tmp_path / "kill.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    heights = []
    for i in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db), str(blob), NID], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.003 * (i + 1))  # let it get into the write loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        store = SqliteStore(db)
        head = store.head_height()
        rows = list(store.iter_blocks())
        assert [r.height for r in rows] == list(range(1, head + 1))
        for row in rows:
            assert row.raw == blocks[row.height - 1].encode()
            assert store.get_certificate(row.height) == b"c" * 2000  # block and certificate: all or nothing
        store.close()
        heights.append(head)
    assert heights == sorted(heights)


def test_validator_sets_outlive_the_states_dropped_at_finality() -> None:
    """A late attestation for a finalized block asks for its validator set: answered from memory, not by
    re-applying the chain from genesis (which a 10,000-agent simulation paid on every replica: ADR 0172)."""
    net, blocks = make_blocks(4)
    chain = Chain(MemoryStore(), net.genesis)
    for block in blocks:
        chain.import_block(block)
    expected = {h: chain.state_at(h - 1).validator_set() for h in range(1, 5)}
    for h in range(1, 5):
        assert dict(chain.validator_set(h)) == expected[h]
    chain._finalize(4)  # drops the states below 4, as a certificate for block 4 does
    chain.store.iter_blocks = None  # type: ignore[method-assign,assignment]  # a replay would fail now
    assert all(dict(chain.validator_set(h)) == expected[h] for h in range(1, 5))
