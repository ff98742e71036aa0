"""Per-user memory of the current calls (``GET /calls/:id``).

The original kept every Delivered/Established event until a ConnectionCleared arrived, unfiltered
for Established and forever when the clear was missed (spec §9 item 26). Here both kinds are
filtered by the user's extension, entries expire after a TTL, and the cache belongs to the user's
owner task, so it survives a reconnect.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

from mxproxy.connectors.base import ConnectionCleared, Delivered, Established, Event

DEFAULT_CALL_TTL = 2 * 3600.0
MAX_CALLS = 1000  # per user; a softphone never has this many calls, so this only bounds a leak


def concerns_user(event: Delivered | Established, ext: str) -> bool:
    """Is this call event about the user's own extension?

    Delivered: the event JSON module's rule (called or alerting device is ours). Established: the
    same idea for an answered call: ours when we answered it, it was called to us, or we placed it.
    """
    if isinstance(event, Delivered):
        try:
            from mxproxy.eventjson import delivered_concerns
        except ImportError:  # pragma: no cover - the module is part of the package
            return ext in (event.called_device, event.alerting_device)
        return bool(delivered_concerns(event, ext))
    return ext in (event.answering_device, event.called_device, event.calling_device)


class CallInfoCache:
    """call id → the last Delivered/Established event that concerned the user."""

    def __init__(self, ttl: float = DEFAULT_CALL_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, Delivered | Established]] = OrderedDict()

    def observe(self, event: Event, ext: str) -> None:
        """Feed every MX event of the user; keeps what ``GET /calls/:id`` needs."""
        if isinstance(event, (Delivered, Established)):
            if concerns_user(event, ext):
                self._put(event)
        elif isinstance(event, ConnectionCleared):
            self._entries.pop(event.call_id, None)

    def _put(self, event: Delivered | Established) -> None:
        now = self._clock()
        self._entries.pop(event.call_id, None)
        self._entries[event.call_id] = (now, event)
        self._purge(now)
        while len(self._entries) > MAX_CALLS:
            self._entries.popitem(last=False)

    def _purge(self, now: float) -> None:
        while self._entries:
            call_id, (stored_at, _) = next(iter(self._entries.items()))
            if now - stored_at < self.ttl:
                break
            del self._entries[call_id]

    def event(self, call_id: int) -> Delivered | Established | None:
        """The stored event for ``call_id`` (None when unknown, cleared or expired)."""
        entry = self._entries.get(call_id)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self.ttl:
            del self._entries[call_id]
            return None
        return entry[1]

    def get(self, call_id: int) -> dict | None:
        """The MX Proxy JSON of the stored event, exactly as it was pushed."""
        event = self.event(call_id)
        if event is None:
            return None
        from mxproxy.eventjson import event_json

        return event_json(event)

    def remove(self, call_id: int) -> bool:
        return self._entries.pop(call_id, None) is not None

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        self._purge(self._clock())
        return len(self._entries)

    def __contains__(self, call_id: object) -> bool:
        return isinstance(call_id, int) and self.event(call_id) is not None
