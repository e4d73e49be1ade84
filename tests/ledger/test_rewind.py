"""Dropping a non-final tail (the node's fork choice): Store.truncate_above and Chain.rewind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bazaar.ledger.chain import Chain
from bazaar.ledger.errors import InvalidBlock
from bazaar.ledger.store import MemoryStore, SqliteStore, Store, StoreError

from .test_store_chain import make_blocks


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_truncate_above_removes_only_unfinalized_blocks(kind: str, tmp_path: Path) -> None:
    _, blocks = make_blocks(4)
    store: Store = MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "c.sqlite3")
    for i, block in enumerate(blocks):
        store.append(block, bytes([i]) * 32, cert=b"cert" if i == 1 else None)
    with pytest.raises(StoreError):
        store.truncate_above(1)  # block 2 is finalized
    assert store.head_height() == 4
    assert store.truncate_above(2) == 2
    assert store.head_height() == 2 and store.get_block(3) is None
    assert store.truncate_above(5) == 0
    store.append(blocks[2], b"\x09" * 32)  # the height is free again
    assert store.head_height() == 3
    store.close()


def test_rewind_restores_the_state_and_accepts_another_branch(tmp_path: Path) -> None:
    net, blocks = make_blocks(4)
    chain = Chain(SqliteStore.in_dir(tmp_path), net.genesis)
    for block in blocks:
        chain.import_block(block)
    root_at_2 = chain.state_at(2).root()
    assert chain.rewind(2) == 2
    assert chain.height == 2 and chain.state.root() == root_at_2 and chain.head == blocks[1]
    chain.import_block(blocks[2])  # the same or another valid block extends height 2 again
    assert chain.height == 3
    chain.store.close()
    reopened = Chain(SqliteStore.in_dir(tmp_path), net.genesis)  # the rewind is durable and verifies
    assert reopened.height == 3
    reopened.store.close()


def test_rewind_never_drops_a_final_block(tmp_path: Path) -> None:
    net, blocks = make_blocks(2)
    chain = Chain(MemoryStore(), net.genesis)
    for block in blocks:
        chain.import_block(block)
    chain._finalize(2)  # as add_certificate does after verifying a certificate
    with pytest.raises(InvalidBlock):
        chain.rewind(1)
    assert chain.height == 2
