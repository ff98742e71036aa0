"""Short-lived caches of MX answers with single-flight: one fetch serves every concurrent caller.

Used for the per-MX address book (``GET /contacts``, shared by every user of an MX) and the
per-user call log (``GET /calls``, keyed by its ``since`` argument). Both are slow on the MX side
(paging; the call log's end-of-stream idle gap, see ``connectors/zultys/calllog.py``) and both
change only at known moments, so the owner of a cache invalidates it then and a TTL bounds what
a missed change can cost.

Rules common to both:

* a value is served until ``ttl`` seconds after its fetch *finished* (``ttl <= 0``: never cached,
  concurrent callers still share one fetch);
* concurrent misses share one fetch; one caller going away (client disconnected) does not cancel
  it for the others;
* ``invalidate()`` drops the value **and** disowns a fetch under way (it may predate the change):
  its callers still get its result, but it is not stored, and the next caller starts a new fetch;
* a failed fetch is not cached: every caller sharing it gets the error;
* ``get_derived(fetch, derive)`` serves ``derive(value)`` computed once per cached value (the
  rendered answer of ``GET /contacts``, ``GET /calls``): kept with the value, dropped with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
D = TypeVar("D")
K = TypeVar("K", bound=Hashable)

Clock = Callable[[], float]

__all__ = ["KeyedSharedFetch", "SharedFetch"]


class SharedFetch(Generic[T]):
    """One cached value with a TTL, single-flight fetches and generation-checked invalidation."""

    def __init__(self, ttl: float, *, clock: Clock = time.monotonic,
                 copy: Callable[[T], T] | None = None) -> None:
        self.ttl = ttl
        self._clock = clock
        self._copy = copy  # callers get their own copy of a mutable value (e.g. ``list``)
        self._value: T | None = None
        self._has_value = False
        self._fetched_at = 0.0
        self._inflight: asyncio.Task[T] | None = None
        self._generation = 0
        self._derived: tuple[Callable[[T], object], object] | None = None  # (derive, its result)
        self.fetches = 0  # how many times the MX was actually asked (metrics, tests, bench)

    @property
    def cached(self) -> bool:
        """A fresh value is held (a ``get`` now would not fetch)."""
        return self._has_value and self._clock() - self._fetched_at < self.ttl

    async def get(self, fetch: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or the result of ``fetch`` (one fetch for concurrent callers)."""
        if self.cached:
            return self._out(self._value)  # type: ignore[arg-type]
        task = self._inflight
        if task is None:
            task = asyncio.create_task(self._run(fetch, self._generation))
            task.add_done_callback(_consume_exception)
            self._inflight = task
        # shield: one caller going away must not cancel the fetch the others are waiting for
        return self._out(await asyncio.shield(task))

    async def get_derived(self, fetch: Callable[[], Awaitable[T]], derive: Callable[[T], D]) -> D:
        """``derive`` of the value ``get`` would return, computed once per cached value.

        ``derive`` gets the cached value itself (not a copy) and must not change it; it is keyed
        by identity, so pass the same function every time. A value that is not cached (a fetch
        that was invalidated meanwhile, ``ttl <= 0``) is derived for its callers only."""
        if not self.cached:
            value = await self.get(fetch)
            if not self.cached:
                return derive(value)
        memo = self._derived
        if memo is not None and memo[0] is derive:
            return memo[1]  # type: ignore[no-any-return]
        derived = derive(self._value)  # type: ignore[arg-type]
        self._derived = (derive, derived)
        return derived

    def invalidate(self) -> None:
        """Forget the value; a fetch under way is not stored (it may predate the change)."""
        self._value, self._has_value = None, False
        self._derived = None
        self._generation += 1
        self._inflight = None

    def _out(self, value: T) -> T:
        return self._copy(value) if self._copy is not None else value

    async def _run(self, fetch: Callable[[], Awaitable[T]], generation: int) -> T:
        try:
            self.fetches += 1
            value = await fetch()
            if generation == self._generation and self.ttl > 0:
                self._value, self._has_value = value, True
                self._derived = None
                self._fetched_at = self._clock()
            return value
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None


class KeyedSharedFetch(Generic[K, T]):
    """A few ``SharedFetch`` values by key (least recently used dropped beyond ``max_keys``);
    ``invalidate()`` drops them all: one change (a finished call) affects every key."""

    def __init__(self, ttl: float, *, max_keys: int = 4, clock: Clock = time.monotonic,
                 copy: Callable[[T], T] | None = None) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.ttl = ttl
        self.max_keys = max_keys
        self._clock = clock
        self._copy = copy
        self._entries: OrderedDict[K, SharedFetch[T]] = OrderedDict()
        self.fetches = 0  # over all keys, dropped ones included
        self.invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, key: K) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.cached

    async def get(self, key: K, fetch: Callable[[], Awaitable[T]]) -> T:
        """The value for ``key``, fetched by ``fetch`` on a miss (shared by concurrent callers)."""
        return await self._entry(key).get(self._counted(fetch))

    async def get_derived(self, key: K, fetch: Callable[[], Awaitable[T]], derive: Callable[[T], D]) -> D:
        """``SharedFetch.get_derived`` for ``key``."""
        return await self._entry(key).get_derived(self._counted(fetch), derive)

    def _entry(self, key: K) -> SharedFetch[T]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = SharedFetch(self.ttl, clock=self._clock, copy=self._copy)
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)  # its callers keep their own reference to the fetch
        else:
            self._entries.move_to_end(key)
        return entry

    def _counted(self, fetch: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        async def counted() -> T:
            self.fetches += 1
            return await fetch()

        return counted

    def invalidate(self) -> None:
        """Forget every key; fetches under way are not stored."""
        self.invalidations += 1
        for entry in self._entries.values():
            entry.invalidate()
        self._entries.clear()


def _consume_exception(task: asyncio.Task[object]) -> None:
    """Mark a failed fetch's error as seen when every caller went away before it finished."""
    if not task.cancelled():
        task.exception()
