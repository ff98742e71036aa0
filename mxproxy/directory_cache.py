"""A short-lived cache of one MX's address book, shared by every user of that MX.

``GET /contacts`` pages through the whole directory; with many users on one MX that is the same
work over and over. The cache is keyed per MX (host + server id) by the session manager, expires
after a short TTL, can be invalidated (address-book events), and concurrent misses share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

from mxproxy.connectors.base import Contact

DEFAULT_DIRECTORY_TTL = 60.0

Fetch = Callable[[], Awaitable[list[Contact]]]


class DirectoryCache:
    def __init__(self, ttl: float = DEFAULT_DIRECTORY_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._value: list[Contact] | None = None
        self._fetched_at = 0.0
        self._inflight: asyncio.Task[list[Contact]] | None = None
        self._generation = 0
        self.fetches = 0  # how many times the MX was actually asked (metrics, tests)

    async def get(self, fetch: Fetch) -> list[Contact]:
        """The cached directory, or the result of ``fetch`` (one fetch for concurrent callers)."""
        if self._value is not None and self._clock() - self._fetched_at < self.ttl:
            return list(self._value)
        if self._inflight is None:
            task = asyncio.create_task(self._run(fetch, self._generation))
            task.add_done_callback(_consume_exception)
            self._inflight = task
        # shield: one caller going away (client disconnected) must not cancel the others' fetch
        return list(await asyncio.shield(self._inflight))

    async def _run(self, fetch: Fetch, generation: int) -> list[Contact]:
        try:
            self.fetches += 1
            value = await fetch()
            if generation == self._generation:
                self._value = list(value)
                self._fetched_at = self._clock()
            return value
        finally:
            if self._inflight is asyncio.current_task():
                self._inflight = None

    def invalidate(self) -> None:
        """Forget the cached directory (e.g. an address-book change event arrived)."""
        self._value = None
        self._generation += 1
        self._inflight = None  # a fetch already under way may predate the change

    @property
    def cached(self) -> bool:
        return self._value is not None and self._clock() - self._fetched_at < self.ttl


def _consume_exception(task: "asyncio.Task[list[Contact]]") -> None:
    """Mark a failed fetch's error as seen when every caller went away before it finished."""
    if not task.cancelled():
        task.exception()
