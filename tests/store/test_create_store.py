"""create_store picks the implementation from server.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from mxproxy.store import StoreKeyError, create_store
from mxproxy.store.postgres import PostgresStore
from mxproxy.store.sqlite import SQLiteStore


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1/test", "postgres://u@127.0.0.1/test", "PostgreSQL://h/db"])
def test_postgres_urls_select_postgres(url: str) -> None:
    assert isinstance(create_store(url, "key"), PostgresStore)


def test_postgres_without_a_key_is_refused_at_creation() -> None:
    with pytest.raises(StoreKeyError, match="storeKey"):
        create_store("postgresql://u@127.0.0.1/test", None)


def test_relative_sqlite_path_is_resolved_against_base_dir(tmp_path: Path) -> None:
    store = create_store("data/proxy.db", None, base_dir=tmp_path)
    assert isinstance(store, SQLiteStore) and store.path == str(tmp_path / "data" / "proxy.db")
    absolute = create_store(str(tmp_path / "x.db"), None, base_dir=Path("/elsewhere"))
    assert isinstance(absolute, SQLiteStore) and absolute.path == str(tmp_path / "x.db")


def test_defaults_and_memory() -> None:
    assert create_store("", None).path == "mxproxy.db"  # type: ignore[attr-defined]
    memory = create_store(":memory:", None, base_dir=Path("/elsewhere"))
    assert isinstance(memory, SQLiteStore) and memory.in_memory


async def test_created_sqlite_store_opens_and_works(tmp_path: Path) -> None:
    store = create_store("proxy.db", "key", base_dir=tmp_path)
    await store.open()
    try:
        await store.ping()
    finally:
        await store.close()
    assert (tmp_path / "proxy.db").exists()
