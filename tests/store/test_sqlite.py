"""What only the SQLite store does: the generated key file, WAL mode, file-level failures."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import aiosqlite
import pytest

from mxproxy.store import StoreError, StoreKeyError, UserRecord
from mxproxy.store.sqlite import SQLiteStore

ALICE = UserRecord("alice", "mx:7778", "alice", "pw")


async def test_without_a_key_a_private_key_file_is_generated_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "proxy.db"
    caplog.set_level(logging.WARNING, logger="mxproxy.store")
    store = SQLiteStore(db, None)
    await store.open()
    await store.put_user(ALICE)
    await store.close()

    key_file = tmp_path / "proxy.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    warnings = [r for r in caplog.records if "storeKey" in r.getMessage()]
    assert len(warnings) == 1 and str(key_file) in warnings[0].getMessage()
    assert key_file.read_text().strip() not in caplog.text

    store = SQLiteStore(db, None)
    await store.open()
    assert (await store.get_user("alice")).password == "pw"  # type: ignore[union-attr]
    await store.close()
    assert len([r for r in caplog.records if "storeKey" in r.getMessage()]) == 1  # warned once


async def test_configured_key_on_a_key_file_database_is_refused_with_a_hint(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    store = SQLiteStore(db, None)
    await store.open()
    await store.close()
    with pytest.raises(StoreKeyError, match="proxy.db.key"):
        await SQLiteStore(db, "a configured key").open()


async def test_lost_key_file_is_refused_rather_than_read_as_garbage(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    store = SQLiteStore(db, None)
    await store.open()
    await store.put_user(ALICE)
    await store.close()
    (tmp_path / "proxy.db.key").unlink()
    with pytest.raises(StoreKeyError, match="does not match"):
        await SQLiteStore(db, None).open()


async def test_a_file_that_is_not_sqlite_is_refused_without_writing_a_key_file(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    db.write_bytes(b"not a database, just text\n" * 200)
    with pytest.raises(StoreError):
        await SQLiteStore(db, None).open()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy.db"]
    assert db.read_bytes() == b"not a database, just text\n" * 200


async def test_concurrent_first_opens_without_a_key_share_one_key_file(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    stores = [SQLiteStore(db, None) for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].put_user(ALICE)
        for other in stores[1:]:
            assert (await other.get_user("alice")).password == "pw"  # type: ignore[union-attr]
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    finally:
        for s in stores:
            await s.close()


async def test_uses_wal_and_enforces_foreign_keys(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    store = SQLiteStore(db, "k")
    await store.open()
    try:
        async with aiosqlite.connect(db) as raw:
            async with raw.execute("PRAGMA journal_mode") as cur:
                assert (await cur.fetchone())[0] == "wal"  # type: ignore[index]
        async with store._locked() as conn:  # the store's own connection settings
            async with conn.execute("PRAGMA foreign_keys") as cur:
                assert (await cur.fetchone())[0] == 1  # type: ignore[index]
            async with conn.execute("PRAGMA synchronous") as cur:
                assert (await cur.fetchone())[0] == 1  # type: ignore[index]  # NORMAL
    finally:
        await store.close()


async def test_memory_store_works_without_a_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore(":memory:", None)
    await store.open()
    await store.put_user(ALICE)
    assert (await store.get_user("alice")).password == "pw"  # type: ignore[union-attr]
    await store.close()
    assert list(tmp_path.iterdir()) == []


async def test_file_that_is_not_a_database_gets_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "proxy.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        await SQLiteStore(db, "k").open()


async def test_missing_folder_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await SQLiteStore(tmp_path / "nope" / "proxy.db", "k").open()


async def test_a_second_process_style_connection_can_read_while_the_store_writes(tmp_path: Path) -> None:
    """WAL lets another connection (another proxy tool, a backup) read the file meanwhile."""
    db = tmp_path / "proxy.db"
    writer = SQLiteStore(db, "k")
    reader = SQLiteStore(db, "k")
    await writer.open()
    await reader.open()
    try:
        await asyncio.gather(*(writer.put_user(UserRecord(f"u{i}", "mx:1", f"u{i}", "pw")) for i in range(20)),
                             *(reader.list_users() for _ in range(20)))
        assert len(await reader.list_users()) == 20
    finally:
        await writer.close()
        await reader.close()


async def test_token_reads_are_direct_and_see_at_once_what_another_connection_committed(tmp_path: Path) -> None:
    """The push path's read of a user's tokens runs on the event loop (issue 14: no thread
    hand-over), uncached: a token registered or deleted through another connection to the file
    (another process, the CLI) is seen by the very next read."""
    from mxproxy.store import DeviceToken

    db = tmp_path / "proxy.db"
    serving, other = SQLiteStore(db, None), SQLiteStore(db, None)
    await serving.open()
    await other.open()
    try:
        await serving.put_user(ALICE)
        await serving.put_token(DeviceToken("apn", "com.example", "phone-1", "alice"))
        assert [t.token for t in await serving.tokens_for_user("alice")] == ["phone-1"]

        await other.put_token(DeviceToken("fcm", "com.example", "tablet-1", "alice"))
        read = serving.tokens_for_user("alice")
        with pytest.raises(StopIteration) as answered:  # finished without waiting for anything
            read.send(None)
        assert [t.token for t in answered.value.value] == ["phone-1", "tablet-1"]

        assert await other.delete_token("apn", "com.example", "phone-1")
        await other.set_token_result("fcm", "com.example", "tablet-1", "ok", 1_700_000_000.0)
        [left] = await serving.tokens_for_user("alice")
        assert (left.token, left.last_result, left.last_result_at) == ("tablet-1", "ok", 1_700_000_000.0)
    finally:
        await other.close()
        await serving.close()
    with pytest.raises(StoreError, match="not open"):
        await serving.tokens_for_user("alice")
