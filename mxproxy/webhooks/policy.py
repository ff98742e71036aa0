"""What one delivery attempt's answer means, and when to try again.

* 2xx: delivered.
* Timeouts, connection and TLS errors, 5xx, 408 and 429: retried with exponential backoff and
  full jitter between half and all of ``retryMin * 2**(attempt-1)`` (capped at ``retryMax``), so
  the first retry comes within seconds; a ``Retry-After`` (seconds or an HTTP date) on 429/503
  is honoured instead. After ``retryFor`` since the delivery was stored (or redelivered) it is
  parked as ``failed`` (the last try comes at the end of the period).
* Any other status (3xx, since redirects are not followed; 4xx but 408/429) fails permanently:
  the receiver understood and refused, and repeating the same body will not change that.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"
#: a Retry-After longer than this is read as this (a receiver must not park us for a week)
MAX_RETRY_AFTER = 3600.0


def classify(status: int) -> str:
    if 200 <= status < 300:
        return DELIVERED
    if status in (408, 429) or status >= 500:
        return RETRY
    return FAILED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class RetryPolicy:
    retry_for: float
    retry_min: float
    retry_max: float

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds before the next try after the ``attempt``-th failed one (1-based)."""
        if retry_after is not None:
            return retry_after
        base = min(self.retry_max, self.retry_min * (2 ** max(attempt - 1, 0)))
        return (rng or random).uniform(base / 2, base)

    def next_try(self, attempt: int, age: float, retry_after: float | None = None,
                 rng: random.Random | None = None) -> float | None:
        """The delay to the next try, or None once ``retry_for`` has passed (park it); the last
        try comes at the end of the period. ``age``: seconds since the period began."""
        remaining = self.retry_for - age
        if remaining <= 0:
            return None
        return min(self.delay(attempt, retry_after, rng), remaining)


__all__ = ["DELIVERED", "FAILED", "RETRY", "RetryPolicy", "classify", "parse_retry_after"]
