"""SharedFetch / KeyedSharedFetch: TTL, single-flight, invalidation that disowns a fetch under way."""

from __future__ import annotations

import asyncio

import pytest

from mxproxy.fetch_cache import KeyedSharedFetch, SharedFetch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A fetch whose answers can be held back (``gate``) and which counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.error: Exception | None = None

    async def __call__(self) -> list[int]:
        self.calls += 1
        n = self.calls
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return [n]


async def test_value_is_served_until_the_ttl_runs_out() -> None:
    clock, source = Clock(), Source()
    cache: SharedFetch[list[int]] = SharedFetch(30.0, clock=clock)
    assert await cache.get(source) == [1]
    clock.now += 29.9
    assert await cache.get(source) == [1] and cache.cached
    clock.now += 0.2
    assert not cache.cached
    assert await cache.get(source) == [2]
    assert cache.fetches == source.calls == 2


async def test_concurrent_misses_share_one_fetch() -> None:
    source = Source()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    waiting = [asyncio.create_task(cache.get(source)) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*waiting) == [[1]] * 5
    assert cache.fetches == source.calls == 1


async def test_invalidate_during_a_fetch_keeps_its_result_out_of_the_cache() -> None:
    source = Source()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    early = asyncio.create_task(cache.get(source))
    await asyncio.sleep(0)
    cache.invalidate()  # the change may have happened after the MX built that answer
    late = asyncio.create_task(cache.get(source))  # does not join the disowned fetch
    await asyncio.sleep(0)
    source.gate.set()
    assert await early == [1]
    assert await late == [2]
    assert await cache.get(source) == [2] and source.calls == 2


async def test_one_caller_going_away_does_not_cancel_the_shared_fetch() -> None:
    source = Source()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    leaving = asyncio.create_task(cache.get(source))
    staying = asyncio.create_task(cache.get(source))
    await asyncio.sleep(0)
    leaving.cancel()
    source.gate.set()
    assert await staying == [1]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_fetch_reaches_every_caller_and_is_not_cached() -> None:
    source = Source()
    source.gate.clear()
    source.error = RuntimeError("mx went away")
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    waiting = [asyncio.create_task(cache.get(source)) for _ in range(3)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and source.calls == 1
    source.error = None
    assert await cache.get(source) == [2]


async def test_zero_ttl_caches_nothing_but_still_shares_a_fetch() -> None:
    source = Source()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(0.0)
    waiting = [asyncio.create_task(cache.get(source)) for _ in range(3)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*waiting) == [[1]] * 3
    assert await cache.get(source) == [2]


async def test_copy_gives_each_caller_its_own_list() -> None:
    cache: SharedFetch[list[int]] = SharedFetch(30.0, copy=list)
    first = await cache.get(Source())
    first.append(99)
    assert await cache.get(Source()) == [1]


async def test_keys_are_cached_separately_and_invalidate_drops_them_all() -> None:
    sources = {None: Source(), 5: Source()}
    cache: KeyedSharedFetch[int | None, list[int]] = KeyedSharedFetch(30.0, max_keys=4)
    assert await cache.get(None, sources[None]) == [1]
    assert await cache.get(5, sources[5]) == [1]
    assert await cache.get(None, sources[None]) == [1]
    assert cache.fetches == 2 and cache.cached(None) and cache.cached(5)
    cache.invalidate()
    assert not cache.cached(None) and not cache.cached(5)
    assert await cache.get(5, sources[5]) == [2]
    assert cache.fetches == 3 and cache.invalidations == 1


async def test_least_recently_used_key_is_dropped_beyond_the_bound() -> None:
    cache: KeyedSharedFetch[int, list[int]] = KeyedSharedFetch(30.0, max_keys=2)
    for key in (1, 2):
        await cache.get(key, Source())
    await cache.get(1, Source())  # 1 is now the most recent
    await cache.get(3, Source())
    assert len(cache) == 2 and cache.cached(1) and cache.cached(3) and not cache.cached(2)


async def test_keyed_concurrent_callers_count_one_fetch() -> None:
    source = Source()
    source.gate.clear()
    cache: KeyedSharedFetch[int, list[int]] = KeyedSharedFetch(30.0)
    waiting = [asyncio.create_task(cache.get(7, source)) for _ in range(4)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*waiting) == [[1]] * 4
    assert cache.fetches == source.calls == 1


class Derive:
    """A derivation that counts its calls (what ``get_derived`` must keep to one per value)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: list[int]) -> str:
        self.calls += 1
        return f"rendered {value}"


async def test_a_derived_value_is_computed_once_per_cached_value_and_dropped_with_it() -> None:
    clock, source, derive = Clock(), Source(), Derive()
    cache: SharedFetch[list[int]] = SharedFetch(30.0, clock=clock, copy=list)
    assert [await cache.get_derived(source, derive) for _ in range(3)] == ["rendered [1]"] * 3
    assert derive.calls == 1 and source.calls == 1
    assert await cache.get(source) == [1]  # the plain value is still served alongside
    cache.invalidate()
    assert await cache.get_derived(source, derive) == "rendered [2]" and derive.calls == 2
    clock.now += 31  # the TTL drops the derived value with the value
    assert await cache.get_derived(source, derive) == "rendered [3]" and derive.calls == 3


async def test_concurrent_derived_misses_share_one_fetch_and_one_derivation() -> None:
    source, derive = Source(), Derive()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    waiting = [asyncio.create_task(cache.get_derived(source, derive)) for _ in range(5)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*waiting) == ["rendered [1]"] * 5
    assert source.calls == 1 and derive.calls == 1


async def test_a_value_invalidated_during_its_fetch_is_derived_for_its_callers_only() -> None:
    source, derive = Source(), Derive()
    source.gate.clear()
    cache: SharedFetch[list[int]] = SharedFetch(30.0)
    early = asyncio.create_task(cache.get_derived(source, derive))
    await asyncio.sleep(0)
    cache.invalidate()  # e.g. an address-book change while the MX was answering
    source.gate.set()
    assert await early == "rendered [1]"
    assert await cache.get_derived(source, derive) == "rendered [2]"  # not the stale one
    zero: SharedFetch[list[int]] = SharedFetch(0.0)
    assert await zero.get_derived(source, derive) == "rendered [3]"
    assert await zero.get_derived(source, derive) == "rendered [4]"


async def test_keyed_derived_values_are_per_key_and_invalidated_together() -> None:
    derive = Derive()
    cache: KeyedSharedFetch[int | None, list[int]] = KeyedSharedFetch(30.0)

    async def fetch_for(key: int | None) -> list[int]:
        return [key or 0]

    assert await cache.get_derived(None, lambda: fetch_for(None), derive) == "rendered [0]"
    assert await cache.get_derived(5, lambda: fetch_for(5), derive) == "rendered [5]"
    assert await cache.get_derived(None, lambda: fetch_for(None), derive) == "rendered [0]"
    assert derive.calls == 2 and cache.fetches == 2
    cache.invalidate()
    assert await cache.get_derived(5, lambda: fetch_for(5), derive) == "rendered [5]" and derive.calls == 3
