"""A ``WebhookService`` on a real store (SQLite file, or PostgreSQL) with a real receiver on
loopback; events are fed to its outbox writer as the EventBus would (``rig.publish``)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from mxproxy.config import WebhooksConfig
from mxproxy.events.model import Event
from mxproxy.metrics import Metrics
from mxproxy.store.sqlite import SQLiteStore
from mxproxy.webhooks.service import WebhookService
from tests.webhooks.receiver import Receiver

#: fast retries so a test of the schedule takes seconds
FAST = dict(allow_networks=("127.0.0.0/8", "::1"), retry_min=0.05, retry_max=0.2, retry_for=30.0, timeout=2.0,
            claim_ttl=5.0, poll_interval=0.2)
_ids = itertools.count(1_000_000)


def event(event_type: str, user: str = "alice", *, call: str | None = "c-1", **data: Any) -> Event:
    payload = dict(data)
    if event_type.startswith("call.") and call:
        payload.setdefault("callUUID", call)
        payload.setdefault("callId", "41")
    return Event(id=next(_ids), type=event_type, user=user, time=time.time(), data=payload)


@dataclass
class Rig:
    store: Any
    receiver: Receiver
    metrics: Metrics
    services: list[WebhookService] = field(default_factory=list)

    async def service(self, **config: Any) -> WebhookService:
        svc = WebhookService(WebhooksConfig(enabled=True, **{**FAST, **config}), self.store, metrics=self.metrics)
        await svc.start()
        self.services.append(svc)
        return svc

    async def subscribe(self, svc: WebhookService, events: list[str] | None = None, users: list[str] | None = None,
                        url: str | None = None) -> tuple[Any, str]:
        return await svc.create(url or self.receiver.url, events or ["call.*"], users)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SQLiteStore(tmp_path / "store.db", "webhook test key")
    await store.open()
    receiver = Receiver()
    await receiver.start()
    found = Rig(store=store, receiver=receiver, metrics=Metrics())
    try:
        yield found
    finally:
        for svc in found.services:
            await svc.aclose()
        await receiver.stop()
        await store.close()


Publish = Callable[[Event], None]
