"""mxproxy/heap.py: long-lived objects leave full collections once their burst settles, and the
cyclic garbage of ended sessions is collected once enough of them ended."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from mxproxy.heap import MIN_NEW, Counts, HeapFreezer


class Node:
    """An object in a reference cycle, as session objects are (tasks, futures, callbacks)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Counters:
    def __init__(self) -> None:
        self.made = 0
        self.ended = 0

    def __call__(self) -> Counts:
        return Counts(self.made, self.ended)


def tracked(obj: object) -> bool:
    """Whether a collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_a_settled_burst_of_sessions_is_frozen_and_a_running_one_is_not() -> None:
    counters = Counters()
    freezer = HeapFreezer(counters)
    sessions = [Node() for _ in range(3)]
    counters.made += MIN_NEW
    assert freezer.check() is None  # still growing since the last look
    assert tracked(sessions[0])
    assert freezer.check() == "freeze"
    assert not tracked(sessions[0]) and gc.get_freeze_count() > 0
    assert freezer.check() is None  # nothing new


def test_a_few_new_sessions_do_not_freeze() -> None:
    counters = Counters()
    freezer = HeapFreezer(counters)
    counters.made += MIN_NEW - 1
    freezer.check()
    assert freezer.check() is None and gc.get_freeze_count() == 0


def test_garbage_of_ended_sessions_is_collected_after_a_quarter_of_them_ended() -> None:
    counters = Counters()
    freezer = HeapFreezer(counters)
    session = Node()
    gone = weakref.ref(session)
    counters.made += 100
    freezer.check()
    assert freezer.check() == "freeze"
    del session  # the session ends: its cycle is frozen garbage now
    gc.collect()
    assert gone() is not None  # frozen: not collected

    counters.ended += 24
    freezer.check()
    assert freezer.check() is None and gone() is not None
    counters.ended += 1
    freezer.check()
    assert freezer.check() == "refreeze"
    assert gone() is None and gc.get_freeze_count() > 0


async def test_the_server_counts_signed_in_sessions_for_its_freezer(tmp_path: Path, start_simulator: Any) -> None:
    from tests.admin.test_serve import start
    from tests.test_server import APP_PASSWORD, CLIENT

    server, _ = await start(tmp_path, start_simulator)
    try:
        assert server.heap is not None
        before = server._long_lived_counts()
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{server.public_url}/auth", auth=CLIENT, data={
                "username": "dmitrys@xyzrd.com", "password": APP_PASSWORD, "grant_type": "password"})
            assert r.status_code == 200, r.text
        assert server._long_lived_counts().made == before.made + 1
    finally:
        await server.stop()
    assert server.heap is None or server.heap._task is None
