"""The delivery worker: claims due outbox rows and sends them, signed, one request each.

The client is aiohttp under the outbound TLS rule (mxproxy/outbound.py): at the benchmark's
600 requests/s httpx cost 7-18 times the CPU per request (docs/benchmarks.md, "Webhooks").

Any instance may deliver any row (claims with an expiry in the store); a row is claimed only
once the rows before it of the same call (or user) are delivered or parked, so a receiver sees
one call's events in order. Each attempt connects only to an address the SSRF guard accepts at
that moment (the client's resolver checks what it resolves), and its outcome is recorded in the store before
the next claim of that ordering key: delivered, retry later (policy.py), or parked as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from mxproxy.outbound import aiohttp_session, ssl_context
from mxproxy.store.base import StoreError
from mxproxy.store.outbox import DeliveryRecord, Finished
from mxproxy.webhooks import policy, ssrf
from mxproxy.webhooks.subscriptions import Subscription, Subscriptions

log = logging.getLogger("mxproxy.webhooks")

USER_AGENT = "mxproxy-webhooks/1"
#: how long a clean stop waits for requests in flight before giving their rows back
STOP_GRACE = 5.0
#: an answer body up to this is read (so the connection is kept alive); a longer one is not
#: read at all and its connection is closed
MAX_ANSWER = 64 * 1024


class Attempt:
    """One attempt's result, as recorded."""

    __slots__ = ("outcome", "status", "error", "retry_after")

    def __init__(self, outcome: str, status: int | None = None, error: str | None = None,
                 retry_after: float | None = None) -> None:
        self.outcome = outcome
        self.status = status
        self.error = error
        self.retry_after = retry_after


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
        self._finished: list[tuple[DeliveryRecord, Subscription, Finished]] = []
        self._task: asyncio.Task[None] | None = None
        self._client: aiohttp.ClientSession | None = None
        self._stopping = False
        self._store_down = False
        self.attempts = 0

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        context = ssl_context(self._config.ca_file, key="webhooks.caFile")
        self._client = aiohttp_session(context, limit=self._config.concurrency * 2,
                                       resolver=ssrf.guarded_resolver(self._allowed))
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
        if self._finished:
            batch, self._finished = self._finished, []
            await self._record(batch)
        try:
            await self._store.release_claims(self.owner)
        except StoreError as exc:
            log.warning("webhooks: could not give back claimed deliveries (%s); they are taken over after "
                        "claimTTL", exc)
        if self._client is not None:
            await self._client.close()
            self._client = None

    # the store loop: record finished attempts, then claim what is due ---------------------------
    async def _run(self) -> None:
        """One loop does every store round trip: the outcomes of the attempts finished since the
        last round in one transaction, then one claim for the free slots. A row's successor in
        its call becomes claimable as soon as its outcome is recorded, in the same round."""
        while not self._stopping:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive a bug in one round
                log.exception("webhooks: delivery round failed; continuing")
                await asyncio.sleep(self._config.poll_interval)

    async def _round(self) -> None:
        """One round: record finished attempts, claim for the free slots, then wait unless more is due."""
        config = self._config
        self._wake.clear()
        if self._finished:
            batch, self._finished = self._finished, []
            await self._record(batch)
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
                task.add_done_callback(self._inflight.discard)
        if self._finished or (claimed and len(claimed) == free):
            return  # more to record, or more may be due
        try:
            await asyncio.wait_for(self._wake.wait(), config.poll_interval)
        except asyncio.TimeoutError:
            pass

    async def _record(self, batch: list[tuple[DeliveryRecord, Subscription, Finished]]) -> None:
        try:
            results = await self._store.finish_deliveries(self.owner, [f for _, _, f in batch],
                                                          disable_after=self._config.disable_after)
        except (StoreError, OSError) as exc:
            log.warning("webhooks: could not record %d delivery attempts (%s); those rows are sent again after "
                        "claimTTL", len(batch), exc)
            return
        loop = asyncio.get_running_loop()
        for (row, sub, finished), result in zip(batch, results):
            if finished.outcome == policy.RETRY and result.recorded:
                loop.call_later(finished.retry_in + 0.01, self._wake.set)
            if result.disabled:
                log.error("webhooks: endpoint %s (%s) disabled after %d failed deliveries in a row; last: %s. "
                          "Re-enable it with PATCH /webhooks/%s {\"enabled\": true}", sub.id, sub.record.url,
                          self._config.disable_after, finished.error, sub.id)
                if self._metrics is not None:
                    self._metrics.webhook_endpoints_disabled.inc()
                if self._on_disabled is not None:
                    await self._on_disabled(sub.id)

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
        try:
            attempt = await self._attempt(sub, row)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the row claimed until claimTTL
            log.exception("webhooks: delivery %d failed unexpectedly", row.id)
            attempt = Attempt(policy.RETRY, error=f"internal error: {type(exc).__name__}")
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
        self._finished.append((row, sub, Finished(row.id, outcome, attempt.status, attempt.error, retry_in)))
        self._wake.set()

    async def _attempt(self, sub: Subscription, row: DeliveryRecord) -> Attempt:
        assert self._client is not None and row.payload is not None
        url = sub.record.url
        try:
            parts = ssrf.check_url(url)
        except ssrf.UrlRefused as exc:
            return Attempt(policy.FAILED, error=f"refused: {exc}")
        reason = ssrf.literal_refusal(parts.hostname or "", self._allowed)
        if reason is not None:
            return Attempt(policy.FAILED, error=f"refused: {reason}")
        body = row.payload
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   **sub.signer.headers(row.message_id, time.time(), body)}
        timeout = aiohttp.ClientTimeout(total=self._config.timeout)
        try:
            async with self._client.post(url, data=body, headers=headers, timeout=timeout,
                                         allow_redirects=False) as response:
                status = response.status
                retry_header = response.headers.get("retry-after")
                if response.content_length is not None and response.content_length <= MAX_ANSWER:
                    await response.read()  # small: read, so the connection is reused
        except asyncio.TimeoutError:
            return Attempt(policy.RETRY, error=f"timed out after {self._config.timeout:g}s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ssrf.RefusedAddress):
                return Attempt(policy.FAILED, error=f"refused: {exc.os_error}")
            return Attempt(policy.RETRY, error=f"connection failed: {exc.os_error or exc}"[:300])
        except (aiohttp.ClientError, OSError) as exc:
            return Attempt(policy.RETRY, error=(f"{type(exc).__name__}: {exc}"[:300]))
        outcome = policy.classify(status)
        retry_after = None
        if outcome == policy.RETRY:
            retry_after = policy.parse_retry_after(retry_header, time.time())
        return Attempt(outcome, status=status, error=None if outcome == policy.DELIVERED else f"HTTP {status}",
                       retry_after=retry_after)
