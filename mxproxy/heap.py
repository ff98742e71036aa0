"""Keeping long-lived objects out of the garbage collector's full collections.

A full (generation 2) collection walks every tracked object with the event loop stopped. With a
thousand MX sessions and event streams that is 140–160 ms, and one such pause per run was the
p99 of webhook and SSE latency (docs/benchmarks.md, bench/events.py). Objects frozen with
``gc.freeze()`` are not walked, so the server freezes what is alive after start-up and again
once a burst of sign-ins or new streams has settled: those objects live as long as their
session. CPython's own rule for a full collection (survivors since the last one > 25 % of the
long-lived objects) then sees only what was created since.

Frozen objects that later become cyclic garbage (a session that ended) are not freed until an
unfreeze; when the sessions ended since the last freeze reach a quarter of those it counted,
the freezer unfreezes, collects once and freezes the survivors — the same 25 % rule, on
sessions instead of objects, at a moment it chooses.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("mxproxy.heap")

#: How often the freezer looks at the counters, and how long a burst must have been quiet.
CHECK_SECONDS = 1.0
#: A burst worth freezing: this many new sessions or streams, and this share of those counted.
MIN_NEW = 50
MIN_SHARE = 0.05
#: Sessions ended since the last freeze, as a share of the counted ones, that make a full collection.
REFREEZE_SHARE = 0.25


def freeze_startup_heap() -> None:
    """Freeze everything alive after start-up (modules, config, resumed MX sessions).
    ``gc.collect()`` first, so only live objects are frozen."""
    gc.collect()
    gc.freeze()


def freeze_survivors() -> None:
    """Freeze what a burst left alive: the young generations are collected first (cheap, and
    their garbage is not frozen); older garbage waits for a refreeze."""
    gc.collect(1)
    gc.freeze()


@dataclass(frozen=True, slots=True)
class Counts:
    """Monotonic counters the freezer follows: objects that live long were made (sessions,
    streams) and long-lived objects that ended (sessions)."""

    made: int
    ended: int


class HeapFreezer:
    """Freezes after a settled burst of long-lived objects; refreezes after enough churn."""

    def __init__(self, counts: Callable[[], Counts]) -> None:
        self._counts = counts
        self._task: asyncio.Task[None] | None = None
        start = counts()
        self._frozen = start  # counters at the last freeze
        self._seen = start  # counters at the last check
        self._base = max(start.made - start.ended, 0)  # long-lived objects counted at the last freeze
        self.freezes = 0
        self.refreezes = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="heap-freezer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                self.check()
            except Exception:  # noqa: BLE001 - memory housekeeping must never stop the server
                log.exception("heap freeze failed")

    def check(self) -> str | None:
        """One look at the counters; returns what it did ("freeze", "refreeze" or None)."""
        now = self._counts()
        settled = now == self._seen
        self._seen = now
        if not settled:
            return None
        ended = now.ended - self._frozen.ended
        if self._base and ended >= REFREEZE_SHARE * self._base:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._mark(now)
            self.refreezes += 1
            return "refreeze"
        made = now.made - self._frozen.made
        if made >= MIN_NEW and made >= MIN_SHARE * self._base:
            freeze_survivors()
            self._mark(now)
            self.freezes += 1
            return "freeze"
        return None

    def _mark(self, now: Counts) -> None:
        self._frozen = now
        self._base = max(now.made - now.ended, 0)


__all__ = ["Counts", "HeapFreezer", "freeze_startup_heap", "freeze_survivors"]
