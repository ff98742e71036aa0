"""The per-user call-info cache: ext filtering of Delivered *and* Established, clearing, TTL."""

from __future__ import annotations

from mxproxy.callcache import CallInfoCache
from mxproxy.connectors.base import ConnectionCleared, Delivered, Established


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delivered_to_the_user_is_stored_and_far_end_delivery_is_not() -> None:
    cache = CallInfoCache()
    cache.observe(Delivered(call_id=1, called_device="201", alerting_device="201", calling_device="3044"), "201")
    cache.observe(Delivered(call_id=2, called_device="3044", alerting_device="3044", calling_device="201"), "201")
    assert cache.get(1) is not None and cache.get(1)["type"] == "Delivered"
    assert cache.get(2) is None


def test_established_is_filtered_by_extension_too_and_overwrites_delivered() -> None:
    cache = CallInfoCache()
    cache.observe(Delivered(call_id=1, called_device="201", alerting_device="201"), "201")
    cache.observe(Established(call_id=1, answering_device="201", called_device="201", calling_device="3044"), "201")
    cache.observe(Established(call_id=9, answering_device="500", called_device="500", calling_device="3044"), "201")
    assert cache.get(1)["type"] == "Established"
    assert cache.get(9) is None


def test_connection_cleared_forgets_the_call() -> None:
    cache = CallInfoCache()
    cache.observe(Delivered(call_id=1, called_device="201"), "201")
    cache.observe(ConnectionCleared(call_id=1, releasing_device="3044"), "201")
    assert cache.get(1) is None and len(cache) == 0


def test_entries_expire_after_the_ttl_when_the_hangup_was_missed() -> None:
    clock = Clock()
    cache = CallInfoCache(ttl=60.0, clock=clock)
    cache.observe(Delivered(call_id=1, called_device="201"), "201")
    clock.now += 30
    cache.observe(Delivered(call_id=2, called_device="201"), "201")
    clock.now += 31
    assert cache.get(1) is None and cache.get(2) is not None
    clock.now += 30
    assert len(cache) == 0
