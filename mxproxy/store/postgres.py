"""The shared store for several proxy instances: PostgreSQL through an asyncpg pool.

All tables live in one schema (``mxproxy`` by default), so a database can host other things and
tests can isolate themselves in a throw-away schema. A store key is required: unlike the SQLite
fallback there is no safe place beside the data to keep a generated one.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg

from mxproxy.store.base import StoreError
from mxproxy.store.crypto import SecretBox, StoreKeyError, open_secret_box
from mxproxy.store.migrations import migrate_postgres
from mxproxy.store.sql import SQLStore, Transaction, dollar_params

SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

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


class PostgresStore(SQLStore):
    """Users, device tokens and signing keys in PostgreSQL, safe to share between processes."""

    _lock_row = " FOR UPDATE"
    _skip_locked = " FOR UPDATE OF c SKIP LOCKED"
    _json_id_status = ("SELECT (j.value->>0)::bigint AS id, (j.value->>1)::integer AS status "
                       "FROM jsonb_array_elements(?::jsonb) AS j(value)")
    _delivered_cte = """WITH done AS (
            UPDATE {d} SET state = 'delivered', attempts = {d}.attempts + 1, last_status = r.status,
                last_error = NULL, claimed_by = NULL, claim_expires_at = NULL, delivered_at = {now}
            FROM ({pairs}) AS r
            WHERE {d}.id = r.id AND {d}.claimed_by = ? AND {d}.state = 'delivering'
            RETURNING {d}.id AS id, {d}.webhook_id AS webhook_id),
        counted AS (
            UPDATE {w} SET consecutive_failures = 0, total_delivered = {w}.total_delivered + c.n,
                last_success_at = {now}
            FROM (SELECT webhook_id, COUNT(*) AS n FROM done GROUP BY webhook_id) AS c WHERE {w}.id = c.webhook_id)
        SELECT id FROM done"""
    _foreign_key_errors = (asyncpg.ForeignKeyViolationError,)
    shared = True
    _now = "(EXTRACT(EPOCH FROM clock_timestamp())::double precision)"
    _json_pairs = "SELECT j.value->>0 AS login, j.value->>1 AS successor FROM jsonb_array_elements(?::jsonb) AS j(value)"
    _json_texts = "SELECT j.value AS value FROM jsonb_array_elements_text(?::jsonb) AS j(value)"

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
        self._instances = f"{s}.cluster_instances"
        self._leases = f"{s}.user_leases"
        self._claims = f"{s}.push_claims"
        self._generations = f"{s}.token_generations"
        self._webhooks = f"{s}.webhooks"
        self._deliveries = f"{s}.webhook_deliveries"

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
        except (asyncpg.PostgresError, *CONNECTION_ERRORS) as exc:
            raise StoreError(f"PostgreSQL store at {self.where}: {self._describe(exc)}") from None

    async def _one(self, sql: str, *params: Any) -> asyncpg.Record | None:
        async with self._conn() as conn:
            return await _Statements(conn).one(sql, *params)

    async def _all(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        async with self._conn() as conn:
            return await _Statements(conn).all(sql, *params)

    async def _run(self, sql: str, *params: Any) -> int:
        async with self._conn() as conn:
            return await _Statements(conn).run(sql, *params)

    async def _atomic_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """asyncpg's executemany is atomic: no BEGIN/COMMIT round trips around it."""
        async with self._conn() as conn:
            await _Statements(conn).many(sql, params)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self._conn() as conn:
            async with conn.transaction():
                yield _Statements(conn)


class _Statements(Transaction):
    """``?`` statements on one connection (inside a transaction or not)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def one(self, sql: str, *params: Any) -> asyncpg.Record | None:
        return await self._conn.fetchrow(dollar_params(sql), *params)

    async def all(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return list(await self._conn.fetch(dollar_params(sql), *params))

    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        if params:
            await self._conn.executemany(dollar_params(sql), params)

    async def run(self, sql: str, *params: Any) -> int:
        """Rows touched, from the command tag such as ``DELETE 1`` or ``INSERT 0 1``."""
        status = await self._conn.execute(dollar_params(sql), *params)
        try:
            return int(status.rsplit(" ", 1)[-1])
        except ValueError:
            return 0
