"""The outbox writer: the EventBus sink that turns each event into one stored delivery per
matching subscription, before anything is sent.

The sink only appends to a bounded in-memory queue (it runs on the event loop, inside the MX
session's event handling); a writer task stores the queue in batches, one transaction each, and
then wakes the delivery worker. If the store is unreachable the batch waits and is retried; an
event that finds the queue full is dropped and counted (``mxproxy_webhook_dropped``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Callable

from mxproxy.store.base import StoreError
from mxproxy.store.outbox import NewDelivery
from mxproxy.webhooks.subscriptions import Subscriptions

log = logging.getLogger("mxproxy.webhooks")

#: call transitions that happen once per call: without an ``Event.key`` their (webhook, user,
#: type, call) is unique
ONCE_PER_CALL = frozenset({"call.ringing", "call.dialing", "call.answered", "call.ended"})
BATCH = 500
#: between two write attempts while the store is unreachable
STORE_RETRY = (0.2, 5.0)
#: at most one "queue full" log line this often
DROP_LOG_EVERY = 60.0


def ordering(event: Any) -> tuple[str, str | None]:
    """(ordering key, transition key) of an event: a call's events queue behind each other,
    other events behind the user's. The transition key is ``Event.key`` (docs/events.md: the
    same on every instance that saw the transition, e.g. ``call.held:<callUUID>:2``); for an
    event without one, the call UUID of a once-per-call transition."""
    call = event.data.get("callUUID") if event.type.startswith("call.") else None
    transition = getattr(event, "key", "") or None
    if call:
        if transition is None and event.type in ONCE_PER_CALL:
            transition = str(call)
        return f"call:{call}", transition
    return f"user:{event.user}", transition


class OutboxWriter:
    def __init__(self, store: Any, subscriptions: Subscriptions, *, queue_size: int, metrics: Any = None,
                 on_written: Callable[[], None] | None = None) -> None:
        self._store = store
        self._subscriptions = subscriptions
        self._queue: deque[NewDelivery] = deque()
        self._queue_size = queue_size
        self._metrics = metrics
        self._on_written = on_written
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_drop_log = 0.0
        self.written = 0
        self.dropped = 0

    # the sink --------------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        """Called by the EventBus on the event loop: queue, never block, never raise."""
        try:
            matching = self._subscriptions.matching(event.user, event.type)
            if not matching:
                return
            if len(self._queue) + len(matching) > self._queue_size:
                self._drop(len(matching))
                return
            key, transition = ordering(event)
            payload = event.json_bytes()
            for sub in matching:
                self._queue.append(NewDelivery(
                    webhook_id=sub.id, login=event.user, event_id=event.id, event_type=event.type,
                    ordering_key=key, payload=payload, event_time=event.time, transition=transition,
                ))
            self._wake.set()
        except Exception:  # noqa: BLE001 - a sink must not raise into the bus
            log.exception("webhooks: could not queue event %s of %s", getattr(event, "type", "?"),
                          getattr(event, "user", "?"))

    def _drop(self, count: int) -> None:
        self.dropped += count
        if self._metrics is not None:
            self._metrics.webhook_dropped.labels("queue_full").inc(count)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY:
            self._last_drop_log = now
            log.error("webhooks: outbox queue full (%d deliveries waiting for the store); dropping events "
                      "(mxproxy_webhook_dropped counts them)", len(self._queue))

    @property
    def queued(self) -> int:
        return len(self._queue)

    # the writer ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-outbox-writer")

    async def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout``), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout)
            except asyncio.TimeoutError:
                log.error("webhooks: %d queued deliveries could not be stored before stopping", len(self._queue))

    async def _run(self) -> None:
        delay = STORE_RETRY[0]
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            try:
                await self._store.enqueue_deliveries(batch)
            except (StoreError, OSError) as exc:
                self._queue.extendleft(reversed(batch))
                log.warning("webhooks: storing %d deliveries failed (%s); retrying in %.1fs", len(batch), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY[1])
                continue
            except Exception:  # noqa: BLE001 - keep writing later batches
                log.exception("webhooks: storing %d deliveries failed; they are lost", len(batch))
                continue
            delay = STORE_RETRY[0]
            self.written += len(batch)
            if self._on_written is not None:
                self._on_written()
