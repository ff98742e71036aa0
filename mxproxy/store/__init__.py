"""Storage: the contract (base) and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from mxproxy.store.base import (
    DeviceToken,
    ImportOutcome,
    InvalidRecord,
    SigningKey,
    Store,
    StoreError,
    UserRecord,
)
from mxproxy.store.crypto import CorruptRecord, StoreKeyError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_DB = "mxproxy.db"

__all__ = [
    "CorruptRecord",
    "DeviceToken",
    "ImportOutcome",
    "InvalidRecord",
    "SigningKey",
    "Store",
    "StoreError",
    "StoreKeyError",
    "UserRecord",
    "create_store",
    "describe_store",
    "is_postgres_url",
]


def is_postgres_url(db: str) -> bool:
    return db.lower().startswith(POSTGRES_SCHEMES)


def describe_store(db: str, base_dir: Path | None = None) -> str:
    """Which store ``db`` names, for the start line: ``SQLite /abs/path.db`` or
    ``PostgreSQL host:port/database`` (user and password never shown)."""
    db = db or DEFAULT_DB
    if is_postgres_url(db):
        parts = urlsplit(db)
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        try:
            port = parts.port or 5432
        except ValueError:
            port = 5432
        return f"PostgreSQL {host}:{port}/{parts.path.lstrip('/') or '(default database)'}"
    path = Path(db).expanduser()
    if db != ":memory:" and not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return f"SQLite {path}"


def create_store(db: str, store_key: str | None, *, base_dir: Path | None = None) -> Store:
    """The store named by ``server.db`` (not yet opened; call ``await store.open()``).

    A ``postgresql://`` or ``postgres://`` URL selects PostgreSQL (a store key is then required);
    anything else is a SQLite file path, relative to ``base_dir`` (the config file's folder) when
    given, or ``:memory:`` for a throw-away store.
    """
    db = db or DEFAULT_DB
    if is_postgres_url(db):
        from mxproxy.store.postgres import PostgresStore

        return PostgresStore(db, store_key)
    from mxproxy.store.sqlite import MEMORY, SQLiteStore

    if db == MEMORY:
        return SQLiteStore(MEMORY, store_key)
    path = Path(db).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return SQLiteStore(path, store_key)
