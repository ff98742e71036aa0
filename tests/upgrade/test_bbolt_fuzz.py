"""Fuzzing the bbolt reader with truncated and corrupted copies of the real fixtures: every
input ends in a result or a BoltError — never another exception, a hang or a read past the data."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mxproxy.upgrade.bbolt import BoltError, fnv1a_64, parse_bolt
from tests.upgrade.conftest import fixture_db

SOURCES = {name: fixture_db(name).read_bytes()
           for name in ("one-user", "nested", "page16k", "many", "messy", "one-user-s390x")}
SMALL = ("one-user", "nested", "messy", "one-user-s390x")
#: a parse of the largest fixture takes ~30 ms; anything near this means a loop went wrong
BOUND_SECONDS = 2.0


def _parse(data: bytes) -> None:
    started = time.monotonic()
    try:
        parse_bolt(data, "fuzz.db")
    except BoltError as exc:
        assert str(exc).startswith("fuzz.db: ") or "fuzz.db" in str(exc)
    assert time.monotonic() - started < BOUND_SECONDS


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(sorted(SOURCES)), cut=st.floats(0, 1))
def test_truncated_copies(name: str, cut: float) -> None:
    data = SOURCES[name]
    _parse(data[: int(len(data) * cut)])


@FUZZ
@given(
    name=st.sampled_from(SMALL),
    edits=st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6),
)
def test_corrupted_bytes(name: str, edits: list[tuple[float, bytes]]) -> None:
    data = bytearray(SOURCES[name])
    for where, value in edits:
        at = min(int(len(data) * where), len(data) - len(value))
        data[at:at + len(value)] = value
    _parse(bytes(data))


@FUZZ
@given(name=st.sampled_from(SMALL), page=st.integers(0, 40), offset=st.integers(0, 64),
       value=st.sampled_from([0, 1, 2, 3, 0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, 2**63, 2**64 - 1]),
       width=st.sampled_from([2, 4, 8]))
def test_corrupted_header_fields(name: str, page: int, offset: int, value: int, width: int) -> None:
    """Counts, offsets and page ids in page headers and the first elements set to edge values."""
    data = bytearray(SOURCES[name])
    at = page * 4096 + offset
    if at + width <= len(data):
        data[at:at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    _parse(bytes(data))


@FUZZ
@given(st.binary(max_size=9000))
def test_arbitrary_bytes(data: bytes) -> None:
    _parse(data)


@FUZZ
@given(name=st.sampled_from(SMALL), meta=st.integers(0, 1), field=st.integers(0, 55),
       value=st.binary(min_size=1, max_size=8))
def test_corrupted_meta_with_a_valid_checksum(name: str, meta: int, field: int, value: bytes) -> None:
    """Meta fields (page size, root, freelist, high-water mark) changed and re-checksummed, so the
    damage reaches the checks behind the checksum."""
    data = bytearray(SOURCES[name])
    start = meta * 4096 + 16
    end = min(start + field + len(value), start + 56)
    data[start + field:end] = value[: end - start - field]
    order = "big" if name.endswith("s390x") else "little"
    data[start + 56:start + 64] = fnv1a_64(bytes(data[start:start + 56])).to_bytes(8, order)
    _parse(bytes(data))
