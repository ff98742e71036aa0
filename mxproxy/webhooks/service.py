"""``ProxyServer.webhooks``: the subscriptions, the outbox writer on the EventBus and the
delivery worker, started and stopped together; the admin API's operations on subscriptions."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import Any, Sequence

from mxproxy.store.base import StoreError
from mxproxy.store.outbox import WebhookRecord
from mxproxy.webhooks import ssrf
from mxproxy.webhooks.outbox import OutboxWriter
from mxproxy.webhooks.signer import new_secret
from mxproxy.webhooks.subscriptions import Subscriptions, type_filter
from mxproxy.webhooks.worker import DeliveryWorker

log = logging.getLogger("mxproxy.webhooks")

#: how often the gauges (outbox depth, disabled endpoints) are refreshed
REFRESH_EVERY = 5.0
PRUNE_EVERY = 600.0


class TooManyWebhooks(ValueError):
    pass


class WebhookService:
    def __init__(self, config: Any, store: Any, *, bus: Any = None, metrics: Any = None,
                 instance_id: str | None = None) -> None:
        self.config = config  # WebhooksConfig
        self.store = store
        self.bus = bus
        self.metrics = metrics
        self.allowed = ssrf.networks(config.allow_networks)
        self.owner = instance_id or f"local-{os.getpid()}-{secrets.token_hex(4)}"
        self.subscriptions = Subscriptions(store)
        self.worker = DeliveryWorker(store, self.subscriptions, config, self.owner, metrics=metrics,
                                     on_disabled=self._disabled)
        self.writer = OutboxWriter(store, self.subscriptions, queue_size=config.queue_size, metrics=metrics,
                                   on_written=self.worker.wake)
        self._subscription: Any = None
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # a single-instance store: any claim left is a crashed predecessor's; a shared one: ours
        # from before a restart under the same instance id (others' lapse after claimTTL)
        await self.store.release_claims(self.owner if getattr(self.store, "shared", False) else None)
        await self.subscriptions.load()
        await self._refresh_gauges()
        self.writer.start()
        await self.worker.start()
        if self.bus is not None:
            require = getattr(self.bus, "require", None)
            if require is not None:
                require("webhooks")
            self._subscription = self.bus.subscribe(None, self.writer)
        self._housekeeping = asyncio.create_task(self._housekeep(), name="webhook-housekeeping")
        log.info("webhooks: %d subscriptions, delivering as %s", len(self.subscriptions), self.owner)

    async def aclose(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        await self.writer.stop()
        await self.worker.stop()

    async def _housekeep(self) -> None:
        """Re-read the subscriptions every ``pollInterval`` (a change made on another instance
        applies here within it), refresh the gauges and prune old rows now and then."""
        loop = asyncio.get_running_loop()
        pruned_at = gauges_at = loop.time()
        while True:
            await asyncio.sleep(self.config.poll_interval)
            try:
                await self.subscriptions.load()
                if loop.time() - gauges_at >= REFRESH_EVERY:
                    gauges_at = loop.time()
                    await self._refresh_gauges()
                if loop.time() - pruned_at >= PRUNE_EVERY:
                    pruned_at = loop.time()
                    await self.store.prune_deliveries(self.config.retention)
            except (StoreError, OSError) as exc:
                log.debug("webhooks: housekeeping round failed: %s", exc)
            except Exception:  # noqa: BLE001 - keep refreshing after a bug in one round
                log.exception("webhooks: housekeeping round failed")

    async def _refresh_gauges(self) -> None:
        if self.metrics is None:
            return
        self.metrics.webhook_outbox_depth.set(await self.store.outbox_depth())
        self.metrics.webhook_disabled_endpoints.set(self.subscriptions.disabled)

    async def _disabled(self, webhook_id: str) -> None:
        await self.reload()

    async def reload(self) -> None:
        await self.subscriptions.load()
        if self.metrics is not None:
            self.metrics.webhook_disabled_endpoints.set(self.subscriptions.disabled)
        self.worker.wake()

    # admin operations (validation errors: ValueError / UrlRefused naming the field) -------------
    async def check_url(self, url: object) -> str:
        await ssrf.check(url, self.allowed)
        assert isinstance(url, str)
        return url

    @staticmethod
    def check_events(events: Sequence[str]) -> list[str]:
        type_filter(list(events))  # ValueError naming an unknown type
        return list(events)

    async def create(self, url: str, events: Sequence[str], users: Sequence[str] | None) -> tuple[WebhookRecord, str]:
        if len(await self.store.list_webhooks()) >= self.config.max_webhooks:
            raise TooManyWebhooks(f"at most {self.config.max_webhooks} webhooks ([webhooks] maxWebhooks)")
        secret = new_secret()
        record = await self.store.create_webhook(url, events, users, secret)
        await self.reload()
        log.info("webhooks: subscription %s created for %s (%s)", record.id, record.url, ", ".join(record.events))
        return record, secret

    async def update(self, webhook_id: str, **changes: Any) -> WebhookRecord | None:
        record = await self.store.update_webhook(webhook_id, **changes)
        if record is not None:
            await self.reload()
            log.info("webhooks: subscription %s changed (%s)", webhook_id, ", ".join(sorted(changes)))
        return record

    async def delete(self, webhook_id: str) -> bool:
        deleted = await self.store.delete_webhook(webhook_id)
        if deleted:
            await self.reload()
            log.info("webhooks: subscription %s deleted", webhook_id)
        return deleted

    async def redeliver(self, webhook_id: str, delivery_id: int) -> Any:
        found = await self.store.redeliver(webhook_id, delivery_id)
        self.worker.wake()
        return found
