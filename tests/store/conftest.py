"""Fixtures running every store behaviour on SQLite (a tmp file) and on the machine's PostgreSQL.

PostgreSQL is found at 127.0.0.1:5432, database ``test``, trust auth (``MXPROXY_TEST_PG_DSN``
overrides). Where it is not reachable the PostgreSQL tests are skipped with the reason, except
under ``CI=true``, where a missing database is a failure rather than silently less coverage.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import getpass
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import pytest

from mxproxy.store import Store
from mxproxy.store.postgres import PostgresStore
from mxproxy.store.sqlite import SQLiteStore

TEST_KEY = "test store key"


def _pg_candidates() -> list[str]:
    if os.environ.get("MXPROXY_TEST_PG_DSN"):
        return [os.environ["MXPROXY_TEST_PG_DSN"]]
    users = ["postgres", getpass.getuser()]
    return [f"postgresql://{user}@127.0.0.1:5432/test" for user in dict.fromkeys(users)]


async def _probe(candidates: list[str]) -> tuple[str | None, str]:
    problems = []
    for dsn in candidates:
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
        except Exception as exc:  # any failure just means "not this one"
            problems.append(f"{dsn}: {type(exc).__name__}: {exc}")
            continue
        await conn.close()
        return dsn, ""
    return None, "; ".join(problems)


_probe_result: tuple[str | None, str] | None = None


def postgres_dsn() -> str:
    """The DSN of a reachable test PostgreSQL, else skip (or fail under CI=true)."""
    global _probe_result
    if _probe_result is None:
        # In a worker thread: the caller may already be inside a running event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _probe_result = pool.submit(asyncio.run, _probe(_pg_candidates())).result()
    dsn, problem = _probe_result
    if dsn is None:
        message = f"no PostgreSQL reachable for store tests ({problem})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    return dsn


def _to_dollar_params(sql: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@dataclass
class Backend:
    """One place to keep data (a SQLite file or a PostgreSQL schema) and ways to open it."""

    name: str
    sqlite_path: Path | None = None
    pg_dsn: str | None = None
    pg_schema: str | None = None
    opened: list[Store] = field(default_factory=list)

    def new_store(self, store_key: str | None = TEST_KEY) -> Store:
        if self.name == "sqlite":
            assert self.sqlite_path is not None
            return SQLiteStore(self.sqlite_path, store_key)
        assert self.pg_dsn is not None and self.pg_schema is not None
        return PostgresStore(self.pg_dsn, store_key, schema=self.pg_schema, min_size=1, max_size=5)

    async def open_store(self, store_key: str | None = TEST_KEY) -> Store:
        store = self.new_store(store_key)
        self.opened.append(store)
        await store.open()
        return store

    async def raw(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run SQL straight against the data, bypassing the store (``?`` placeholders)."""
        if self.name == "sqlite":
            import aiosqlite

            async with aiosqlite.connect(self.sqlite_path, isolation_level=None) as conn:
                async with conn.execute(sql, args) as cur:
                    return [tuple(r) for r in await cur.fetchall()]
        conn = await asyncpg.connect(self.pg_dsn, server_settings={"search_path": self.pg_schema or ""})
        try:
            return [tuple(r) for r in await conn.fetch(_to_dollar_params(sql), *args)]
        finally:
            await conn.close()

    async def close_all(self) -> None:
        for store in self.opened:
            await store.close()


@pytest.fixture
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    backend = Backend("sqlite", sqlite_path=tmp_path / "store.db")
    yield backend
    await backend.close_all()


@pytest.fixture
async def postgres_backend() -> AsyncIterator[Backend]:
    dsn = postgres_dsn()
    backend = Backend("postgres", pg_dsn=dsn, pg_schema=f"mxproxy_test_{secrets.token_hex(6)}")
    yield backend
    await backend.close_all()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{backend.pg_schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every test using this runs once per store implementation."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open_store()
