"""What only the PostgreSQL store does: a required key, schema isolation, connection failures."""

from __future__ import annotations

import socket

import pytest

from mxproxy.store import StoreError, StoreKeyError, UserRecord
from mxproxy.store.postgres import PostgresStore, redact_dsn

from .conftest import Backend


def closed_port() -> int:
    """A local port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_key_is_required() -> None:
    with pytest.raises(StoreKeyError, match="server.storeKey"):
        PostgresStore("postgresql://127.0.0.1/test", None)
    with pytest.raises(StoreKeyError):
        PostgresStore("postgresql://127.0.0.1/test", "")


def test_schema_name_must_be_a_plain_identifier() -> None:
    with pytest.raises(StoreError, match="schema name"):
        PostgresStore("postgresql://127.0.0.1/test", "k", schema='x"; DROP TABLE users; --')


async def test_unreachable_server_gives_a_clear_error_without_the_password() -> None:
    dsn = f"postgresql://mx:hunter2-secret@127.0.0.1:{closed_port()}/test"
    store = PostgresStore(dsn, "k", connect_timeout=3)
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as info:
        await store.open()
    assert "hunter2-secret" not in str(info.value)
    assert "127.0.0.1" in str(info.value)


async def test_unknown_database_gives_a_clear_error_without_the_password(postgres_backend: Backend) -> None:
    assert postgres_backend.pg_dsn is not None
    base = postgres_backend.pg_dsn.rsplit("/", 1)[0]
    dsn = base + "/no_such_database_for_mxproxy?password=hunter2-secret"
    with pytest.raises(StoreError, match="no_such_database_for_mxproxy") as info:
        await PostgresStore(dsn, "k", connect_timeout=3).open()
    assert "hunter2-secret" not in str(info.value)


def test_redact_dsn_hides_passwords_in_userinfo_and_query() -> None:
    assert redact_dsn("postgresql://u:p4ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_dsn("postgres://h/db?user=u&password=p4ss") == "postgres://h/db?user=u&password=***"
    assert "p4ss" not in redact_dsn("postgresql://u:p4ss@h/db?password=p4ss")


async def test_schemas_isolate_deployments(postgres_backend: Backend) -> None:
    store = await postgres_backend.open_store()
    await store.put_user(UserRecord("alice", "mx:7778", "alice", "pw"))
    other = Backend("postgres", pg_dsn=postgres_backend.pg_dsn, pg_schema=f"{postgres_backend.pg_schema}_b")
    try:
        other_store = await other.open_store()
        assert await other_store.list_users() == []
    finally:
        await other.close_all()
        await other.raw(f'DROP SCHEMA IF EXISTS "{other.pg_schema}" CASCADE')


async def test_lost_connection_surfaces_as_store_error_and_recovers(postgres_backend: Backend) -> None:
    store = await postgres_backend.open_store()
    assert isinstance(store, PostgresStore)
    await store.put_user(UserRecord("alice", "mx:7778", "alice", "pw"))
    # Kill the store's own server-side connection, as a database restart would.
    assert store._pool is not None
    async with store._pool.acquire() as conn:
        pid = conn.get_server_pid()
    await postgres_backend.raw("SELECT pg_terminate_backend(?)", pid)
    outcomes = []
    for _ in range(3):  # a call on the dead connection fails cleanly; the pool then reconnects
        try:
            outcomes.append((await store.get_user("alice")).password)  # type: ignore[union-attr]
        except StoreError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes[-1] == "pw"
    assert set(outcomes) <= {"pw", "StoreError"}
