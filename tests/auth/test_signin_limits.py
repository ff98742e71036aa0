"""Sign-in attempt limits on the ``limits`` package: memory storage, and Redis shared by instances.

The Redis tests use the machine's Redis (127.0.0.1:6379, ``MXPROXY_TEST_REDIS`` overrides) with
a key prefix of their own, deleted afterwards; where Redis is not reachable they are skipped,
except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import replace
from typing import AsyncIterator, Iterator

import pytest
import redis

from mxproxy.auth.signin_limits import SignInLimiter, SignInThrottled, client_key, open_storage, user_key
from mxproxy.config import SignInLimitsConfig

REDIS_URL = os.environ.get("MXPROXY_TEST_REDIS", "redis://127.0.0.1:6379/0")
TIGHT = SignInLimitsConfig(per_client="20/minute", per_user="6/minute;9/hour", failure_cost=3)


def _redis_or_skip() -> None:
    host, _, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_URL} unreachable ({exc}); CI=true requires it")
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    _redis_or_skip()
    prefix = f"mxproxy-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    with redis.Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture(params=["memory", "redis"])
def config(request: pytest.FixtureRequest) -> SignInLimitsConfig:
    if request.param == "memory":
        return TIGHT
    prefix = request.getfixturevalue("redis_prefix")
    return replace(TIGHT, storage=REDIS_URL, storage_prefix=prefix)


@pytest.fixture
async def limiter(config: SignInLimitsConfig) -> AsyncIterator[SignInLimiter]:
    limiter = SignInLimiter(config)
    yield limiter
    await limiter.aclose()


async def attempt(limiter: SignInLimiter, client: str, user: str, *, failed: bool) -> None:
    await limiter.admit(client)
    await limiter.admit_user(client, user)
    await limiter.settle(client, user, failed=failed)


async def test_failures_weigh_more_and_lock_the_name_out(limiter: SignInLimiter) -> None:
    await attempt(limiter, "192.0.2.1", "alice", failed=True)  # 3 of 6
    quota = await limiter.quota("192.0.2.1", "alice")
    assert quota is not None and (quota.limit, quota.remaining) == (6, 3)
    await attempt(limiter, "192.0.2.2", "alice", failed=True)  # another address: the name is the same
    with pytest.raises(SignInThrottled) as info:
        await attempt(limiter, "192.0.2.3", "ALICE", failed=False)  # even the right password
    assert 1 <= info.value.retry_after <= 60
    assert info.value.quota.remaining == 0 and info.value.quota.limit == 6
    await attempt(limiter, "192.0.2.3", "bob", failed=False)  # other names are not affected


async def test_a_success_clears_the_names_count(limiter: SignInLimiter) -> None:
    await attempt(limiter, "192.0.2.1", "alice", failed=True)
    await attempt(limiter, "192.0.2.1", "alice", failed=False)
    quota = await limiter.quota("198.51.100.9", "alice")
    assert quota is not None and quota.remaining == 6


async def test_successes_cost_one_each_per_client(limiter: SignInLimiter) -> None:
    for n in range(20):
        await attempt(limiter, "192.0.2.1", f"user{n}", failed=False)
    with pytest.raises(SignInThrottled):
        await limiter.admit("192.0.2.1")
    await limiter.admit("192.0.2.2")


async def test_the_longer_window_backs_the_lockout_off() -> None:
    limiter = SignInLimiter(replace(TIGHT, per_user="3/second;6/hour", failure_cost=3))
    await attempt(limiter, "192.0.2.1", "alice", failed=True)
    with pytest.raises(SignInThrottled) as short:
        await limiter.admit_user("192.0.2.1", "alice")
    assert short.value.retry_after == 1
    # the second-long window refills, but the hour window now holds the name for up to an hour
    limiter_later = SignInLimiter(replace(TIGHT, per_user="100/second;6/hour", failure_cost=3), limiter.storage)
    await attempt(limiter_later, "192.0.2.1", "alice", failed=True)
    with pytest.raises(SignInThrottled) as long:
        await limiter_later.admit_user("192.0.2.1", "alice")
    assert 3500 < long.value.retry_after <= 3600


async def test_two_instances_on_one_redis_share_the_counts(redis_prefix: str) -> None:
    config = replace(TIGHT, storage=REDIS_URL, storage_prefix=redis_prefix)
    one, two = SignInLimiter(config), SignInLimiter(config)
    try:
        await attempt(one, "192.0.2.1", "alice", failed=True)
        await attempt(two, "192.0.2.1", "alice", failed=True)
        with pytest.raises(SignInThrottled):
            await one.admit_user("192.0.2.1", "alice")
    finally:
        await one.aclose()
        await two.aclose()


async def test_unreachable_redis_lets_sign_ins_through(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    limiter = SignInLimiter(replace(TIGHT, storage=f"redis://127.0.0.1:{port}/0"))
    for _ in range(5):
        await attempt(limiter, "192.0.2.1", "alice", failed=True)
    assert await limiter.quota("192.0.2.1", "alice") is None
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1  # said once, not per attempt
    await limiter.aclose()


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.7", "192.0.2.7"), ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
    ("", "unknown"), ("testclient", "testclient"),
])
def test_client_key_groups_an_ipv6_clients_64(host: str, key: str) -> None:
    assert client_key(host) == key


def test_user_key_is_case_insensitive_and_bounded() -> None:
    assert user_key("Alice@Example.org") == user_key("alice@example.org")
    assert len(user_key("x" * 60_000)) == 32


async def test_a_clear_during_the_memory_storages_expiry_round_does_not_kill_it() -> None:
    """The expiry round waits for a key's lock; a success clearing that key meanwhile must leave
    the round able to finish (limits' own clear made it die with a KeyError)."""
    storage = open_storage("memory://", "")
    assert await storage.acquire_entry("k", 5, 60)  # schedules the storage's expiry round
    round_ = storage.timer
    assert round_ is not None and not round_.done()
    async with storage.locks["k"]:
        await asyncio.sleep(0)  # the round now waits for the key's lock
        await storage.clear("k")
    await round_  # raises if the round died
    assert await storage.acquire_entry("k", 5, 60)  # the cleared key counts afresh
