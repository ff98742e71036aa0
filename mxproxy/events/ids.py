"""Per-user event ids: ``max(previous + 1, microseconds since the epoch)``.

Strictly increasing within a process; since they follow the wall clock they also keep
increasing after a restart or when another instance becomes the user's owner, as long as the
clocks agree to within the time between two events (NTP does better than that). They stay below
2**53 (until the year 2255), so JavaScript reads them exactly.
"""

from __future__ import annotations

import time
from typing import Callable


def now_us(clock: Callable[[], int] = time.time_ns) -> int:
    return clock() // 1000


class IdClock:
    """The last id given per user. Forgetting a user is safe once the clock has passed it."""

    __slots__ = ("_last", "_clock")

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._last: dict[str, int] = {}
        self._clock = clock

    def now(self) -> int:
        """Microseconds since the epoch: the id an event would get now, without a predecessor."""
        return self._clock() // 1000

    def next(self, user: str) -> int:
        now = self._clock() // 1000
        previous = self._last.get(user, 0)
        new = now if now > previous else previous + 1
        self._last[user] = new
        return new

    def last(self, user: str) -> int | None:
        return self._last.get(user)

    def forget(self, user: str) -> None:
        """Drop the user's memory unless its last id is still ahead of the clock (a burst of
        more than one event per microsecond): the clock alone then continues the sequence."""
        last = self._last.get(user)
        if last is not None and last < self.now():
            del self._last[user]
