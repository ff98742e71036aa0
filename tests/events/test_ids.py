"""Per-user event ids: max(previous + 1, µs since the epoch)."""

from __future__ import annotations

import time

from mxproxy.events.ids import IdClock


class StandingClock:
    """A wall clock an operator (or NTP) can stop and step back."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def test_ids_increase_per_user_while_the_clock_stands_still_or_steps_back() -> None:
    clock = StandingClock(1_800_000_000_000_000_000)
    ids = IdClock(clock)
    first = [ids.next("alice") for _ in range(3)]
    clock.ns -= 5_000_000_000  # 5 s back
    later = [ids.next("alice") for _ in range(2)]
    assert first + later == sorted(set(first + later)) and first[0] == 1_800_000_000_000_000
    assert ids.next("bob") == 1_799_999_995_000_000  # users are independent
    assert ids.last("alice") == later[-1]


def test_ids_follow_the_wall_clock_so_a_new_process_continues_above_the_old_one() -> None:
    before = IdClock()
    old = [before.next("alice") for _ in range(100)]
    time.sleep(0.002)
    after = IdClock()  # a restart, or the user's new owner in a cluster
    assert after.last("alice") is None
    assert after.next("alice") > old[-1]
    assert old[-1] < 2**53  # JavaScript reads them exactly


def test_forgetting_a_user_keeps_an_id_that_is_still_ahead_of_the_clock() -> None:
    clock = StandingClock(1_800_000_000_000_000_000)
    ids = IdClock(clock)
    burst = [ids.next("alice") for _ in range(5)]  # 5 ids within one microsecond
    ids.forget("alice")
    assert ids.next("alice") == burst[-1] + 1
    clock.ns += 1_000_000
    ids.forget("alice")
    assert ids.last("alice") is None
