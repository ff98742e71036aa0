"""Importing an MX Proxy 2.3 store: 10,000 users and 30,000 device tokens (target < 10 s).

    .venv/bin/python bench/import.py                 # SQLite, and PostgreSQL when reachable
    .venv/bin/python bench/import.py --no-postgres

The bbolt file is written by the real bbolt library (tests/upgrade/fixtures/makefixtures.go,
needs Go and the Debian package golang-github-coreos-bbolt-dev; made once into
bench/import-10k.db, ignored by git). Each run times the phases of ``mxproxy import-mxproxy``:
reading the bbolt file (every page checked), turning it into records, and the store's one-
transaction import (passwords encrypted). Baseline, same run, same machine: the fastest way the
platform writes the same rows — one ``executemany`` per table in one transaction with the
driver alone (sqlite3 / asyncpg), no checks, no encryption.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mxproxy.push.topics import PushTopics  # noqa: E402
from mxproxy.store import create_store  # noqa: E402
from mxproxy.upgrade.bbolt import read_bolt_file  # noqa: E402
from mxproxy.upgrade.importer import legacy_records  # noqa: E402

DB = ROOT / "bench" / "import-10k.db"
PROGRAM = ROOT / "tests" / "upgrade" / "fixtures" / "makefixtures.go"
BUNDLE = "com.example.phone"
TOPICS = PushTopics.of(apn=[(BUNDLE, False), (BUNDLE, True)], fcm=[BUNDLE])
STORE_KEY = "bench-store-key"
PG_DSN = os.environ.get("MXPROXY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def ensure_file() -> None:
    if DB.is_file():
        return
    if shutil.which("go") is None:
        sys.exit(f"{DB} is missing and Go is not installed: apt-get install golang-go golang-github-coreos-bbolt-dev")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
           "GOCACHE": str(Path(tempfile.gettempdir()) / "mxproxy-go-cache")}
    subprocess.run(["go", "run", str(PROGRAM), str(DB), "bench"], check=True, env=env, cwd=PROGRAM.parent)


async def store_import(db: str, users: tuple, tokens: tuple) -> float:
    store = create_store(db, STORE_KEY)
    await store.open()
    try:
        started = time.perf_counter()
        outcome = await store.import_records(users, tokens, source=str(DB))
        took = time.perf_counter() - started
    finally:
        await store.close()
    assert len(outcome.users_added) == len(users) and len(outcome.tokens_added) == len(tokens)
    return took


def sqlite_baseline(path: Path, users: tuple, tokens: tuple) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE u (login TEXT PRIMARY KEY, host TEXT, mx_login TEXT, password TEXT)")
    conn.execute("CREATE TABLE t (kind TEXT, topic TEXT, token TEXT, login TEXT, sandbox INTEGER, "
                 "PRIMARY KEY (kind, topic, token))")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO u VALUES (?, ?, ?, ?)", [(u.login, u.host, u.mx_login, u.password) for u in users])
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                     [(t.kind, t.topic, t.token, t.login, t.sandbox) for t in tokens])
    conn.execute("COMMIT")
    took = time.perf_counter() - started
    conn.close()
    return took


async def pg_database() -> str | None:
    import asyncpg

    name = f"mxproxy_bench_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except Exception as exc:  # noqa: BLE001 - just no PostgreSQL figure
        print(f"PostgreSQL not reachable ({exc}); skipping it")
        return None
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return PG_DSN.rsplit("/", 1)[0] + "/" + name


async def drop_database(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    await conn.close()


async def pg_baseline(dsn: str, users: tuple, tokens: tuple) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE u (login TEXT PRIMARY KEY, host TEXT, mx_login TEXT, password TEXT)")
    await conn.execute("CREATE TABLE t (kind TEXT, topic TEXT, token TEXT, login TEXT, sandbox BOOLEAN, "
                       "PRIMARY KEY (kind, topic, token))")
    started = time.perf_counter()
    async with conn.transaction():
        await conn.executemany("INSERT INTO u VALUES ($1, $2, $3, $4)",
                               [(u.login, u.host, u.mx_login, u.password) for u in users])
        await conn.executemany("INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
                               [(t.kind, t.topic, t.token, t.login, t.sandbox) for t in tokens])
    took = time.perf_counter() - started
    await conn.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    ensure_file()
    cpu0, t0 = time.process_time(), time.perf_counter()
    bolt = read_bolt_file(DB)
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    legacy = legacy_records(bolt, TOPICS)
    t_records = time.perf_counter() - t1
    users, tokens = legacy.users, legacy.tokens
    print(f"{DB.name}: {DB.stat().st_size / 2**20:.1f} MiB, page size {bolt.page_size}, {bolt.high_water} pages; "
          f"{len(users)} users, {len(tokens)} tokens, {len(legacy.skipped)} skipped")
    print(f"read bbolt (all pages checked): {t_read:.2f} s; records: {t_records:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        t_store = asyncio.run(store_import(str(Path(tmp) / "mxproxy.sqlite"), users, tokens))
        base = sqlite_baseline(Path(tmp) / "baseline.sqlite", users, tokens)
    total = t_read + t_records + t_store
    print(f"SQLite: store import {t_store:.2f} s (baseline executemany {base:.2f} s, {t_store / base:.1f} x); "
          f"whole import {total:.2f} s (CPU {time.process_time() - cpu0:.2f} s)")
    if not args.no_postgres:
        dsn = asyncio.run(pg_database())
        if dsn is not None:
            try:
                t_pg = asyncio.run(store_import(dsn, users, tokens))
                base_pg = asyncio.run(pg_baseline(dsn, users, tokens))
            finally:
                asyncio.run(drop_database(dsn))
            print(f"PostgreSQL: store import {t_pg:.2f} s (baseline executemany {base_pg:.2f} s, "
                  f"{t_pg / base_pg:.1f} x); whole import {t_read + t_records + t_pg:.2f} s")


if __name__ == "__main__":
    main()
