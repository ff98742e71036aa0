"""The bbolt reader against files the real bbolt library wrote, and its refusals."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import struct
from pathlib import Path

import pytest

from mxproxy.upgrade.bbolt import (
    BoltError,
    BoltFileInUse,
    CorruptBoltFile,
    NotABoltFile,
    UnsupportedBoltFile,
    fnv1a_64,
    looks_like_bolt_file,
    parse_bolt,
    read_bolt_file,
)
from tests.upgrade.conftest import FIXTURES, fixture_db

META = 16  # the meta struct follows the page header


@pytest.mark.parametrize(
    ("name", "users", "tokens", "page_size"),
    [("empty", 0, 0, 4096), ("one-user", 1, 3, 4096), ("many", 1000, 5000, 4096),
     ("page16k", 300, 300, 16384), ("nofreelist", 1, 0, 4096), ("e2e", 3, 6, 4096)],
)
def test_reads_what_bbolt_wrote(name: str, users: int, tokens: int, page_size: int) -> None:
    bolt = read_bolt_file(fixture_db(name))
    assert bolt.page_size == page_size
    assert bolt.byte_order == "little"
    assert len(bolt.bucket("users").items) == users
    assert len(bolt.bucket("tokens").items) == tokens


def test_a_file_written_on_a_big_endian_machine_reads_the_same() -> None:
    """one-user-s390x.db: makefixtures.go built for s390x and run under qemu (see its header)."""
    big = read_bolt_file(fixture_db("one-user-s390x"))
    little = read_bolt_file(fixture_db("one-user"))
    assert (big.byte_order, little.byte_order) == ("big", "little")
    assert big.root == little.root


def test_user_values_are_the_originals_json() -> None:
    bolt = read_bolt_file(fixture_db("one-user"))
    assert json.loads(bolt.bucket("users").items[b"dmitrys"]) == {
        "host": "10.0.0.1:7778", "login": "dmitrys", "password": "pass3050"}
    assert set(bolt.bucket("tokens").items.values()) == {b"dmitrys"}


def test_large_file_spans_branch_and_overflow_pages_and_has_a_freelist() -> None:
    bolt = read_bolt_file(fixture_db("many"))
    assert bolt.pages["branch"] > 1 and bolt.pages["overflow"] >= 1
    assert bolt.freelist and len(bolt.freelist) > 10
    users = bolt.bucket("users").items
    assert sorted(users) == [f"user{i:04d}".encode() for i in range(1000)]  # deleted ones are gone
    assert len(users[b"user0007"]) > bolt.page_size  # the value on the overflow page, whole
    assert json.loads(users[b"user0007"])["password"] == "pw-0007"


def test_nested_inline_and_paged_buckets() -> None:
    bolt = read_bolt_file(fixture_db("nested"))
    inline = bolt.bucket("users").buckets[b"inline-child"]
    assert inline.items == {b"k": b"v"}
    assert inline.buckets[b"grandchild"].items == {b"deep": b"value"}
    large = bolt.bucket("other").buckets[b"large-child"]
    assert len(large.items) == 500 and large.items[b"key00499"] == b"x" * 40


def test_no_freelist_when_written_with_no_freelist_sync() -> None:
    assert read_bolt_file(fixture_db("nofreelist")).freelist is None


def test_reading_never_changes_the_file() -> None:
    path = fixture_db("many")
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    read_bolt_file(path)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_meta_checksum_is_fnv1a_over_the_meta() -> None:
    data = fixture_db("one-user").read_bytes()
    (checksum,) = struct.unpack_from("<Q", data, META + 56)
    assert fnv1a_64(data[META:META + 56]) == checksum


def _refused(data: bytes) -> BoltError:
    with pytest.raises(BoltError) as caught:
        parse_bolt(data, "x.db")
    return caught.value


def test_other_formats_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "real.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    cases = {b"": "empty", db.read_bytes(): "SQLite database", b"[apps]\nx = 1\n" * 400: "not a bbolt database",
             os.urandom(8192): "not a bbolt database", b"\x00" * 8192: "not a bbolt database"}
    for data, message in cases.items():
        err = _refused(data)
        assert isinstance(err, NotABoltFile) and message in str(err)
    assert not looks_like_bolt_file(db) and looks_like_bolt_file(fixture_db("empty"))


@pytest.mark.parametrize("cut", [100, 4096, 8192 + 10, 200_000, 2_000_000])
def test_truncated_file_is_refused(cut: int) -> None:
    err = _refused(fixture_db("many").read_bytes()[:cut])
    assert isinstance(err, (CorruptBoltFile, NotABoltFile))
    assert "x.db" in str(err)


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def test_a_damaged_newest_meta_falls_back_to_the_older_one() -> None:
    data = fixture_db("one-user").read_bytes()
    txids = [struct.unpack_from("<Q", data, page * 4096 + META + 48)[0] for page in (0, 1)]
    newest = txids.index(max(txids))
    damaged = _patch(data, newest * 4096 + META + 40, b"\xff")  # its freelist id: checksum now wrong
    older = parse_bolt(damaged)
    assert older.txid == min(txids)


def test_both_metas_damaged_is_refused() -> None:
    data = fixture_db("one-user").read_bytes()
    for page in (0, 1):
        data = _patch(data, page * 4096 + META + 40, b"\xff")
    err = _refused(data)
    assert isinstance(err, CorruptBoltFile) and "checksum mismatch" in str(err)


def test_another_format_version_is_refused() -> None:
    data = fixture_db("one-user").read_bytes()
    for page in (0, 1):
        data = _patch(data, page * 4096 + META + 4, struct.pack("<I", 3))
    assert isinstance(_refused(data), UnsupportedBoltFile)


def test_a_page_pointing_outside_the_file_is_refused() -> None:
    data = bytearray(fixture_db("many").read_bytes())
    bolt = parse_bolt(bytes(data))
    # find a branch page and point its first child far past the high-water mark
    for page in range(2, bolt.high_water):
        flags = struct.unpack_from("<H", data, page * 4096 + 8)[0]
        if flags == 0x01:
            struct.pack_into("<Q", data, page * 4096 + 16 + 8, 10**9)
            break
    err = _refused(bytes(data))
    assert isinstance(err, CorruptBoltFile) and "outside the file" in str(err)


def test_a_page_reached_twice_is_refused() -> None:
    data = bytearray(fixture_db("many").read_bytes())
    bolt = parse_bolt(bytes(data))
    for page in range(2, bolt.high_water):
        if struct.unpack_from("<H", data, page * 4096 + 8)[0] == 0x01:
            (first,) = struct.unpack_from("<Q", data, page * 4096 + 16 + 8)
            struct.pack_into("<Q", data, page * 4096 + 16 + 16 + 8, first)  # second child = first
            break
    err = _refused(bytes(data))
    assert isinstance(err, CorruptBoltFile) and "used twice" in str(err)


def test_a_file_locked_by_a_running_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mxproxy.db"
    path.write_bytes(fixture_db("one-user").read_bytes())
    with path.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what bbolt holds while MX Proxy runs
        with pytest.raises(BoltFileInUse, match="still running"):
            read_bolt_file(path)
    assert read_bolt_file(path).bucket("users") is not None


def test_fixture_program_is_committed_with_its_output() -> None:
    source = (FIXTURES / "makefixtures.go").read_text()
    for name in ("empty", "one-user", "many", "nested", "messy", "page16k", "nofreelist", "e2e", "one-user-s390x"):
        assert f'"{name}.db"' in source and fixture_db(name).is_file()
