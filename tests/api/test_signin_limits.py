"""``POST /auth`` attempt limits seen by clients: headers, 429, lockout, trusted proxies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from tests.api.conftest import FORM_TYPE, README_BASIC, ApiHarness, build_api

WRONG = "username=dmitrys%40xyzrd.com&password=nope&grant_type=password"
RIGHT = "username=dmitrys%40xyzrd.com&password=78561&grant_type=password"
PETER = "username=peterh%40xyzrd.com&password=peter-pw&grant_type=password"


async def post_auth(api: ApiHarness, form: str, **headers: str) -> httpx.Response:
    return await api.client.post("/auth", content=form,
                                 headers={"Authorization": README_BASIC, "Content-Type": FORM_TYPE, **headers})


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with build_api(tmp_path, extra={"signin": {"perUser": "10/minute", "perClient": "40/minute",
                                                     "failureCost": 5}}) as harness:
        yield harness


async def test_every_answer_carries_the_rate_limit_headers(tight: ApiHarness) -> None:
    for form, status in [(RIGHT, 200), (WRONG, 403)]:
        r = await post_auth(tight, form)
        assert r.status_code == status
        assert int(r.headers["x-ratelimit-limit"]) in (10, 40)
        assert 0 <= int(r.headers["x-ratelimit-remaining"]) < 40
        assert time.time() < int(r.headers["x-ratelimit-reset"]) <= time.time() + 61


async def test_repeated_wrong_passwords_lock_the_name_out_even_for_the_right_one(tight: ApiHarness) -> None:
    statuses = [(await post_auth(tight, WRONG)).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]  # 5 + 5 of 10: the third attempt is refused before any work
    r = await post_auth(tight, RIGHT)
    assert r.status_code == 429
    assert r.json() == {"error": f"too many sign-in attempts, retry in {r.headers['retry-after']} s"}
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-remaining"] == "0" and r.headers["x-ratelimit-limit"] == "10"
    assert (await post_auth(tight, PETER)).status_code == 200  # another user signs in as usual


async def test_one_client_flooding_many_names_is_stopped_by_the_client_limit(tight: ApiHarness) -> None:
    statuses = []
    for n in range(10):
        statuses.append((await post_auth(tight, f"username=user{n}&password=x&grant_type=password")).status_code)
    assert statuses[:8] == [403] * 8 and statuses[8:] == [429, 429]  # 8 × 5 = 40
    assert (await post_auth(tight, RIGHT)).status_code == 429


@pytest.mark.parametrize(("trusted", "separate"), [([], False), (["127.0.0.1"], True), (["10.0.0.0/8"], False)])
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path, trusted: list[str],
                                                               separate: bool) -> None:
    extra: dict[str, Any] = {"signin": {"perClient": "10/minute", "perUser": "100/minute", "failureCost": 10},
                             "server": {"trustedProxies": trusted}}
    async with build_api(tmp_path, extra=extra) as api:  # the in-process client's peer is 127.0.0.1
        first = [(await post_auth(api, WRONG, **{"X-Forwarded-For": "203.0.113.1"})).status_code for _ in range(2)]
        other = await post_auth(api, WRONG, **{"X-Forwarded-For": "203.0.113.2"})
    assert first == [403, 429]
    assert other.status_code == (403 if separate else 429)


async def test_the_defaults_never_touch_a_softphone(api: ApiHarness) -> None:
    # a phone with a stale password retrying a few times, then the user fixing it, then signing
    # in again and again (app restarts, token refreshes, several devices of one user)
    for _ in range(4):
        assert (await post_auth(api, WRONG)).status_code == 403
    for _ in range(30):
        assert (await post_auth(api, RIGHT)).status_code == 200
    r = await post_auth(api, RIGHT)
    assert int(r.headers["x-ratelimit-remaining"]) >= 25


async def test_limits_can_be_switched_off(tmp_path: Path) -> None:
    async with build_api(tmp_path, extra={"signin": {"enabled": False}}) as api:
        for _ in range(12):
            r = await post_auth(api, WRONG)
            assert r.status_code == 403 and "x-ratelimit-limit" not in r.headers
