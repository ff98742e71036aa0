"""``mxproxy serve`` where the configured SQLite path holds MX Proxy 2.3's bbolt file."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from mxproxy.config import load_config
from mxproxy.server import ProxyServer, apply_overrides
from mxproxy.store import StoreError
from mxproxy.upgrade.takeover import sqlite_beside
from tests.test_server import ServeProcess
from tests.upgrade.conftest import fixture_db

# MX hosts of the fixtures are unreachable 10.x addresses: do not wait for their logins
QUICK = '[server]\nport = "127.0.0.1:0"\nadmin = "off"\n[mx]\nconnectTimeout = "1s"\nresumeWait = "10ms"\n'


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def start(config_path: Path, db: str | None = None) -> ProxyServer:
    server = ProxyServer(apply_overrides(load_config(config_path), None, None, db))
    await server.start()
    return server


@pytest.mark.parametrize(("bolt", "target"), [("mxproxy.db", "mxproxy.sqlite"), ("store", "store.sqlite"),
                                              ("x.sqlite", "x.sqlite.sqlite")])
def test_the_sqlite_file_is_named_beside_the_bbolt_file(bolt: str, target: str) -> None:
    assert sqlite_beside(Path("/db") / bolt) == Path("/db") / target


async def test_serve_imports_into_a_new_sqlite_file_and_keeps_the_bbolt_file(
        original_folder: Any, caplog: pytest.LogCaptureFixture) -> None:
    folder = original_folder("one-user", extra=QUICK)
    before = digest(folder / "mxproxy.db")
    caplog.set_level(logging.INFO)
    server = await start(folder / "mxproxy.toml")
    try:
        assert server.db == str(folder / "mxproxy.sqlite")
        assert [u.login for u in await server.store.list_users()] == ["dmitrys"]
        assert len(await server.store.list_tokens()) == 3
        assert server.sessions.state("dmitrys") != "absent"  # resumed like any stored user
    finally:
        await server.stop()
    assert digest(folder / "mxproxy.db") == before
    text = caplog.text
    assert "is MX Proxy 2.3's bbolt file; importing it into" in text and "users: 1 added" in text
    assert "kept unchanged as the backup" in text


async def test_a_later_start_uses_the_imported_store_without_importing_again(original_folder: Any) -> None:
    folder = original_folder("one-user", extra=QUICK)
    server = await start(folder / "mxproxy.toml")
    try:
        assert await server.store.delete_user("dmitrys")  # signed out after the upgrade
    finally:
        await server.stop()
    again = await start(folder / "mxproxy.toml")
    try:
        assert await again.store.list_users() == []  # not brought back from the bbolt file
    finally:
        await again.stop()


async def test_a_bbolt_file_given_with_db_is_taken_over_too(original_folder: Any, tmp_path: Path) -> None:
    folder = original_folder("one-user", extra=QUICK)
    elsewhere = tmp_path / "volume" / "mxproxy.db"  # like Docker's /db/mxproxy.db
    elsewhere.parent.mkdir()
    elsewhere.write_bytes((folder / "mxproxy.db").read_bytes())
    server = await start(folder / "mxproxy.toml", db=str(elsewhere))
    try:
        assert server.db == str(elsewhere.with_suffix(".sqlite"))
        assert [u.login for u in await server.store.list_users()] == ["dmitrys"]
    finally:
        await server.stop()


async def test_a_corrupt_bbolt_file_stops_start_up_with_a_message(original_folder: Any) -> None:
    folder = original_folder("many", extra=QUICK)
    (folder / "mxproxy.db").write_bytes(fixture_db("many").read_bytes()[:400_000])
    with pytest.raises(StoreError, match="corrupt bbolt file.*nothing was imported"):
        await start(folder / "mxproxy.toml")


async def test_serve_process_exits_1_naming_the_problem(original_folder: Any) -> None:
    folder = original_folder("one-user", extra=QUICK)
    (folder / "mxproxy.db").write_bytes(fixture_db("one-user").read_bytes()[:9000])
    proc = ServeProcess(folder / "mxproxy.toml")
    await proc.start()
    assert await proc.wait() == 1
    assert "corrupt bbolt file" in proc.stderr


async def test_a_credential_problem_is_reported_once_when_serve_imports(
        original_folder: Any, caplog: pytest.LogCaptureFixture) -> None:
    folder = original_folder("one-user", extra=QUICK)
    config = (folder / "mxproxy.toml").read_text().replace('"phone.p12" = "p12-secret"', '"phone.p12" = "wrong"')
    (folder / "mxproxy.toml").write_text(config)
    caplog.set_level(logging.INFO)
    server = await start(folder / "mxproxy.toml")
    try:
        imported = await server.store.list_tokens()
    finally:
        await server.stop()
    assert [t.kind for t in imported] == ["fcm"]  # no APNs credentials: those tokens were skipped
    assert len([r for r in caplog.records if "phone.p12" in r.getMessage() and r.levelno >= logging.ERROR]) == 1
