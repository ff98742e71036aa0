"""Sign-in attempt limits (``POST /auth``): per client address and per sign-in name.

Built on the ``limits`` package (moving windows). Every attempt costs 1 on both counters before
any work is done, so a flood is refused before it reaches scrypt, provisioning or the MX; a
refused attempt (401/403) costs ``failureCost`` in all. Each counter is a list of windows
(``"30/minute;100/hour;300/day"``): once the short one is spent the client waits a minute, and
repeated failures spend the longer ones, so the lockout backs off from a minute to an hour to a
day. A successful sign-in clears the name's counter: a user who mistyped starts afresh.

Storage is in memory by default (one instance); ``redis://`` shares the counters between every
instance behind a load balancer. When the storage cannot be reached, sign-ins are let through
(logged): the limiter must not take sign-in down with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from mxproxy.auth.errors import AuthError
from mxproxy.config import SignInLimitsConfig

log = logging.getLogger(__name__)

IPV6_PREFIX = 64  # one IPv6 client usually holds a whole /64


@dataclass(frozen=True)
class Quota:
    """The tightest window an attempt fell under, for the ``X-RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset: float  # Unix time at which the window has room again

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.remaining)),
                "X-RateLimit-Reset": str(math.ceil(self.reset))}


class SignInThrottled(AuthError):
    """Too many attempts from this client or for this name: 429 + ``Retry-After``."""

    status = 429
    default_message = "too many sign-in attempts"

    def __init__(self, quota: Quota, retry_after: int) -> None:
        super().__init__(f"too many sign-in attempts, retry in {retry_after} s")
        self.quota = quota
        self.retry_after = retry_after


def client_key(host: str | None) -> str:
    """The counter key of a client address: the address, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def user_key(username: str) -> str:
    """Names are case-insensitive; hashed so the storage holds neither names nor unbounded keys."""
    return hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SignInMemoryStorage(MemoryStorage):
    """limits' memory storage whose ``clear`` leaves no race with its expiry task.

    The expiry task (limits 5.8) lists the keys, then awaits each key's lock and reads
    ``events[key]``; a ``clear`` in between popped the key, and the task died with a KeyError
    ("Task exception was never retrieved") after every success that cleared a name. Emptying the
    key's events instead lets the task drop the key itself.
    """

    async def clear(self, key: str) -> None:
        self.storage.pop(key, None)
        self.expirations.pop(key, None)
        if key in self.events:
            self.events[key] = []


def open_storage(uri: str, prefix: str) -> Storage:
    if uri.startswith(("redis://", "rediss://")):
        return RedisStorage(f"async+{uri}", implementation="redispy", key_prefix=prefix,
                            socket_timeout=2, socket_connect_timeout=2)
    return SignInMemoryStorage()


class SignInLimiter:
    def __init__(self, config: SignInLimitsConfig, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage if storage is not None else open_storage(config.storage, config.storage_prefix)
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._windows = {"client": parse_many(config.per_client), "user": parse_many(config.per_user)}
        self._storage_down = False

    async def admit(self, client: str, username: str | None = None) -> None:
        """Count one attempt; ``SignInThrottled`` when a window is spent (nothing else is done)."""
        for scope, key in self._scopes(client, username):
            for item in self._windows[scope]:
                if not await self._call(self._limiter.hit, item, scope, key, default=True):
                    raise await self._throttled(item, scope, key)

    async def admit_user(self, client: str, username: str) -> None:
        """The name's windows only (the client's were counted by ``admit``)."""
        for item in self._windows["user"]:
            if not await self._call(self._limiter.hit, item, "user", user_key(username), default=True):
                raise await self._throttled(item, "user", user_key(username))

    async def settle(self, client: str, username: str | None, failed: bool) -> Quota | None:
        """Charge a refused attempt its extra cost, or clear the name after a success; the
        tightest window afterwards (None when the storage is unreachable)."""
        scopes = self._scopes(client, username)
        if failed and self.config.failure_cost > 1:
            for scope, key in scopes:
                for item in self._windows[scope]:
                    await self._call(self._limiter.hit, item, scope, key, cost=self.config.failure_cost - 1,
                                     default=True)
        elif not failed and username:
            for item in self._windows["user"]:
                await self._call(self._limiter.clear, item, "user", user_key(username), default=None)
        return await self.quota(client, username)

    async def quota(self, client: str, username: str | None) -> Quota | None:
        tightest: Quota | None = None
        for scope, key in self._scopes(client, username):
            for item in self._windows[scope]:
                stats = await self._call(self._limiter.get_window_stats, item, scope, key, default=None)
                if stats is None:
                    return None
                quota = Quota(limit=item.amount, remaining=stats.remaining, reset=stats.reset_time)
                if tightest is None or (quota.remaining, -quota.reset) < (tightest.remaining, -tightest.reset):
                    tightest = quota
        return tightest

    async def _throttled(self, item: RateLimitItem, scope: str, key: str) -> SignInThrottled:
        stats = await self._call(self._limiter.get_window_stats, item, scope, key, default=None)
        reset = stats.reset_time if stats is not None else time.time() + item.get_expiry()
        quota = Quota(limit=item.amount, remaining=0, reset=reset)
        return SignInThrottled(quota, retry_after=max(1, math.ceil(reset - time.time())))

    def _scopes(self, client: str, username: str | None) -> list[tuple[str, str]]:
        scopes = [("client", client_key(client))]
        if username:
            scopes.append(("user", user_key(username)))
        return scopes

    async def _call(self, method: Any, *args: Any, default: Any, **kwargs: Any) -> Any:
        try:
            result = await method(*args, **kwargs)
        except Exception as exc:  # the storage's own errors (redis, …): let the sign-in through
            if not self._storage_down:
                log.warning("sign-in limits: storage %s unreachable, attempts are not limited: %s",
                            self.config.storage.split("@")[-1], exc)
                self._storage_down = True
            return default
        if self._storage_down:
            log.info("sign-in limits: storage reachable again")
            self._storage_down = False
        return result

    async def aclose(self) -> None:
        """Close the Redis connections (counters stay: other instances share them)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()
