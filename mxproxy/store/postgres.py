"""The shared store for several proxy instances: PostgreSQL through an asyncpg pool.

All tables live in one schema (``mxproxy`` by default), so a database can host other things and
tests can isolate themselves in a throw-away schema. A store key is required: unlike the SQLite
fallback there is no safe place beside the data to keep a generated one.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from typing import AsyncIterator
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg

from mxproxy.store import rows, validation
from mxproxy.store.base import DeviceToken, InvalidRecord, SigningKey, Store, StoreError, UserRecord
from mxproxy.store.crypto import SecretBox, StoreKeyError, open_secret_box
from mxproxy.store.migrations import migrate_postgres

SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
PUT_TOKEN_ATTEMPTS = 5

# What a lost server, a refused connection or a dead pool look like from asyncpg.
CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
)


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, fit for messages and logs."""
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{host}"
        query = "&".join(
            f"{k}={'***' if k.lower() == 'password' else v}" for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparsable PostgreSQL URL>"


def _dsn_passwords(dsn: str) -> list[str]:
    try:
        parts = urlsplit(dsn)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
        return found
    except ValueError:
        return []


class PostgresStore(Store):
    """Users, device tokens and signing keys in PostgreSQL, safe to share between processes."""

    def __init__(
        self,
        dsn: str,
        store_key: str | None,
        *,
        schema: str = "mxproxy",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> None:
        if not store_key:
            raise StoreKeyError(
                "the PostgreSQL store needs a store key to encrypt MX passwords and signing keys: "
                "set server.storeKey (or the MXPROXY_STORE_KEY environment variable)"
            )
        if not SCHEMA_NAME.fullmatch(schema):
            raise StoreError(f"PostgreSQL store: schema name {schema!r} must be a plain identifier")
        self._dsn = dsn
        self._store_key = store_key
        self.schema = schema
        self._min_size = min_size
        self._max_size = max(max_size, min_size)
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._box: SecretBox | None = None
        s = f'"{schema}"'
        self._q = s
        self._users = f"{s}.users"
        self._tokens = f"{s}.device_tokens"
        self._keys = f"{s}.signing_keys"
        self._meta = f"{s}.store_meta"

    @property
    def where(self) -> str:
        return redact_dsn(self._dsn)

    # lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings={"application_name": "mxproxy"},
            )
        except (asyncpg.PostgresError, ValueError, *CONNECTION_ERRORS) as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self.where}: {self._describe(exc)}") from None
        try:
            async with pool.acquire() as conn:
                await migrate_postgres(conn, self.schema, self._q)
            self._pool = pool
            self._box = await open_secret_box(
                self._store_key, self._get_meta, self._add_meta, "configure the server.storeKey it was created with"
            )
        except BaseException as exc:
            self._pool = None
            pool.terminate()
            if isinstance(exc, (asyncpg.PostgresError, *CONNECTION_ERRORS)):
                raise StoreError(f"PostgreSQL store at {self.where}: {self._describe(exc)}") from None
            raise

    async def close(self) -> None:
        pool, self._pool, self._box = self._pool, None, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self._connect_timeout)
            except (asyncio.TimeoutError, *CONNECTION_ERRORS, asyncpg.PostgresError):
                pool.terminate()

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    # plumbing --------------------------------------------------------------------------------
    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, asyncio.TimeoutError):
            text = "timed out"
        for secret in _dsn_passwords(self._dsn):
            text = text.replace(secret, "***")
        return text

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError("the store is not open")
        try:
            async with self._pool.acquire(timeout=self._connect_timeout) as conn:
                yield conn
        except asyncpg.ForeignKeyViolationError:
            raise
        except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
            raise StoreError(f"PostgreSQL store at {self.where}: {self._describe(exc)}") from None

    def _secrets(self) -> SecretBox:
        if self._box is None:
            raise StoreError("the store is not open")
        return self._box

    async def _get_meta(self, name: str) -> str | None:
        async with self._conn() as conn:
            return await conn.fetchval(f"SELECT value FROM {self._meta} WHERE name = $1", name)

    async def _add_meta(self, name: str, value: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                f"INSERT INTO {self._meta} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, value
            )

    @staticmethod
    def _count(status: str) -> int:
        """Rows touched, from a command tag such as ``DELETE 1`` or ``INSERT 0 1``."""
        try:
            return int(status.rsplit(" ", 1)[-1])
        except ValueError:
            return 0

    # users ---------------------------------------------------------------------------------
    async def get_user(self, login: str) -> UserRecord | None:
        validation.text("login", login)
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT {rows.USER_COLUMNS} FROM {self._users} WHERE login = $1", login)
        return None if row is None else rows.user_from_row(self._secrets(), row)

    async def put_user(self, user: UserRecord) -> None:
        validation.user(user)
        sealed = rows.seal_password(self._secrets(), user)
        stamp = rows.now()
        async with self._conn() as conn:
            await conn.execute(
                f"""INSERT INTO {self._users} ({rows.USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (login) DO UPDATE SET host = excluded.host, mx_login = excluded.mx_login,
                    password_enc = excluded.password_enc, needs_reauth = excluded.needs_reauth,
                    updated_at = excluded.updated_at""",
                user.login, user.host, user.mx_login, sealed, user.needs_reauth,
                float(user.created_at or stamp), float(user.updated_at or stamp),
            )

    async def set_user_needs_reauth(self, login: str, needs_reauth: bool) -> bool:
        validation.text("login", login)
        async with self._conn() as conn:
            status = await conn.execute(
                f"UPDATE {self._users} SET needs_reauth = $1, updated_at = $2 WHERE login = $3",
                bool(needs_reauth), rows.now(), login,
            )
        return self._count(status) > 0

    async def delete_user(self, login: str) -> bool:
        validation.text("login", login)
        async with self._conn() as conn:
            async with conn.transaction():
                await conn.execute(f"DELETE FROM {self._tokens} WHERE login = $1", login)
                status = await conn.execute(f"DELETE FROM {self._users} WHERE login = $1", login)
        return self._count(status) > 0

    async def list_users(self) -> list[UserRecord]:
        async with self._conn() as conn:
            found = await conn.fetch(f"SELECT {rows.USER_COLUMNS} FROM {self._users} ORDER BY login")
        box = self._secrets()
        return [rows.user_from_row(box, row) for row in found]

    # device tokens ---------------------------------------------------------------------------
    async def put_token(self, token: DeviceToken) -> str | None:
        validation.device_token(token)
        key = (token.kind, token.topic, token.token)
        stamp = float(token.created_at or rows.now())
        where = "kind = $1 AND topic = $2 AND token = $3"
        try:
            async with self._conn() as conn:
                # Lock the row if it exists; if it does not, insert without overwriting a
                # concurrent insert and try again, so the previous owner is always reported.
                for _ in range(PUT_TOKEN_ATTEMPTS):
                    async with conn.transaction():
                        previous = await conn.fetchval(f"SELECT login FROM {self._tokens} WHERE {where} FOR UPDATE", *key)
                        if previous is None:
                            status = await conn.execute(
                                f"""INSERT INTO {self._tokens} ({rows.TOKEN_COLUMNS})
                                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
                                *key, token.login, token.sandbox, stamp, token.last_result, token.last_result_at,
                            )
                            if self._count(status) == 1:
                                return None
                            continue
                        if previous == token.login:
                            await conn.execute(f"UPDATE {self._tokens} SET sandbox = $4 WHERE {where}", *key, token.sandbox)
                            return None
                        await conn.execute(
                            f"""UPDATE {self._tokens} SET login = $4, sandbox = $5, created_at = $6,
                                last_result = NULL, last_result_at = NULL WHERE {where}""",
                            *key, token.login, token.sandbox, stamp,
                        )
                        return str(previous)
        except asyncpg.ForeignKeyViolationError:
            raise InvalidRecord(f"device token for {token.login!r}: that user is not stored") from None
        raise StoreError("device token: registration kept racing with concurrent changes; try again")

    async def get_token(self, kind: str, topic: str, token: str) -> DeviceToken | None:
        key = validation.token_key(kind, topic, token)
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} WHERE kind = $1 AND topic = $2 AND token = $3", *key
            )
        return None if row is None else rows.token_from_row(row)

    async def delete_token(self, kind: str, topic: str, token: str, login: str | None = None) -> bool:
        key = validation.token_key(kind, topic, token)
        where = "kind = $1 AND topic = $2 AND token = $3"
        async with self._conn() as conn:
            if login is None:
                status = await conn.execute(f"DELETE FROM {self._tokens} WHERE {where}", *key)
            else:
                validation.text("login", login)
                status = await conn.execute(f"DELETE FROM {self._tokens} WHERE {where} AND login = $4", *key, login)
        return self._count(status) > 0

    async def tokens_for_user(self, login: str) -> list[DeviceToken]:
        validation.text("login", login)
        async with self._conn() as conn:
            found = await conn.fetch(
                f"""SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} WHERE login = $1
                ORDER BY created_at, kind, topic, token""",
                login,
            )
        return [rows.token_from_row(row) for row in found]

    async def list_tokens(self) -> list[DeviceToken]:
        async with self._conn() as conn:
            found = await conn.fetch(
                f"SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} ORDER BY login, created_at, kind, topic, token"
            )
        return [rows.token_from_row(row) for row in found]

    async def set_token_result(self, kind: str, topic: str, token: str, result: str, at: float) -> None:
        key = validation.token_key(kind, topic, token)
        validation.text("result", result, allow_empty=True)
        validation.timestamp("at", at)
        async with self._conn() as conn:
            await conn.execute(
                f"""UPDATE {self._tokens} SET last_result = $4, last_result_at = $5
                WHERE kind = $1 AND topic = $2 AND token = $3""",
                *key, result, float(at),
            )

    # signing keys ----------------------------------------------------------------------------
    async def put_signing_key(self, key: SigningKey) -> None:
        validation.signing_key(key)
        sealed = rows.seal_private_key(self._secrets(), key)
        async with self._conn() as conn:
            await conn.execute(
                f"""INSERT INTO {self._keys} ({rows.KEY_COLUMNS}) VALUES ($1, $2, $3)
                ON CONFLICT (kid) DO UPDATE SET private_pem_enc = excluded.private_pem_enc,
                    created_at = excluded.created_at""",
                key.kid, sealed, float(key.created_at or rows.now()),
            )

    async def list_signing_keys(self) -> list[SigningKey]:
        async with self._conn() as conn:
            found = await conn.fetch(f"SELECT {rows.KEY_COLUMNS} FROM {self._keys} ORDER BY created_at, kid")
        box = self._secrets()
        return [rows.key_from_row(box, row) for row in found]

    async def delete_signing_key(self, kid: str) -> None:
        validation.text("kid", kid)
        async with self._conn() as conn:
            await conn.execute(f"DELETE FROM {self._keys} WHERE kid = $1", kid)
