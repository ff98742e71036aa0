"""The default store: one SQLite file (WAL mode) through aiosqlite.

One connection, and an asyncio lock around every statement or transaction: aiosqlite already runs
a connection's calls one at a time on its own thread, but without the lock one task's statements
could land inside another task's open transaction. Writes use ``BEGIN IMMEDIATE`` so another
process sharing the file waits (busy timeout) instead of failing half-way.

One read is on the push path of every call event: a user's device tokens. Through aiosqlite's
thread it costs ~90 µs and two thread hand-overs (a third of a core at 1 500 pushes/s, issue 14);
run directly on a second, query-only connection it costs ~10 µs. WAL readers never wait for
writers and see every committed write (this process's and any other's), so no cache and no
invalidation are needed. That connection never waits (busy timeout 0): when SQLite says busy or
anything else goes wrong, the read takes the ordinary path, which waits and reports errors.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiosqlite

from mxproxy.store import rows, validation
from mxproxy.store.base import DeviceToken, StoreError
from mxproxy.store.crypto import SecretBox, key_file_for, load_or_create_key_file, open_secret_box
from mxproxy.store.migrations import migrate_sqlite
from mxproxy.store.sql import SQLStore, Transaction

log = logging.getLogger(__name__)

MEMORY = ":memory:"


class SQLiteStore(SQLStore):
    """Users, device tokens and signing keys in a local SQLite file."""

    _foreign_key_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: str | Path, store_key: str | None = None, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._store_key = store_key or None
        self._busy_timeout = busy_timeout
        self._conn: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # query-only, used on the event loop (see module doc)
        self._box: SecretBox | None = None
        self._lock = asyncio.Lock()
        self._exclusive: int | None = None  # fd of the held ``<db>.lock`` file

    @property
    def lock_path(self) -> Path:
        return Path(self.path + ".lock")

    async def claim_exclusive_use(self) -> None:
        """SQLite serves one instance: hold an exclusive lock on ``<db>.lock`` until ``close``.

        A second ``mxproxy serve`` on the same file would open every user's MX session a second
        time and push every call twice; it stops at start instead, naming the holder."""
        if self.in_memory or self._exclusive is not None:
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"SQLite store {self.path}: cannot open {self.lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"SQLite store {self.path} is in use by another mxproxy process (pid {holder}); a SQLite "
                "store serves a single instance: stop the other one, or share a PostgreSQL store "
                "(server.db = postgresql://...) to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._exclusive = fd

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    # lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._conn is not None:
            return
        conn = await self._connect()
        try:
            await migrate_sqlite(conn)  # first: a file that is not SQLite must not get a .key beside it
            key = self._resolve_key()
            self._conn = conn
            self._box = await open_secret_box(key, self._get_meta, self._add_meta, self._wrong_key_hint())
            self._reader = self._open_reader()
        except BaseException as exc:
            self._conn = None
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from None
            raise

    async def close(self) -> None:
        conn, self._conn, self._box = self._conn, None, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        fd, self._exclusive = self._exclusive, None
        if fd is not None:
            os.close(fd)  # releases the flock
        if conn is not None:
            async with self._lock:
                await conn.close()

    def _resolve_key(self) -> str:
        if self._store_key:
            return self._store_key
        if self.in_memory:
            return secrets.token_urlsafe(32)  # nothing persists, so an ephemeral key is enough
        return load_or_create_key_file(Path(self.path))

    def _wrong_key_hint(self) -> str:
        if self.in_memory:
            return ""
        key_file = key_file_for(Path(self.path))
        if self._store_key and key_file.exists():
            return f"this database may have been created without server.storeKey; its key is in {key_file}"
        if not self._store_key:
            return f"the key in {key_file} is not this database's; configure the right server.storeKey"
        return "configure the server.storeKey it was created with"

    async def _connect(self) -> aiosqlite.Connection:
        if not self.in_memory:
            path = Path(self.path)
            if not path.parent.is_dir():
                raise StoreError(f"SQLite store {self.path}: folder {path.parent} does not exist")
            try:  # create the file 0600 first: SQLite gives its -wal/-shm files the same mode
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            except OSError as exc:
                raise StoreError(f"SQLite store {self.path}: cannot open: {exc.strerror}") from None
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._busy_timeout)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if not self.in_memory:
                await self._enable_wal(conn)
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            await conn.close()
            raise self._error(exc) from None
        return conn

    async def _enable_wal(self, conn: aiosqlite.Connection) -> None:
        """Switch to WAL. Switching needs an exclusive lock and SQLite answers "locked" at once,
        without its busy handler, while another connection opens the same new file: retry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                async with conn.execute("PRAGMA journal_mode = WAL") as cur:
                    mode = await cur.fetchone()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
        if mode is None or str(mode[0]).lower() != "wal":
            log.warning("store: SQLite %s could not switch to WAL mode", self.path)

    def _open_reader(self) -> sqlite3.Connection | None:
        """The query-only connection for reads on the event loop; None for ``:memory:`` (a second
        connection would see another database) or when it cannot be opened (reads stay async)."""
        if self.in_memory:
            return None
        try:
            reader = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
            reader.execute("PRAGMA query_only = ON")
            reader.row_factory = sqlite3.Row
        except sqlite3.Error as exc:
            log.warning("store: SQLite %s: no direct reader (%s); token reads go through the store thread",
                        self.path, exc)
            return None
        return reader

    # device tokens on the push path ----------------------------------------------------------
    async def tokens_for_user(self, login: str) -> list[DeviceToken]:
        reader = self._reader
        if reader is not None and self._conn is not None:
            validation.text("login", login)
            try:
                found = reader.execute(self._tokens_of_user, (login,)).fetchall()
            except sqlite3.Error:
                pass  # busy (WAL recovery, a rollback-journal writer) or worse: the ordinary path tells
            else:
                return [rows.token_from_row(row) for row in found]
        return await super().tokens_for_user(login)

    # plumbing --------------------------------------------------------------------------------
    def _error(self, exc: sqlite3.Error) -> StoreError:
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return StoreError(f"SQLite store {self.path}: the file is not an SQLite database")
        return StoreError(f"SQLite store {self.path}: {exc}")

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._conn is None:
                raise StoreError("the store is not open")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; rolled back on any error (including cancellation)."""
        async with self._locked() as conn:
            if conn.in_transaction:  # a previous rollback was itself interrupted
                await conn.execute("ROLLBACK")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        async with self._locked() as conn:
            return await _Statements(conn).one(sql, *params)

    async def _all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        async with self._locked() as conn:
            return await _Statements(conn).all(sql, *params)

    async def _run(self, sql: str, *params: Any) -> int:
        async with self._transaction() as tx:
            return await tx.run(sql, *params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._write() as conn:
            yield _Statements(conn)


class _Statements(Transaction):
    """Statements on the store's one connection, which the caller holds the lock of."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def run(self, sql: str, *params: Any) -> int:
        async with self._conn.execute(sql, params) as cur:
            return cur.rowcount

    async def all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if params:
            await self._conn.executemany(sql, params)
