"""Block stores: the :class:`Store` protocol, :class:`MemoryStore` and :class:`SqliteStore` (the only I/O).

SQLite schema (docs/ledger.md §Store)::

    blocks(height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, state_root BLOB NOT NULL, raw BLOB NOT NULL)
    certificates(height INTEGER PRIMARY KEY, raw BLOB NOT NULL)
    meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)

The database runs in WAL mode with ``synchronous=FULL``; each :meth:`Store.append` (a block and optionally
its certificate) is one transaction, so after a crash at any instant — including ``kill -9`` in the middle
of a write — the reopened store holds either all of a block or none of it. The store keeps bytes only; the
:class:`~.chain.Chain` re-verifies everything it loads.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .block import Block
from .errors import LedgerError, LedgerReason
from .finality import Certificate

CHAIN_DB = "chain.sqlite3"
"""File name of the chain database inside a node's data directory."""


class StoreError(LedgerError):
    """Misuse of a store (gap in heights, certificate for a missing block) or an I/O failure."""

    reason = LedgerReason.STORE_ERROR


@dataclass(frozen=True)
class StoredBlock:
    """One stored block row: the chain decodes and re-verifies ``raw`` itself."""

    height: int
    hash: bytes
    raw: bytes
    state_root: bytes


def _cert_bytes(cert: Certificate | bytes | None) -> bytes | None:
    if cert is None or isinstance(cert, bytes):
        return cert
    return cert.encode()


class Store(Protocol):
    """What the chain needs from persistence. Heights start at 1; blocks are appended contiguously."""

    def append(self, block: Block, state_root: bytes, cert: Certificate | bytes | None = None) -> None:
        """Atomically store ``block`` (hash, wire bytes, resulting state root) and optionally its certificate.

        Raises:
            StoreError: unless ``block.height == head_height() + 1``.
        """
        ...

    def get_block(self, height: int) -> StoredBlock | None:
        """The stored row of block ``height``, or ``None``."""
        ...

    def get_certificate(self, height: int) -> bytes | None:
        """The certificate bytes of ``height``, or ``None``."""
        ...

    def set_certificate(self, height: int, cert: Certificate | bytes) -> None:
        """Store (or replace) the certificate of an existing block. Raises :class:`StoreError` if absent."""
        ...

    def head_height(self) -> int:
        """The highest stored height (0 when empty)."""
        ...

    def finalized_height(self) -> int:
        """The highest height with a certificate (0 when none)."""
        ...

    def iter_blocks(self, start: int = 1, stop: int | None = None) -> Iterator[StoredBlock]:
        """Stored rows for ``start <= height <= stop`` (``stop=None``: the head) in order."""
        ...

    def truncate_above(self, height: int) -> int:
        """Delete every block (and certificate) above ``height`` in one transaction; returns how many.

        Raises:
            StoreError: ``finalized`` when a deleted block carries a certificate.
        """
        ...

    def get_meta(self, key: str) -> bytes | None:
        """A metadata value (e.g. ``"genesis"``)."""
        ...

    def put_meta(self, key: str, value: bytes) -> None:
        """Set a metadata value."""
        ...

    def close(self) -> None:
        """Release resources; the store must not be used afterwards."""
        ...


class MemoryStore:
    """An in-memory :class:`Store` for tests and simulations."""

    def __init__(self) -> None:
        self._blocks: dict[int, StoredBlock] = {}
        self._certs: dict[int, bytes] = {}
        self._meta: dict[str, bytes] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(LedgerReason.STORE_CLOSED, "store is closed")

    def append(self, block: Block, state_root: bytes, cert: Certificate | bytes | None = None) -> None:
        self._check_open()
        height = block.height
        if height != self.head_height() + 1:
            raise StoreError(LedgerReason.STORE_GAP, f"append height {height} but head is {self.head_height()}")
        self._blocks[height] = StoredBlock(height, block.hash, block.encode(), bytes(state_root))
        raw_cert = _cert_bytes(cert)
        if raw_cert is not None:
            self._certs[height] = raw_cert

    def get_block(self, height: int) -> StoredBlock | None:
        self._check_open()
        return self._blocks.get(height)

    def get_certificate(self, height: int) -> bytes | None:
        self._check_open()
        return self._certs.get(height)

    def set_certificate(self, height: int, cert: Certificate | bytes) -> None:
        self._check_open()
        if height not in self._blocks:
            raise StoreError(LedgerReason.STORE_MISSING_BLOCK, f"no block at height {height}")
        self._certs[height] = _cert_bytes(cert) or b""

    def head_height(self) -> int:
        self._check_open()
        return max(self._blocks, default=0)

    def finalized_height(self) -> int:
        self._check_open()
        return max(self._certs, default=0)

    def iter_blocks(self, start: int = 1, stop: int | None = None) -> Iterator[StoredBlock]:
        self._check_open()
        top = self.head_height() if stop is None else min(stop, self.head_height())
        for h in range(max(start, 1), top + 1):
            yield self._blocks[h]

    def truncate_above(self, height: int) -> int:
        self._check_open()
        doomed = [h for h in self._blocks if h > height]
        if any(h in self._certs for h in doomed):
            raise StoreError(LedgerReason.FINALIZED, f"cannot remove finalized blocks above {height}")
        for h in doomed:
            del self._blocks[h]
        return len(doomed)

    def get_meta(self, key: str) -> bytes | None:
        self._check_open()
        return self._meta.get(key)

    def put_meta(self, key: str, value: bytes) -> None:
        self._check_open()
        self._meta[key] = bytes(value)

    def close(self) -> None:
        self._closed = True


