"""The delivery worker: claims due outbox rows and sends them, signed, one request each.

Any instance may deliver any row (claims with an expiry in the store); a row is claimed only
once the rows before it of the same call (or user) are delivered or parked, so a receiver sees
one call's events in order. Each attempt goes to an address the SSRF guard accepted at that
moment (the name is kept for ``Host`` and TLS), and its outcome is recorded in the store before
the next claim of that ordering key: delivered, retry later (policy.py), or parked as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from mxproxy.outbound import httpx_client, ssl_context
from mxproxy.store.base import StoreError
from mxproxy.store.outbox import DeliveryRecord
from mxproxy.webhooks import policy, ssrf
from mxproxy.webhooks.subscriptions import Subscription, Subscriptions

log = logging.getLogger("mxproxy.webhooks")

USER_AGENT = "mxproxy-webhooks/1"
#: how long a clean stop waits for requests in flight before giving their rows back
STOP_GRACE = 5.0


class Attempt:
    """One attempt's result, as recorded."""

    __slots__ = ("outcome", "status", "error", "retry_after")

    def __init__(self, outcome: str, status: int | None = None, error: str | None = None,
                 retry_after: float | None = None) -> None:
        self.outcome = outcome
        self.status = status
        self.error = error
        self.retry_after = retry_after


def target(parts: Any, address: Any) -> tuple[str, str]:
    """(URL naming ``address`` instead of the host, the Host header)."""
    host = f"[{address}]" if address.version == 6 else str(address)
    port = parts.port
    netloc = f"{host}:{port}" if port else host
    name = parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), (
        f"{name}:{port}" if port else name)


class DeliveryWorker:
    def __init__(self, store: Any, subscriptions: Subscriptions, config: Any, owner: str, *,
                 metrics: Any = None, on_disabled: Any = None) -> None:
        self._store = store
        self._subscriptions = subscriptions
        self._config = config
        self.owner = owner
        self._metrics = metrics
        self._on_disabled = on_disabled
        self._policy = policy.RetryPolicy(config.retry_for, config.retry_min, config.retry_max)
        self._allowed = ssrf.networks(config.allow_networks)
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False
        self._store_down = False
        self.attempts = 0

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        context = ssl_context(self._config.ca_file, key="webhooks.caFile")
        limits = httpx.Limits(max_connections=self._config.concurrency * 2, max_keepalive_connections=self._config.concurrency)
        self._client = httpx_client(context, timeout=self._config.timeout, limits=limits, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._inflight:
            done, pending = await asyncio.wait(set(self._inflight), timeout=STOP_GRACE)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self._store.release_claims(self.owner)
        except StoreError as exc:
            log.warning("webhooks: could not give back claimed deliveries (%s); they are taken over after "
                        "claimTTL", exc)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # claiming --------------------------------------------------------------------------------
    async def _run(self) -> None:
        config = self._config
        while not self._stopping:
            self._wake.clear()
            free = config.concurrency - len(self._inflight)
            claimed: list[DeliveryRecord] = []
            if free > 0:
                try:
                    claimed = await self._store.claim_deliveries(self.owner, free, config.claim_ttl)
                    if self._store_down:
                        self._store_down = False
                        log.info("webhooks: the store answers again; delivering")
                except (StoreError, OSError) as exc:
                    if not self._store_down:
                        self._store_down = True
                        log.warning("webhooks: cannot claim deliveries (%s); retrying", exc)
                for row in claimed:
                    task = asyncio.create_task(self._deliver(row), name=f"webhook-delivery-{row.id}")
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # more may be due: claim again once a slot frees (a done task wakes us)
            try:
                await asyncio.wait_for(self._wake.wait(), config.poll_interval)
            except asyncio.TimeoutError:
                pass

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a slot is free, and the row's successor may be due now

    # one delivery ----------------------------------------------------------------------------
    async def _deliver(self, row: DeliveryRecord) -> None:
        sub = self._subscriptions.get(row.webhook_id)
        if sub is None:
            try:
                await self._subscriptions.load()
            except StoreError:
                pass
            sub = self._subscriptions.get(row.webhook_id)
        if sub is None:
            return  # deleted meanwhile: its rows went with it
        self.attempts += 1
        attempt = await self._attempt(sub, row)
        retry_in = 0.0
        outcome = attempt.outcome
        if outcome == policy.RETRY:
            age = max(time.time() - row.retry_from, 0.0)
            delay = self._policy.next_try(row.attempts + 1, age, attempt.retry_after)
            if delay is None:
                outcome = policy.FAILED
                attempt.error = f"{attempt.error}; retried for {self._config.retry_for:.0f}s, parked"
            else:
                retry_in = delay
        metrics = self._metrics
        if metrics is not None:
            metrics.webhook_deliveries.labels(outcome).inc()
            if outcome == policy.DELIVERED and row.attempts == 0:
                metrics.webhook_latency.observe(max(time.time() - row.event_time, 0.0))
        try:
            result = await self._store.finish_delivery(
                row.id, self.owner, outcome, status=attempt.status, error=attempt.error, retry_in=retry_in,
                disable_after=self._config.disable_after)
        except StoreError as exc:
            log.warning("webhooks: could not record delivery %d (%s); it is sent again after claimTTL", row.id, exc)
            return
        if outcome == policy.RETRY and result.recorded:
            asyncio.get_running_loop().call_later(retry_in + 0.01, self._wake.set)
        if result.disabled:
            log.error("webhooks: endpoint %s (%s) disabled after %d failed deliveries in a row; last: %s. "
                      "Re-enable it with PATCH /webhooks/%s {\"enabled\": true}", sub.id, sub.record.url,
                      self._config.disable_after, attempt.error, sub.id)
            if metrics is not None:
                metrics.webhook_endpoints_disabled.inc()
            if self._on_disabled is not None:
                await self._on_disabled(sub.id)

    async def _attempt(self, sub: Subscription, row: DeliveryRecord) -> Attempt:
        assert self._client is not None and row.payload is not None
        parts = urlsplit(sub.record.url)
        try:
            addresses = await ssrf.allowed_addresses(ssrf.check_url(sub.record.url), self._allowed)
        except ssrf.UrlRefused as exc:
            message = str(exc)
            if "does not resolve" in message:
                return Attempt(policy.RETRY, error=message)  # DNS may come back
            return Attempt(policy.FAILED, error=f"refused: {message}")
        url, host = target(parts, addresses[0])
        body = row.payload
        headers = {"content-type": "application/json", "user-agent": USER_AGENT, "host": host,
                   **sub.signer.headers(row.message_id, time.time(), body)}
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            # streamed and never read: a receiver cannot make us hold a large answer
            async with self._client.stream("POST", url, content=body, headers=headers,
                                           extensions=extensions) as response:
                status = response.status_code
                retry_header = response.headers.get("retry-after")
        except httpx.TimeoutException:
            return Attempt(policy.RETRY, error=f"timed out after {self._config.timeout:g}s")
        except httpx.HTTPError as exc:
            return Attempt(policy.RETRY, error=f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__)
        except OSError as exc:
            return Attempt(policy.RETRY, error=f"connection failed: {exc}")
        outcome = policy.classify(status)
        retry_after = None
        if outcome == policy.RETRY:
            retry_after = policy.parse_retry_after(retry_header, time.time())
        return Attempt(outcome, status=status, error=None if outcome == policy.DELIVERED else f"HTTP {status}",
                       retry_after=retry_after)
