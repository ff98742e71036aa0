"""``mxproxy import-mxproxy`` on an MX Proxy 2.3 folder, into SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import asyncpg
import pytest

from mxproxy.cli import main
from mxproxy.store import create_store
from tests.store.conftest import postgres_dsn
from tests.upgrade.conftest import BUNDLE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(["import-mxproxy", *argv])
    out, err = capsys.readouterr()
    return int(stopped.value.code or 0), out, err


@pytest.fixture(autouse=True)
def _no_db_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DB", raising=False)
    monkeypatch.delenv("MXPROXY_STORE_KEY", raising=False)


def _stored(db: str | Path, key: str | None = None) -> tuple[list[Any], list[Any]]:
    async def read() -> tuple[list[Any], list[Any]]:
        store = create_store(str(db), key)
        await store.open()
        try:
            return await store.list_users(), await store.list_tokens()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A throw-away database (the CLI uses the store's default schema, so not a shared one)."""
    dsn = postgres_dsn()
    name = f"mxproxy_import_{secrets.token_hex(6)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield dsn.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_in_the_original_folder_imports_beside_the_bbolt_file(
        original_folder: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = original_folder("one-user")
    monkeypatch.chdir(folder)
    before = hashlib.sha256((folder / "mxproxy.db").read_bytes()).hexdigest()
    code, out, _ = run(capsys)
    assert code == 0
    assert f"into {folder / 'mxproxy.sqlite'}" in out and "users: 1 added" in out and "tokens: 3 added" in out
    users, tokens = _stored(folder / "mxproxy.sqlite")
    assert [u.login for u in users] == ["dmitrys"] and len(tokens) == 3
    assert hashlib.sha256((folder / "mxproxy.db").read_bytes()).hexdigest() == before
    code, out, _ = run(capsys)
    assert code == 0 and "users: 0 added, 1 already there" in out and "nothing changed" in out


def test_dry_run_reports_and_writes_nothing(original_folder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    folder = original_folder("messy")
    code, out, _ = run(capsys, "--config", str(folder / "mxproxy.toml"), "--dry-run")
    assert code == 0 and "dry run: nothing was written" in out
    assert "users: 2 added" in out and "tokens: 2 added" in out and "skipped: 11" in out
    assert 'user "badjson": malformed JSON' in out and 'its user "ghost" is not in the users bucket' in out
    users, _ = _stored(folder / "mxproxy.sqlite")
    assert users == []


def test_explicit_source_and_target(original_folder: Any, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    folder = original_folder("many")
    target = tmp_path / "new" / "store.db"
    target.parent.mkdir()
    code, out, _ = run(capsys, "--from-db", str(folder / "mxproxy.db"), "--config", str(folder / "mxproxy.toml"),
                       "--db", str(target))
    assert code == 0, out
    users, tokens = _stored(target)
    assert len(users) == 1000 and len(tokens) == 5000
    assert {t.topic for t in tokens} == {BUNDLE}


def test_into_postgresql(original_folder: Any, capsys: pytest.CaptureFixture[str], pg_database: str) -> None:
    folder = original_folder("one-user", extra='[server]\nstoreKey = "test store key"\n')
    code, out, err = run(capsys, "--config", str(folder / "mxproxy.toml"), "--db", pg_database)
    assert code == 0, err
    assert "users: 1 added" in out and "tokens: 3 added" in out
    users, tokens = _stored(pg_database, "test store key")
    assert [u.password for u in users] == ["pass3050"] and len(tokens) == 3
    code, out, _ = run(capsys, "--config", str(folder / "mxproxy.toml"), "--db", pg_database)
    assert code == 0 and "nothing changed" in out


def test_postgresql_without_a_store_key_is_refused(original_folder: Any, capsys: pytest.CaptureFixture[str],
                                                   pg_database: str) -> None:
    folder = original_folder("one-user")
    code, _, err = run(capsys, "--config", str(folder / "mxproxy.toml"), "--db", pg_database)
    assert code == 1 and "store key" in err


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda d: d[:5000], "corrupt bbolt file"), (lambda d: b"", "empty"), (lambda d: b"x" * 9000, "not a bbolt")],
)
def test_an_unreadable_file_is_refused_and_nothing_imported(
        original_folder: Any, capsys: pytest.CaptureFixture[str], damage: Any, message: str) -> None:
    folder = original_folder("one-user")
    source = folder / "old.db"
    source.write_bytes(damage((folder / "mxproxy.db").read_bytes()))
    code, _, err = run(capsys, "--from-db", str(source), "--config", str(folder / "mxproxy.toml"))
    assert code == 1 and message in err and "nothing was imported" in err
    users, _ = _stored(folder / "mxproxy.sqlite")
    assert users == []


def test_no_source_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mxproxy.toml").write_text('[apps]\nc = "s"\n')
    code, _, err = run(capsys, "--config", str(tmp_path / "mxproxy.toml"))
    assert code == 2 and "--from-db" in err
    assert not os.path.exists(tmp_path / "mxproxy.db")
