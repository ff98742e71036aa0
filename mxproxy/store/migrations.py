"""Versioned schema migrations for both dialects.

Each step has a version, a description and its SQL for SQLite and PostgreSQL. ``schema_version``
records one row per applied step. Applying is idempotent and runs under a lock, so two processes
starting at once neither fail nor apply a step twice: SQLite takes the write lock with
``BEGIN IMMEDIATE``, PostgreSQL a transaction-scoped advisory lock keyed by the schema name. DDL is
transactional in both, so a failed step leaves the previous version intact.

To change the schema, append a step; never edit a released one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import aiosqlite
import asyncpg

from mxproxy.store.base import StoreError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]  # "{s}" is replaced by the quoted schema name


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="users, device tokens, signing keys, store metadata",
        sqlite=(
            """CREATE TABLE store_meta (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
            """CREATE TABLE users (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                host TEXT NOT NULL,
                mx_login TEXT NOT NULL,
                password_enc TEXT NOT NULL,
                needs_reauth INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE device_tokens (
                kind TEXT NOT NULL CHECK (kind IN ('apn', 'fcm')),
                topic TEXT NOT NULL,
                token TEXT NOT NULL,
                login TEXT NOT NULL REFERENCES users (login) ON DELETE CASCADE,
                sandbox INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                last_result TEXT,
                last_result_at REAL,
                PRIMARY KEY (kind, topic, token)
            )""",
            "CREATE INDEX device_tokens_by_login ON device_tokens (login)",
            """CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY CHECK (kid <> ''),
                private_pem_enc TEXT NOT NULL,
                created_at REAL NOT NULL
            )""",
        ),
        postgres=(
            """CREATE TABLE {s}.store_meta (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
            """CREATE TABLE {s}.users (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                host TEXT NOT NULL,
                mx_login TEXT NOT NULL,
                password_enc TEXT NOT NULL,
                needs_reauth BOOLEAN NOT NULL DEFAULT FALSE,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE {s}.device_tokens (
                kind TEXT NOT NULL CHECK (kind IN ('apn', 'fcm')),
                topic TEXT NOT NULL,
                token TEXT NOT NULL,
                login TEXT NOT NULL REFERENCES {s}.users (login) ON DELETE CASCADE,
                sandbox BOOLEAN NOT NULL DEFAULT FALSE,
                created_at DOUBLE PRECISION NOT NULL,
                last_result TEXT,
                last_result_at DOUBLE PRECISION,
                PRIMARY KEY (kind, topic, token)
            )""",
            "CREATE INDEX device_tokens_by_login ON {s}.device_tokens (login)",
            """CREATE TABLE {s}.signing_keys (
                kid TEXT PRIMARY KEY CHECK (kid <> ''),
                private_pem_enc TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        version=2,
        description="users.sign_in_name: the name typed at sign-in, so the admin API accepts it",
        sqlite=(
            "ALTER TABLE users ADD COLUMN sign_in_name TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX users_by_sign_in_name ON users (lower(sign_in_name))",
        ),
        postgres=(
            "ALTER TABLE {s}.users ADD COLUMN sign_in_name TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX users_by_sign_in_name ON {s}.users (lower(sign_in_name))",
        ),
    ),
    Migration(
        version=3,
        description="cluster: instance membership, per-user leases, cluster-wide push claims",
        sqlite=(
            """CREATE TABLE cluster_instances (
                id TEXT PRIMARY KEY CHECK (id <> ''),
                url TEXT NOT NULL,
                started_at REAL NOT NULL,
                heartbeat_at REAL NOT NULL,
                leaving INTEGER NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE user_leases (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                instance TEXT NOT NULL,
                epoch INTEGER NOT NULL,
                expires_at REAL NOT NULL,
                successor TEXT,
                previous TEXT,
                changed_at REAL NOT NULL
            )""",
            "CREATE INDEX user_leases_by_instance ON user_leases (instance)",
            """CREATE TABLE push_claims (
                login TEXT NOT NULL,
                item TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                claimed_at REAL NOT NULL,
                PRIMARY KEY (login, item)
            )""",
        ),
        postgres=(
            """CREATE TABLE {s}.cluster_instances (
                id TEXT PRIMARY KEY CHECK (id <> ''),
                url TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                heartbeat_at DOUBLE PRECISION NOT NULL,
                leaving BOOLEAN NOT NULL DEFAULT FALSE
            )""",
            """CREATE TABLE {s}.user_leases (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                instance TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                successor TEXT,
                previous TEXT,
                changed_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX user_leases_by_instance ON {s}.user_leases (instance)",
            """CREATE TABLE {s}.push_claims (
                login TEXT NOT NULL,
                item TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                claimed_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (login, item)
            )""",
        ),
    ),
    Migration(
        version=4,
        description="token_generations: per-user JWT generation, bumped at sign-out (kept when the user is deleted)",
        sqlite=(
            """CREATE TABLE token_generations (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                generation INTEGER NOT NULL CHECK (generation > 0),
                revoked_at REAL NOT NULL
            )""",
        ),
        postgres=(
            """CREATE TABLE {s}.token_generations (
                login TEXT PRIMARY KEY CHECK (login <> ''),
                generation BIGINT NOT NULL CHECK (generation > 0),
                revoked_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        version=5,
        description="webhooks: subscriptions and the outbox of their deliveries",
        sqlite=(
            """CREATE TABLE webhooks (
                id TEXT PRIMARY KEY CHECK (id <> ''),
                url TEXT NOT NULL CHECK (url <> ''),
                events TEXT NOT NULL,
                users TEXT,
                secret_enc TEXT NOT NULL,
                enabled INTEGER NOT NULL,
                disabled_reason TEXT,
                disabled_at REAL,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                total_failures BIGINT NOT NULL DEFAULT 0,
                total_delivered BIGINT NOT NULL DEFAULT 0,
                last_success_at REAL,
                last_failure_at REAL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            """CREATE TABLE webhook_deliveries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                login TEXT NOT NULL,
                event_id BIGINT NOT NULL,
                event_type TEXT NOT NULL,
                transition TEXT,
                ordering_key TEXT NOT NULL,
                message_id TEXT NOT NULL,
                payload BLOB NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL NOT NULL,
                retry_from REAL NOT NULL,
                claimed_by TEXT,
                claim_expires_at REAL,
                last_status INTEGER,
                last_error TEXT,
                event_time REAL NOT NULL,
                created_at REAL NOT NULL,
                delivered_at REAL
            )""",
            "CREATE UNIQUE INDEX webhook_deliveries_per_event ON webhook_deliveries (webhook_id, login, event_id)",
            """CREATE UNIQUE INDEX webhook_deliveries_per_transition
                ON webhook_deliveries (webhook_id, login, event_type, transition) WHERE transition IS NOT NULL""",
            """CREATE INDEX webhook_deliveries_open ON webhook_deliveries (webhook_id, ordering_key, event_id)
                WHERE state IN ('pending', 'delivering')""",
            """CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
                WHERE state IN ('pending', 'delivering')""",
            "CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (webhook_id, state, id)",
        ),
        postgres=(
            """CREATE TABLE {s}.webhooks (
                id TEXT PRIMARY KEY CHECK (id <> ''),
                url TEXT NOT NULL CHECK (url <> ''),
                events TEXT NOT NULL,
                users TEXT,
                secret_enc TEXT NOT NULL,
                enabled BOOLEAN NOT NULL,
                disabled_reason TEXT,
                disabled_at DOUBLE PRECISION,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                total_failures BIGINT NOT NULL DEFAULT 0,
                total_delivered BIGINT NOT NULL DEFAULT 0,
                last_success_at DOUBLE PRECISION,
                last_failure_at DOUBLE PRECISION,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE {s}.webhook_deliveries (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                webhook_id TEXT NOT NULL REFERENCES {s}.webhooks (id) ON DELETE CASCADE,
                login TEXT NOT NULL,
                event_id BIGINT NOT NULL,
                event_type TEXT NOT NULL,
                transition TEXT,
                ordering_key TEXT NOT NULL,
                message_id TEXT NOT NULL,
                payload BYTEA NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                retry_from DOUBLE PRECISION NOT NULL,
                claimed_by TEXT,
                claim_expires_at DOUBLE PRECISION,
                last_status INTEGER,
                last_error TEXT,
                event_time DOUBLE PRECISION NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                delivered_at DOUBLE PRECISION
            )""",
            "CREATE UNIQUE INDEX webhook_deliveries_per_event ON {s}.webhook_deliveries (webhook_id, login, event_id)",
            """CREATE UNIQUE INDEX webhook_deliveries_per_transition
                ON {s}.webhook_deliveries (webhook_id, login, event_type, transition) WHERE transition IS NOT NULL""",
            """CREATE INDEX webhook_deliveries_open ON {s}.webhook_deliveries (webhook_id, ordering_key, event_id)
                WHERE state IN ('pending', 'delivering')""",
            """CREATE INDEX webhook_deliveries_due ON {s}.webhook_deliveries (next_attempt_at)
                WHERE state IN ('pending', 'delivering')""",
            "CREATE INDEX webhook_deliveries_listing ON {s}.webhook_deliveries (webhook_id, state, id)",
        ),
    ),
    Migration(
        version=6,
        description="cluster: the process holding an instance id; push claims record claimer, message and sending",
        sqlite=(
            "ALTER TABLE cluster_instances ADD COLUMN holder TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE push_claims ADD COLUMN instance TEXT",
            "ALTER TABLE push_claims ADD COLUMN epoch INTEGER",
            "ALTER TABLE push_claims ADD COLUMN message TEXT",
            "ALTER TABLE push_claims ADD COLUMN sent_at REAL",
        ),
        postgres=(
            "ALTER TABLE {s}.cluster_instances ADD COLUMN holder TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE {s}.push_claims ADD COLUMN instance TEXT",
            "ALTER TABLE {s}.push_claims ADD COLUMN epoch BIGINT",
            "ALTER TABLE {s}.push_claims ADD COLUMN message TEXT",
            "ALTER TABLE {s}.push_claims ADD COLUMN sent_at DOUBLE PRECISION",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def _check_known(current: int) -> None:
    if current > LATEST_VERSION:
        raise StoreError(
            f"the store's schema is at version {current}, newer than this mxproxy supports "
            f"({LATEST_VERSION}); upgrade mxproxy or use a backup made for this version"
        )


async def migrate_sqlite(conn: aiosqlite.Connection) -> int:
    """Bring a SQLite database to LATEST_VERSION; returns how many steps were applied.

    The connection must be in autocommit mode (isolation_level=None).
    """
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at REAL NOT NULL
            )"""
        )
        async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        _check_known(current)
        applied = 0
        for step in MIGRATIONS:
            if step.version <= current:
                continue
            for sql in step.sqlite:
                await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (step.version, step.description, time.time()),
            )
            applied += 1
        await conn.execute("COMMIT")
        return applied
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


def advisory_lock_id(schema: str) -> int:
    """A stable signed 64-bit id for pg_advisory_xact_lock, one per schema."""
    digest = hashlib.sha256(f"mxproxy.store.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate_postgres(conn: asyncpg.Connection, schema: str, quoted_schema: str) -> int:
    """Bring a PostgreSQL schema to LATEST_VERSION; returns how many steps were applied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_lock_id(schema))
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when it exists.
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema):
            await conn.execute(f"CREATE SCHEMA {quoted_schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {quoted_schema}.schema_version (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at DOUBLE PRECISION NOT NULL
            )"""
        )
        current = int(await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {quoted_schema}.schema_version"))
        _check_known(current)
        applied = 0
        for step in MIGRATIONS:
            if step.version <= current:
                continue
            for sql in step.postgres:
                await conn.execute(sql.replace("{s}", quoted_schema))
            await conn.execute(
                f"INSERT INTO {quoted_schema}.schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
                step.version,
                step.description,
                time.time(),
            )
            applied += 1
        return applied
