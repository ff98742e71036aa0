"""HRW placement: deterministic, even, and minimal movement when membership changes."""

from __future__ import annotations

from collections import Counter

import pytest

from mxproxy.sessions.placement import owner_of

USERS = [f"user{i}@example.com" for i in range(3000)]


def test_every_instance_computes_the_same_owner_whatever_the_order() -> None:
    assert all(owner_of(u, ["a", "b", "c"]) == owner_of(u, ["c", "a", "b"]) for u in USERS[:200])


def test_no_live_instance_means_no_owner() -> None:
    assert owner_of("u", []) is None


@pytest.mark.parametrize("n", [2, 3, 5])
def test_users_spread_evenly(n: int) -> None:
    instances = [f"i{k}" for k in range(n)]
    counts = Counter(owner_of(u, instances) for u in USERS)
    assert set(counts) == set(instances)
    assert all(abs(c - len(USERS) / n) < 0.15 * len(USERS) / n for c in counts.values())


def test_a_joining_instance_takes_only_its_share_and_a_leaving_one_hands_over_only_its_own() -> None:
    before = {u: owner_of(u, ["a", "b", "c"]) for u in USERS}
    joined = {u: owner_of(u, ["a", "b", "c", "d"]) for u in USERS}
    moved = [u for u in USERS if before[u] != joined[u]]
    assert all(joined[u] == "d" for u in moved)
    assert abs(len(moved) - len(USERS) / 4) < 0.15 * len(USERS) / 4
    left = {u: owner_of(u, ["a", "c"]) for u in USERS}
    assert all(left[u] == before[u] for u in USERS if before[u] != "b")