_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks(
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    state_root BLOB NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates(
    height INTEGER PRIMARY KEY REFERENCES blocks(height),
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


class SqliteStore:
    """A durable :class:`Store` in one SQLite file (WAL, ``synchronous=FULL``, one transaction per append)."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the database at ``path``.

        Raises:
            StoreError: the file cannot be opened or is not a chain database.
        """
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, f"cannot open {self.path}: {err}") from err

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> SqliteStore:
        """Open the chain database of a node's data directory (``<dir>/chain.sqlite3``)."""
        directory = Path(data_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / CHAIN_DB)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block exits normally, rolled back on any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        try:
            row = self._db.execute(sql, args).fetchone()
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, str(err)) from err
        return row

    def append(self, block: Block, state_root: bytes, cert: Certificate | bytes | None = None) -> None:
        height, raw_cert = block.height, _cert_bytes(cert)
        try:
            with self._transaction():
                row = self._db.execute("SELECT COALESCE(MAX(height), 0) FROM blocks").fetchone()
                if height != row[0] + 1:
                    raise StoreError(LedgerReason.STORE_GAP, f"append height {height} but head is {row[0]}")
                self._db.execute(
                    "INSERT INTO blocks(height, hash, state_root, raw) VALUES (?, ?, ?, ?)",
                    (height, block.hash, bytes(state_root), block.encode()),
                )
                if raw_cert is not None:
                    self._db.execute(
                        "INSERT INTO certificates(height, raw) VALUES (?, ?)", (height, raw_cert)
                    )
        except sqlite3.IntegrityError as err:
            raise StoreError(LedgerReason.STORE_DUPLICATE, str(err)) from err
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, str(err)) from err

    def get_block(self, height: int) -> StoredBlock | None:
        row = self._one("SELECT hash, raw, state_root FROM blocks WHERE height = ?", (height,))
        if row is None:
            return None
        return StoredBlock(height, bytes(row[0]), bytes(row[1]), bytes(row[2]))

    def get_certificate(self, height: int) -> bytes | None:
        row = self._one("SELECT raw FROM certificates WHERE height = ?", (height,))
        return None if row is None else bytes(row[0])

    def set_certificate(self, height: int, cert: Certificate | bytes) -> None:
        raw_cert = _cert_bytes(cert)
        try:
            with self._transaction():
                if self._db.execute("SELECT 1 FROM blocks WHERE height = ?", (height,)).fetchone() is None:
                    raise StoreError(LedgerReason.STORE_MISSING_BLOCK, f"no block at height {height}")
                self._db.execute(
                    "INSERT OR REPLACE INTO certificates(height, raw) VALUES (?, ?)", (height, raw_cert)
                )
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, str(err)) from err

    def head_height(self) -> int:
        row = self._one("SELECT COALESCE(MAX(height), 0) FROM blocks")
        return int(row[0]) if row else 0

    def finalized_height(self) -> int:
        row = self._one("SELECT COALESCE(MAX(height), 0) FROM certificates")
        return int(row[0]) if row else 0

    def iter_blocks(self, start: int = 1, stop: int | None = None) -> Iterator[StoredBlock]:
        top = self.head_height() if stop is None else min(stop, self.head_height())
        h = max(start, 1)
        while h <= top:  # pages of 256 rows: bounded memory, no cursor held across yields
            try:
                rows = self._db.execute(
                    "SELECT height, hash, raw, state_root FROM blocks"
                    " WHERE height BETWEEN ? AND ? ORDER BY height",
                    (h, min(top, h + 255)),
                ).fetchall()
            except sqlite3.Error as err:
                raise StoreError(LedgerReason.STORE_IO, str(err)) from err
            for height, block_hash, raw, root in rows:
                yield StoredBlock(int(height), bytes(block_hash), bytes(raw), bytes(root))
            h += 256

    def truncate_above(self, height: int) -> int:
        try:
            with self._transaction():
                if self._db.execute("SELECT 1 FROM certificates WHERE height > ?", (height,)).fetchone():
                    raise StoreError(LedgerReason.FINALIZED, f"cannot remove finalized blocks above {height}")
                removed = self._db.execute("DELETE FROM blocks WHERE height > ?", (height,)).rowcount
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, str(err)) from err
        return int(removed)

    def get_meta(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else bytes(row[0])

    def put_meta(self, key: str, value: bytes) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, bytes(value)))
        except sqlite3.Error as err:
            raise StoreError(LedgerReason.STORE_IO, str(err)) from err

    def close(self) -> None:
        self._db.close()
