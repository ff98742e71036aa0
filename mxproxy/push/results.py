"""What a push attempt came to, and the one rule both providers share: a token is pruned only on
the provider's *final* verdict about that token, never on transport trouble or overload.

The original deleted FCM tokens on any unknown error (spec §9.29/30); here every outcome is
classified explicitly, retryable outcomes are retried with backoff inside the caller's deadline,
and everything else is reported without touching the token.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace
from typing import Awaitable, Callable, ClassVar, Literal

from mxproxy.store.base import DeviceToken

log = logging.getLogger(__name__)

PushKind = Literal["voip", "alert"]

# status values -------------------------------------------------------------------------------
OK = "ok"  # accepted by the provider
REJECTED = "rejected"  # the provider refused this message (see ``final`` and ``reason``)
UNAVAILABLE = "unavailable"  # 429 / 5xx still failing when attempts or time ran out
TIMEOUT = "timeout"  # the deadline passed with no answer
TRANSPORT = "transport"  # could not connect / connection dropped
TOO_LARGE = "too_large"  # payload over the provider's limit; never sent
NO_CREDENTIALS = "no_credentials"  # no certificate/key/service account for this topic or app

#: APNs reasons that mean "this token is dead for this topic" (Apple's docs, and the original's list).
APNS_FINAL_REASONS = frozenset({"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic", "MissingDeviceToken"})
#: FCM v1 error codes that mean the registration token is dead.
FCM_FINAL_CODES = frozenset({"UNREGISTERED"})


@dataclass(frozen=True)
class PushResult:
    """One send's outcome. ``final`` is True only when the provider said the token is dead:
    the caller prunes it. ``warm`` tells whether an existing connection was reused."""

    provider: str  # "apns" | "fcm"
    kind: str  # "voip" | "alert"
    token: DeviceToken
    status: str  # one of the status constants above
    reason: str = ""  # provider reason ("BadDeviceToken", "UNREGISTERED", …) or ours ("PayloadTooLarge", "Timeout")
    final: bool = False
    retry_after: float | None = None
    warm: bool | None = None
    latency: float = 0.0
    http_status: int | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def retryable(self) -> bool:
        """Worth another attempt: overload, server trouble, a dropped connection."""
        return self.status in (UNAVAILABLE, TRANSPORT)

    def summary(self) -> str:
        """Short text for ``Store.set_token_result`` and logs (never contains secrets)."""
        if self.ok:
            return "ok"
        if self.reason:
            return self.reason if self.status == REJECTED else f"{self.status}: {self.reason}"
        return self.status


def classify_apns(status: int, reason: str) -> tuple[str, bool]:
    """(status, final) for an APNs HTTP status and ``reason``."""
    if status == 200:
        return OK, False
    if status == 410 or reason in APNS_FINAL_REASONS:
        return REJECTED, True
    if status == 429 or status >= 500:
        return UNAVAILABLE, False
    return REJECTED, False


def classify_fcm(status: int, error_code: str, token_field_invalid: bool) -> tuple[str, bool]:
    """(status, final) for an FCM v1 HTTP status and error code. ``INVALID_ARGUMENT`` is final
    only when FCM says the *token* is what is invalid (a bad payload must not cost a device)."""
    if status == 200:
        return OK, False
    if error_code in FCM_FINAL_CODES or (status == 404 and error_code in ("", "NOT_FOUND")):
        return REJECTED, True
    if error_code == "INVALID_ARGUMENT" and token_field_invalid:
        return REJECTED, True
    if status == 429 or status >= 500 or error_code in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"):
        return UNAVAILABLE, False
    return REJECTED, False


class Sender(abc.ABC):
    """A push provider. Both APNs and FCM senders answer every send with a PushResult (never
    raise for provider or network trouble) and finish all attempts before ``deadline``."""

    provider: ClassVar[str]

    @abc.abstractmethod
    async def send(self, token: DeviceToken, payload: dict, kind: PushKind, *, deadline: float) -> PushResult:
        """Send ``payload`` to one device. ``deadline`` is an absolute ``time.monotonic()``."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close connections and worker threads."""


Attempt = Callable[[float], Awaitable[PushResult]]


async def send_with_retries(
    attempt: Attempt,
    template: PushResult,
    *,
    deadline: float,
    max_attempts: int,
    backoff: float,
    on_timeout: Callable[[], None] | None = None,
) -> PushResult:
    """Run ``attempt(timeout)`` until it succeeds, is not retryable, attempts run out or the
    deadline would pass. Each attempt gets a hard timeout of the remaining time; a Retry-After
    beyond the deadline ends the loop with that result (the caller may requeue later).
    ``template`` carries provider/kind/token for the timeout result."""
    started = time.monotonic()
    result: PushResult | None = None
    for number in range(1, max_attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(remaining):
                result = await attempt(remaining)
        except TimeoutError:
            if on_timeout is not None:
                on_timeout()
            return replace(
                template,
                status=TIMEOUT,
                reason="Timeout",
                attempts=number,
                latency=time.monotonic() - started,
                warm=result.warm if result is not None else template.warm,
            )
        result = replace(result, attempts=number, latency=time.monotonic() - started)
        if not result.retryable or number == max_attempts:
            return result
        if result.retry_after is not None:
            delay = result.retry_after
        else:
            delay = backoff * 2 ** (number - 1) * (1 + random.random() * 0.2)
        if time.monotonic() + delay >= deadline:
            return result
        log.debug("push %s %s: %s, retrying in %.2fs", result.provider, result.kind, result.summary(), delay)
        await asyncio.sleep(delay)
    if result is not None:
        return result
    return replace(template, status=TIMEOUT, reason="deadline passed before sending", attempts=0)
