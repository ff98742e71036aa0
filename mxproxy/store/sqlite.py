"""The default store: one SQLite file (WAL mode) through aiosqlite.

One connection, and an asyncio lock around every statement or transaction: aiosqlite already runs
a connection's calls one at a time on its own thread, but without the lock one task's statements
could land inside another task's open transaction. Writes use ``BEGIN IMMEDIATE`` so another
process sharing the file waits (busy timeout) instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import aiosqlite

from mxproxy.store import rows, validation
from mxproxy.store.base import DeviceToken, InvalidRecord, SigningKey, Store, StoreError, UserRecord
from mxproxy.store.crypto import SecretBox, key_file_for, load_or_create_key_file, open_secret_box
from mxproxy.store.migrations import migrate_sqlite

log = logging.getLogger(__name__)

MEMORY = ":memory:"


class SQLiteStore(Store):
    """Users, device tokens and signing keys in a local SQLite file."""

    def __init__(self, path: str | Path, store_key: str | None = None, *, busy_timeout: float = 5.0) -> None:
        self.path = str(path)
        self._store_key = store_key or None
        self._busy_timeout = busy_timeout
        self._conn: aiosqlite.Connection | None = None
        self._box: SecretBox | None = None
        self._lock = asyncio.Lock()

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    # lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._conn is not None:
            return
        key = self._resolve_key()
        conn = await self._connect()
        try:
            await migrate_sqlite(conn)
            self._conn = conn
            self._box = await open_secret_box(key, self._get_meta, self._add_meta, self._wrong_key_hint())
        except BaseException as exc:
            self._conn = None
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from None
            raise

    async def close(self) -> None:
        conn, self._conn, self._box = self._conn, None, None
        if conn is not None:
            async with self._lock:
                await conn.close()

    async def ping(self) -> None:
        async with self._locked() as conn:
            await conn.execute("SELECT 1")

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

    def _secrets(self) -> SecretBox:
        if self._box is None:
            raise StoreError("the store is not open")
        return self._box

    async def _get_meta(self, name: str) -> str | None:
        async with self._locked() as conn:
            async with conn.execute("SELECT value FROM store_meta WHERE name = ?", (name,)) as cur:
                row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def _add_meta(self, name: str, value: str) -> None:
        async with self._write() as conn:
            await conn.execute("INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, value))

    async def _fetchall(self, sql: str, params: tuple[object, ...] = ()) -> list[aiosqlite.Row]:
        async with self._locked() as conn:
            async with conn.execute(sql, params) as cur:
                return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
        async with self._locked() as conn:
            async with conn.execute(sql, params) as cur:
                return await cur.fetchone()

    # users ---------------------------------------------------------------------------------
    async def get_user(self, login: str) -> UserRecord | None:
        validation.text("login", login)
        row = await self._fetchone(f"SELECT {rows.USER_COLUMNS} FROM users WHERE login = ?", (login,))
        return None if row is None else rows.user_from_row(self._secrets(), row)

    async def put_user(self, user: UserRecord) -> None:
        validation.user(user)
        sealed = rows.seal_password(self._secrets(), user)
        stamp = rows.now()
        async with self._write() as conn:
            await conn.execute(
                f"""INSERT INTO users ({rows.USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (login) DO UPDATE SET host = excluded.host, mx_login = excluded.mx_login,
                    password_enc = excluded.password_enc, needs_reauth = excluded.needs_reauth,
                    updated_at = excluded.updated_at""",
                (user.login, user.host, user.mx_login, sealed, int(user.needs_reauth),
                 user.created_at or stamp, user.updated_at or stamp),
            )

    async def set_user_needs_reauth(self, login: str, needs_reauth: bool) -> bool:
        validation.text("login", login)
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE users SET needs_reauth = ?, updated_at = ? WHERE login = ?",
                (int(bool(needs_reauth)), rows.now(), login),
            )
            return cur.rowcount > 0

    async def delete_user(self, login: str) -> bool:
        validation.text("login", login)
        async with self._write() as conn:
            await conn.execute("DELETE FROM device_tokens WHERE login = ?", (login,))
            cur = await conn.execute("DELETE FROM users WHERE login = ?", (login,))
            return cur.rowcount > 0

    async def list_users(self) -> list[UserRecord]:
        found = await self._fetchall(f"SELECT {rows.USER_COLUMNS} FROM users ORDER BY login")
        box = self._secrets()
        return [rows.user_from_row(box, row) for row in found]

    # device tokens ---------------------------------------------------------------------------
    async def put_token(self, token: DeviceToken) -> str | None:
        validation.device_token(token)
        key = (token.kind, token.topic, token.token)
        stamp = token.created_at or rows.now()
        async with self._write() as conn:
            async with conn.execute(
                "SELECT login FROM device_tokens WHERE kind = ? AND topic = ? AND token = ?", key
            ) as cur:
                row = await cur.fetchone()
            try:
                if row is None:
                    await conn.execute(
                        f"INSERT INTO device_tokens ({rows.TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*key, token.login, int(token.sandbox), stamp, token.last_result, token.last_result_at),
                    )
                    return None
                if row["login"] == token.login:
                    await conn.execute(
                        "UPDATE device_tokens SET sandbox = ? WHERE kind = ? AND topic = ? AND token = ?",
                        (int(token.sandbox), *key),
                    )
                    return None
                await conn.execute(
                    """UPDATE device_tokens SET login = ?, sandbox = ?, created_at = ?,
                        last_result = NULL, last_result_at = NULL
                    WHERE kind = ? AND topic = ? AND token = ?""",
                    (token.login, int(token.sandbox), stamp, *key),
                )
                return str(row["login"])
            except sqlite3.IntegrityError:
                raise InvalidRecord(f"device token for {token.login!r}: that user is not stored") from None

    async def get_token(self, kind: str, topic: str, token: str) -> DeviceToken | None:
        key = validation.token_key(kind, topic, token)
        row = await self._fetchone(
            f"SELECT {rows.TOKEN_COLUMNS} FROM device_tokens WHERE kind = ? AND topic = ? AND token = ?", key
        )
        return None if row is None else rows.token_from_row(row)

    async def delete_token(self, kind: str, topic: str, token: str, login: str | None = None) -> bool:
        key = validation.token_key(kind, topic, token)
        async with self._write() as conn:
            if login is None:
                cur = await conn.execute("DELETE FROM device_tokens WHERE kind = ? AND topic = ? AND token = ?", key)
            else:
                validation.text("login", login)
                cur = await conn.execute(
                    "DELETE FROM device_tokens WHERE kind = ? AND topic = ? AND token = ? AND login = ?", (*key, login)
                )
            return cur.rowcount > 0

    async def tokens_for_user(self, login: str) -> list[DeviceToken]:
        validation.text("login", login)
        found = await self._fetchall(
            f"SELECT {rows.TOKEN_COLUMNS} FROM device_tokens WHERE login = ? ORDER BY created_at, kind, topic, token",
            (login,),
        )
        return [rows.token_from_row(row) for row in found]

    async def list_tokens(self) -> list[DeviceToken]:
        found = await self._fetchall(
            f"SELECT {rows.TOKEN_COLUMNS} FROM device_tokens ORDER BY login, created_at, kind, topic, token"
        )
        return [rows.token_from_row(row) for row in found]

    async def set_token_result(self, kind: str, topic: str, token: str, result: str, at: float) -> None:
        key = validation.token_key(kind, topic, token)
        validation.text("result", result, allow_empty=True)
        validation.timestamp("at", at)
        async with self._write() as conn:
            await conn.execute(
                "UPDATE device_tokens SET last_result = ?, last_result_at = ? WHERE kind = ? AND topic = ? AND token = ?",
                (result, float(at), *key),
            )

    # signing keys ----------------------------------------------------------------------------
    async def put_signing_key(self, key: SigningKey) -> None:
        validation.signing_key(key)
        sealed = rows.seal_private_key(self._secrets(), key)
        async with self._write() as conn:
            await conn.execute(
                f"""INSERT INTO signing_keys ({rows.KEY_COLUMNS}) VALUES (?, ?, ?)
                ON CONFLICT (kid) DO UPDATE SET private_pem_enc = excluded.private_pem_enc,
                    created_at = excluded.created_at""",
                (key.kid, sealed, key.created_at or rows.now()),
            )

    async def list_signing_keys(self) -> list[SigningKey]:
        found = await self._fetchall(f"SELECT {rows.KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid")
        box = self._secrets()
        return [rows.key_from_row(box, row) for row in found]

    async def delete_signing_key(self, kid: str) -> None:
        validation.text("kid", kid)
        async with self._write() as conn:
            await conn.execute("DELETE FROM signing_keys WHERE kid = ?", (kid,))
