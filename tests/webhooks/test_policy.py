"""What an answer means (delivered, retry, park) and when the next try comes."""

from __future__ import annotations

import email.utils
import random

import pytest

from mxproxy.webhooks.policy import DELIVERED, FAILED, RETRY, RetryPolicy, classify, parse_retry_after


@pytest.mark.parametrize(("status", "outcome"), [
    (200, DELIVERED), (202, DELIVERED), (204, DELIVERED),
    (500, RETRY), (502, RETRY), (503, RETRY), (408, RETRY), (429, RETRY),
    (400, FAILED), (401, FAILED), (404, FAILED), (410, FAILED), (301, FAILED), (302, FAILED),
])
def test_statuses_are_delivered_retried_or_permanent_failures(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_retry_after_is_read_as_seconds_or_an_http_date_and_bounded() -> None:
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after(None, 0.0) is None and parse_retry_after("soon", 0.0) is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("99999999", 0.0) == 3600.0


def test_backoff_doubles_with_jitter_up_to_the_cap_and_the_first_retry_is_within_seconds() -> None:
    policy = RetryPolicy(retry_for=86400, retry_min=2.0, retry_max=600.0)
    rng = random.Random(7)
    delays = [[policy.delay(attempt, rng=rng) for _ in range(50)] for attempt in range(1, 12)]
    assert all(1.0 <= d <= 2.0 for d in delays[0])
    assert all(2.0 <= d <= 4.0 for d in delays[1])
    assert all(300.0 <= d <= 600.0 for d in delays[-1])
    assert len({round(d, 6) for d in delays[0]}) > 1  # jittered


def test_retry_after_replaces_the_backoff_and_the_period_ends_with_a_last_try() -> None:
    policy = RetryPolicy(retry_for=60, retry_min=1.0, retry_max=10.0)
    assert policy.next_try(1, age=0.0, retry_after=5.0) == 5.0
    assert policy.next_try(9, age=55.0) == pytest.approx(5.0)  # the rest of the period
    assert policy.next_try(9, age=60.0) is None
