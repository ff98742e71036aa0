"""Shared fixtures for the sign-in tests: an injectable clock and real stores (a SQLite file;
for the multi-instance tests also a throw-away schema on the machine's PostgreSQL)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from mxproxy.store import create_store
from mxproxy.store.base import Store
from mxproxy.store.postgres import PostgresStore
from tests.store.conftest import postgres_dsn

START = 1_700_000_000.0


class FakeClock:
    """Wall clock the tests move by hand (KeyRing/TokenService take ``clock=``)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


StoreFactory = Callable[[], Awaitable[Store]]


async def _opening(make: Callable[[], Store]) -> AsyncIterator[StoreFactory]:
    """A factory that opens a new store from ``make`` per call; all are closed afterwards."""
    opened: list[Store] = []

    async def factory() -> Store:
        store = make()
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def open_store(tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens stores on one SQLite file: each call is a separate connection, as a restarted
    process or a second instance would have."""
    async for factory in _opening(lambda: create_store(str(tmp_path / "t.db"), "test-key")):
        yield factory


@pytest.fixture
async def store(open_store: StoreFactory) -> Store:
    return await open_store()


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Like ``open_store``, on each backend several proxy instances may share."""
    if request.param == "sqlite":
        async for factory in _opening(lambda: create_store(str(tmp_path / "t.db"), "test-key")):
            yield factory
        return
    dsn = postgres_dsn()
    schema = f"mxproxy_auth_test_{secrets.token_hex(6)}"
    async for factory in _opening(lambda: PostgresStore(dsn, "test-key", schema=schema, min_size=1, max_size=3)):
        yield factory
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
