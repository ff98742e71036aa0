"""``mxproxy.sessions.gcpause``: full garbage collections held off during a burst of logins,
bounded in time, nested holds restoring the thresholds that were in force before the first."""

from __future__ import annotations

import asyncio
import gc

from mxproxy.sessions import gcpause


async def test_a_hold_raises_only_the_full_collection_threshold_and_release_restores_it() -> None:
    before = gc.get_threshold()
    release = gcpause.hold_full_collections()
    assert gcpause.held()
    assert gc.get_threshold() == (before[0], before[1], gcpause.HELD_THRESHOLD)  # young collections go on
    release()
    release()  # a second release is nothing
    assert not gcpause.held()
    assert gc.get_threshold() == before


async def test_nested_holds_restore_the_thresholds_once_the_last_one_ends() -> None:
    before = gc.get_threshold()
    outer = gcpause.hold_full_collections()
    inner = gcpause.hold_full_collections()
    outer()
    assert gcpause.held() and gc.get_threshold()[2] == gcpause.HELD_THRESHOLD
    inner()
    assert not gcpause.held() and gc.get_threshold() == before


async def test_a_hold_ends_by_itself_after_its_time_limit() -> None:
    before = gc.get_threshold()
    release = gcpause.hold_full_collections(limit=0.05)
    await asyncio.sleep(0.2)  # e.g. an MX that lets every login time out
    assert not gcpause.held() and gc.get_threshold() == before
    release()  # late release after the limit: nothing happens
    assert gc.get_threshold() == before


async def test_the_sessions_a_burst_made_are_frozen_when_the_last_hold_ends() -> None:
    class Session:  # in a reference cycle, as sessions are
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    try:
        release = gcpause.hold_full_collections()
        session = Session()
        assert any(o is session for o in gc.get_objects())
        release()
        assert not any(o is session for o in gc.get_objects())  # no full collection walks it
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
