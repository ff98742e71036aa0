"""Storage: the contract (base) and its SQLite and PostgreSQL implementations."""

from __future__ import annotations

from pathlib import Path

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
    "is_postgres_url",
]


def is_postgres_url(db: str) -> bool:
    return db.lower().startswith(POSTGRES_SCHEMES)


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
